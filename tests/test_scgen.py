"""scGen: network, loss, the ScGen class (train, predict, save/load, batch removal),
checkpoints, metrics, bad input, and one end-to-end Kedro run of ``--pipelines scgen`` in
the test environment."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from omicsgen.datasets import TorchCheckpointDataset
from omicsgen.metrics.perturbation import (
    bootstrap_r_squared,
    perturbation_scores,
    r_squared,
    top_degs,
)
from omicsgen.models import ScGen
from omicsgen.models import nn as nn_module
from omicsgen.models import scgen as scgen_package
from omicsgen.models.baselines import perturbation as baselines
from omicsgen.models.nn import ONEDNN_LINEAR, WideLinear
from omicsgen.models.scgen.model import ScGenModelConfig
from omicsgen.models.scgen.module import InputMajorLinear, ScGenVAE
from omicsgen.models.scgen.plan import ScGenPlanConfig, ScGenTrainingPlan, scgen_loss
from omicsgen.preprocessing import InputValidationError
from omicsgen.preprocessing.validate import SOURCE_FILE_KEY
from tests.conftest import run_kedro

KEYS = {"condition_key": "condition", "control": "control", "stimulated": "stimulated", "cell_type_key": "cell_type"}
SMALL = {"n_hidden": 64, "n_latent": 4}
QUIET = {"progress": False, "device": "cpu"}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The test machine is shared: one thread avoids OpenMP oversubscription stalls."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def perturbation_data() -> ad.AnnData:
    """3 cell types × control/stimulated; the stimulus raises genes 0-9 in every type."""
    rng = np.random.default_rng(0)
    n_genes, per_group = 60, 40
    profiles = rng.gamma(2.0, 1.0, size=(3, n_genes))
    blocks, obs = [], []
    for t in range(3):
        for condition in ("control", "stimulated"):
            mean = profiles[t].copy()
            if condition == "stimulated":
                mean[:10] += 3.0
            blocks.append(np.log1p(rng.poisson(mean, size=(per_group, n_genes))))
            obs += [(f"type{t}", condition)] * per_group
    adata = ad.AnnData(
        X=np.vstack(blocks).astype(np.float32),
        obs=pd.DataFrame(obs, columns=["cell_type", "condition"]),
    )
    adata.obs_names = [f"cell{i}" for i in range(adata.n_obs)]
    adata.var_names = [f"gene{i}" for i in range(n_genes)]
    adata.obs["split"] = np.where(np.arange(adata.n_obs) % 10 == 0, "validation", "train")
    adata.uns[SOURCE_FILE_KEY] = "toy.h5ad"
    return adata


def _cells(adata: ad.AnnData, cell_type: str, condition: str) -> ad.AnnData:
    return adata[((adata.obs["cell_type"] == cell_type) & (adata.obs["condition"] == condition)).to_numpy()]


def _model(train: ad.AnnData, model=None, plan=None, **training) -> ScGen:
    ScGen.setup_anndata(train, **KEYS)
    return ScGen(train, {**SMALL, **(model or {})}, plan, {**QUIET, "max_epochs": 60, "patience": None, **training})


def _train_without(adata: ad.AnnData, cell_type: str = "type0", model=None, plan=None, **training):
    held = (adata.obs["cell_type"] == cell_type) & (adata.obs["condition"] == "stimulated")
    train = adata[~held.to_numpy()].copy()
    scgen = _model(train, model, plan, **training)
    result = scgen.train()
    return train, scgen, result


def _vae(n_input: int, **changed) -> ScGenVAE:
    from dataclasses import asdict

    return ScGenVAE(n_input, **asdict(ScGenModelConfig(**changed)))


def test_architecture_matches_the_paper():
    model = _vae(50)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    # encoder 2 × 800, mean and log-variance heads (100), decoder 2 × 800 → genes
    assert [(m.in_features, m.out_features) for m in linears] == [
        (50, 800), (800, 800), (800, 100), (800, 100), (100, 800), (800, 800), (800, 50),
    ]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules()) == 4
    assert all(m.p == 0.2 for m in model.modules() if isinstance(m, torch.nn.Dropout))
    assert all(m.momentum == 0.01 and m.eps == 1e-3 for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d))
    assert sum(isinstance(m, torch.nn.LeakyReLU) for m in model.modules()) == 4


def test_input_major_linear_equals_linear_and_loads_linear_layout():
    torch.manual_seed(0)
    linear = torch.nn.Linear(50, 8)
    torch.manual_seed(0)
    transposed = InputMajorLinear(50, 8)
    assert transposed.weight.shape == (50, 8) and torch.equal(transposed.weight, linear.weight.t())
    x = torch.rand(4, 50)
    torch.testing.assert_close(transposed(x), linear(x))
    restored = InputMajorLinear(50, 8)
    restored.load_state_dict(linear.state_dict())  # an nn.Linear-layout checkpoint
    assert torch.equal(restored.weight, transposed.weight)


@pytest.mark.parametrize("layer_type", [WideLinear, InputMajorLinear])
@pytest.mark.parametrize("non_zero", [1.0, 0.05])  # 0.05: scRNA-like input, the sparse forward
def test_wide_linear_runs_onednn_with_nn_linear_values_and_gradients(layer_type, non_zero, monkeypatch):
    torch.manual_seed(0)
    reference = torch.nn.Linear(300, 40)
    layer = layer_type(300, 40)
    layer.load_state_dict(reference.state_dict())
    x = (torch.randn(16, 300) * (torch.rand(16, 300) < non_zero)).requires_grad_(True)
    sparse_calls = []
    original = nn_module._rows_as_csr
    monkeypatch.setattr(nn_module, "_rows_as_csr", lambda t: sparse_calls.append(t) or original(t))
    x_ref = x.detach().clone().requires_grad_(True)
    assert ONEDNN_LINEAR is not None and layer._use_onednn(x)  # the CPU float32 path under test
    out, out_ref = layer(x), reference(x_ref)
    torch.testing.assert_close(out, out_ref)
    grad = torch.randn_like(out)
    out.backward(grad)
    out_ref.backward(grad)
    weight_grad = layer.weight.grad.t() if layer.input_major else layer.weight.grad
    torch.testing.assert_close(weight_grad, reference.weight.grad)
    torch.testing.assert_close(layer.bias.grad, reference.bias.grad)
    torch.testing.assert_close(x.grad, x_ref.grad)
    assert len(sparse_calls) == (1 if layer.input_major and non_zero < layer.sparse_input_density else 0)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16-mixed keeps torch's own path
        assert not layer._use_onednn(x) and layer(x).dtype == torch.bfloat16


def test_loss_is_half_of_sse_plus_weighted_kl_as_the_original_writes_it():
    torch.manual_seed(0)
    model = _vae(5, n_hidden=4, n_latent=2).eval()
    x = torch.rand(6, 5)
    losses = scgen_loss(model, x, kl_weight=0.1)
    mean, log_var = model.encode(x)
    sse = ((model.decode(mean) - x) ** 2).sum(1).mean()
    kl = (-0.5 * (1 + log_var - mean**2 - log_var.exp())).sum(1).mean()
    assert losses["reconstruction"].item() == pytest.approx(0.5 * sse.item(), rel=1e-6)
    assert losses["kl"].item() == pytest.approx(kl.item(), rel=1e-6)
    assert losses["loss"].item() == pytest.approx(0.5 * (sse.item() + 0.1 * kl.item()), rel=1e-6)  # the original's


def test_training_watches_validation_reconstruction_and_learns(perturbation_data):
    _, _, result = _train_without(perturbation_data, max_epochs=15)
    history = result.history
    assert result.config["monitor"] == "reconstruction"
    assert {"train_reconstruction", "validation_reconstruction", "train_kl"} <= set(history[0])
    assert history[-1]["train_reconstruction"] < 0.5 * history[0]["train_reconstruction"]
    assert result.best_value == min(h["validation_reconstruction"] for h in history)


def test_adam_recipe_defaults_to_scvi_tools_and_is_recorded(perturbation_data):
    plan = ScGenTrainingPlan(_vae(20, n_hidden=16, n_latent=4), ScGenPlanConfig())
    assert (plan.optimizer.defaults["eps"], plan.optimizer.defaults["weight_decay"]) == (0.01, 1e-6)
    data = perturbation_data.copy()
    ScGen.setup_anndata(data, **KEYS)
    result = ScGen(data, {"n_hidden": 16, "n_latent": 4}, {"adam_eps": 1e-8, "weight_decay": 0.0}, {**QUIET, "max_epochs": 1}).train()
    assert (result.config["adam_eps"], result.config["weight_decay"], result.config["lr"]) == (1e-8, 0.0, 1e-3)


def test_sections_reject_unknown_keys_and_default_to_the_paper(perturbation_data):
    data = perturbation_data.copy()
    ScGen.setup_anndata(data, **KEYS)
    model = ScGen(data)
    assert (model.model_config.n_hidden, model.model_config.n_latent, model.model_config.dropout) == (800, 100, 0.2)
    assert (model.plan_config.kl_weight, model.training_config.monitor) == (5e-5, "reconstruction")
    with pytest.raises(ValueError, match=r"scgen.model: unknown parameter\(s\) \['kl_weight'\]"):
        ScGen(data, model={"kl_weight": 1.0})  # kl_weight belongs to plan
    with pytest.raises(ValueError, match=r"unknown training parameters \['lr'\]"):
        ScGen(data, training={"lr": 1e-3})


def test_bf16_mixed_training_learns_and_unknown_precision_is_rejected(perturbation_data):
    _, model, result = _train_without(perturbation_data, plan={"precision": "bf16-mixed"}, max_epochs=5)
    assert result.history[-1]["train_reconstruction"] < result.history[0]["train_reconstruction"]
    assert next(model.modules["vae"].parameters()).dtype == torch.float32  # master weights stay float32
    with pytest.raises(ValueError, match="precision must be one of"):
        _train_without(perturbation_data, plan={"precision": "fp8"}, max_epochs=1)


def test_prediction_recovers_the_response_and_same_seed_is_identical(perturbation_data):
    train, model, _ = _train_without(perturbation_data)
    control = _cells(perturbation_data, "type0", "control")
    real = _cells(perturbation_data, "type0", "stimulated")
    predicted = model.predict(perturbation_data, cell_type="type0")
    assert predicted.shape == control.shape and model.delta.shape == (4,)
    assert list(predicted.obs_names) == list(control.obs_names)
    np.testing.assert_array_equal(predicted.uns["scgen"]["delta"], model.delta)
    assert predicted.obsm["X_scgen"].shape == (control.n_obs, 4)
    gain = predicted.X[:, :10].mean() - control.X[:, :10].mean()
    real_gain = real.X[:, :10].mean() - control.X[:, :10].mean()
    assert gain > 0.5 * real_gain  # the stimulated genes go up, as in the real cells
    error = np.abs(predicted.X[:, :10].mean(0) - real.X[:, :10].mean(0)).mean()
    assert error < np.abs(control.X[:, :10].mean(0) - real.X[:, :10].mean(0)).mean()
    # the latent is the control cells' latent shifted by delta
    np.testing.assert_allclose(predicted.obsm["X_scgen"], model.get_latent_representation(control) + model.delta, atol=1e-6)

    _, again, _ = _train_without(perturbation_data)
    repeated = again.predict(perturbation_data, cell_type="type0")
    np.testing.assert_array_equal(repeated.X, predicted.X)
    np.testing.assert_array_equal(again.delta, model.delta)


def test_residual_prediction_adds_the_decoded_change_to_each_observed_cell(perturbation_data):
    _, model, _ = _train_without(perturbation_data, max_epochs=3)
    control = _cells(perturbation_data, "type0", "control")
    decoded = model.predict(perturbation_data, cell_type="type0", residual=False)  # the paper's rule
    kept = model.predict(perturbation_data, cell_type="type0")
    reconstructed = model._decode(model.get_latent_representation(control))
    np.testing.assert_allclose(decoded.X, model._decode(decoded.obsm["X_scgen"]), atol=1e-6)
    expected = np.clip(np.asarray(control.X) + decoded.X - reconstructed, 0, None)  # the data are non-negative
    np.testing.assert_allclose(kept.X, expected, atol=1e-5)
    assert kept.X.min() >= 0 and not np.allclose(kept.X, decoded.X)
    np.testing.assert_array_equal(kept.obsm["X_scgen"], decoded.obsm["X_scgen"])
    assert kept.uns["scgen"]["residual"] is True and decoded.uns["scgen"]["residual"] is False


def test_delta_is_the_latent_shift_between_the_balanced_training_pools(perturbation_data):
    train, model, _ = _train_without(perturbation_data, max_epochs=3)
    fitted = train[(train.obs["split"] == "train").to_numpy()]  # the validation split only scores
    control_pool, stimulated_pool = baselines.balanced_condition_pools(fitted, seed=0)
    expected = model.get_latent_representation(stimulated_pool).mean(0) - model.get_latent_representation(control_pool).mean(0)
    np.testing.assert_array_equal(model.delta, expected)


def test_predict_leaves_the_input_alone_and_key_added_names_the_latent(perturbation_data):
    _, model, _ = _train_without(perturbation_data, max_epochs=2)
    data = perturbation_data.copy()
    before = data.X.copy()
    predicted = model.predict(data, key_added="X_scgen_v2")
    assert "X_scgen_v2" in predicted.obsm and "X_scgen" not in predicted.obsm
    assert set(predicted.obs["condition"]) == {"control"} and predicted.n_obs == 120  # every control cell
    np.testing.assert_array_equal(data.X, before)
    assert not data.obsm and list(data.obs.columns) == list(perturbation_data.obs.columns)


def test_save_load_reproduces_predictions_exactly(perturbation_data, tmp_path):
    _, model, _ = _train_without(perturbation_data, max_epochs=3)
    expected = model.predict(perturbation_data, cell_type="type0")
    latent = model.get_latent_representation(perturbation_data)
    model.save(tmp_path / "scgen")
    loaded = ScGen.load(tmp_path / "scgen", adata=perturbation_data.copy(), device="cpu")  # weights_only=True
    np.testing.assert_array_equal(loaded.delta, model.delta)
    again = loaded.predict(cell_type="type0")  # the AnnData given to load
    np.testing.assert_array_equal(again.X, expected.X)
    np.testing.assert_array_equal(again.obsm["X_scgen"], expected.obsm["X_scgen"])
    np.testing.assert_array_equal(loaded.get_latent_representation(), latent)
    assert loaded.training_result.epochs_run == model.training_result.epochs_run


def test_load_matches_genes_by_name_lists_missing_ones_and_fills_them(perturbation_data, tmp_path):
    _, model, _ = _train_without(perturbation_data, max_epochs=2)
    model.save(tmp_path)
    shuffled = perturbation_data[:, perturbation_data.var_names[::-1]].copy()  # same genes, other order
    expected = model.predict(perturbation_data, cell_type="type1")
    np.testing.assert_array_equal(ScGen.load(tmp_path, shuffled).predict(cell_type="type1").X, expected.X)
    fewer = perturbation_data[:, 2:].copy()
    with pytest.raises(InputValidationError, match=r"toy.h5ad: 2 of the model's 60 genes are missing: 'gene0', 'gene1'"):
        ScGen.load(tmp_path, fewer)
    with pytest.raises(InputValidationError, match=r"2 of the model's 60 genes are missing"):
        model.predict(fewer)
    filled = model.predict(fewer, cell_type="type1", fill_missing=True)
    assert filled.shape == (40, 60) and list(filled.var_names) == list(perturbation_data.var_names)
    assert np.isfinite(filled.X).all()


def test_checkpoint_copies_to_cpu_and_leaves_the_live_model_in_place(perturbation_data):
    _, model, _ = _train_without(perturbation_data, max_epochs=1)
    checkpoint = model.checkpoint()
    live = dict(model.modules["vae"].state_dict())
    assert all(p.device.type == model.device.type for p in model.modules["vae"].parameters())
    for key, tensor in checkpoint["state_dict"]["vae"].items():
        assert tensor.device.type == "cpu"
        assert tensor.untyped_storage().data_ptr() != live[key].untyped_storage().data_ptr()
        assert torch.equal(tensor, live[key].cpu())
    checkpoint["state_dict"]["vae"]["mean.weight"].add_(1.0)  # editing the copy leaves the model
    assert not torch.equal(checkpoint["state_dict"]["vae"]["mean.weight"], model.modules["vae"].mean.weight.detach())
    assert isinstance(checkpoint["state"]["delta"], torch.Tensor)


def test_checkpoints_per_held_out_type_roundtrip_through_the_catalog_dataset(perturbation_data, tmp_path):
    from omicsgen.pipelines.modelling.scgen.nodes import predict_held_out

    _, model, _ = _train_without(perturbation_data, max_epochs=2)
    dataset = TorchCheckpointDataset(filepath=str(tmp_path / "model.pt"))
    dataset.save({"type0": model.checkpoint()})
    settings = {"keys": KEYS, "training": {"device": "cpu"}, "residual": True}
    predicted = predict_held_out(perturbation_data.copy(), dataset.load(), settings)  # weights_only=True
    np.testing.assert_array_equal(predicted.X, model.predict(perturbation_data, cell_type="type0").X)
    assert set(predicted.obs["held_out"]) == {"type0"} and set(predicted.obs["method"]) == {"scgen"}
    np.testing.assert_array_equal(predicted.uns["scgen"]["delta"]["type0"], model.delta)
    assert predicted.uns["scgen"]["residual"] is True  # the rule, recorded for the report


def test_apply_template_reads_the_saved_models_and_writes_applied():
    from omicsgen.pipelines.modelling.scgen import create_apply_pipeline

    template = create_apply_pipeline("perturbation")
    assert template.inputs() == {"model_input", "model", "settings"} and template.outputs() == {"applied"}


def test_balanced_pools_are_equal_size_and_balanced(perturbation_data):
    train = perturbation_data[perturbation_data.obs["cell_type"] != "type2"]
    control, stimulated = baselines.balanced_condition_pools(train, seed=3)
    assert control.n_obs == stimulated.n_obs
    assert set(control.obs["condition"]) == {"control"}
    assert set(stimulated.obs["condition"]) == {"stimulated"}


def test_batch_shift_moves_each_batch_onto_the_largest_within_type():
    rng = np.random.default_rng(1)
    latent = rng.normal(size=(10, 3)).astype(np.float32)
    batches = np.array(["a"] * 4 + ["b"] * 2 + ["a"] * 2 + ["a"] * 2)
    types = np.array(["x"] * 6 + ["y"] * 2 + ["z"] * 2)
    latent[4:6] += 5.0  # batch b of type x is offset
    latent[6:8] = [[0, 0, 0], [2, 2, 2]]
    batches[8:10] = ["b", "c"]
    shifted = scgen_package.shift_batches_in_latent(latent, batches, types)
    np.testing.assert_allclose(shifted[4:6].mean(0), latent[:4].mean(0), atol=1e-5)
    np.testing.assert_array_equal(shifted[:4], latent[:4])  # the largest batch stays
    np.testing.assert_array_equal(shifted[6:8], latent[6:8])  # a type seen in one batch stays
    # a tie between batches b and c: both land on the mean of "b" (first in sorted order)
    np.testing.assert_allclose(shifted[8], shifted[9], atol=1e-6)


def _with_batches(perturbation_data: ad.AnnData) -> ad.AnnData:
    data = perturbation_data.copy()
    data.obs["batch"] = np.where(data.obs["condition"] == "control", "lab1", "lab2")
    return data


def _assert_batches_aligned(data: ad.AnnData, latent: np.ndarray) -> None:
    for cell_type in data.obs["cell_type"].unique():
        in_type = (data.obs["cell_type"] == cell_type).to_numpy()
        means = [latent[in_type & (data.obs["batch"] == b).to_numpy()].mean(0) for b in data.obs["batch"].unique()]
        np.testing.assert_allclose(means[0], means[1], atol=1e-4)


def test_remove_batch_effect_returns_corrected_anndata(perturbation_data):
    data = _with_batches(perturbation_data)
    uns_before = dict(data.uns)
    corrected = scgen_package.remove_batch_effect(
        data, "batch", "cell_type", max_epochs=3, seed=0, device="cpu", n_hidden=32, n_latent=6, progress=False
    )
    assert corrected.shape == data.shape and list(corrected.obs_names) == list(data.obs_names)
    assert corrected.obsm["X_scgen"].shape == (data.n_obs, 6)
    assert "training" in corrected.uns["scgen"] and corrected.uns["scgen"]["training"]["config"]["patience"] == 20
    np.testing.assert_array_equal(corrected.layers["uncorrected"], data.X)
    assert dict(data.uns) == uns_before  # the caller's AnnData is left alone (no registration)
    _assert_batches_aligned(data, corrected.obsm["X_scgen"])
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['n_hiden'\]"):
        scgen_package.remove_batch_effect(data, "batch", "cell_type", n_hiden=32)


def test_remove_batch_effect_method_and_the_keys_each_verb_needs(perturbation_data):
    data = _with_batches(perturbation_data)
    ScGen.setup_anndata(data, batch_key="batch", cell_type_key="cell_type")
    model = ScGen(data, {"n_hidden": 32, "n_latent": 6}, None, {**QUIET, "max_epochs": 2})
    model.train()
    assert "delta" not in model.state  # no perturbation keys: no delta
    corrected = model.remove_batch_effect(key_added="X_corrected")
    _assert_batches_aligned(data, corrected.obsm["X_corrected"])
    with pytest.raises(RuntimeError, match="no delta"):
        model.predict()
    with pytest.raises(ValueError, match=r"needs \['condition_key', 'control', 'stimulated', 'cell_type_key'\]"):
        ScGen.setup_anndata(data, condition_key="condition")
    ScGen.setup_anndata(data, **KEYS)
    with pytest.raises(ValueError, match=r"remove_batch_effect needs \['batch_key', 'cell_type_key'\]"):
        model.remove_batch_effect(data)


def test_r_squared_and_bootstrap():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(50, 30)) + np.arange(30)
    assert r_squared(np.arange(5), 2 * np.arange(5) + 1) == pytest.approx(1.0)
    same = bootstrap_r_squared(real, real + 0.01, "mean", n_draws=20, seed=1)
    assert same["mean"] > 0.99 and same["sd"] < 0.01
    assert bootstrap_r_squared(real, real, "variance", 20, 0.8, 5) == bootstrap_r_squared(real, real, "variance", 20, 0.8, 5)


def test_top_degs_find_the_stimulated_genes_and_scores_have_all_keys(perturbation_data):
    degs = top_degs(perturbation_data, "type0", n_genes=10)
    assert set(degs) == {f"gene{i}" for i in range(10)}
    real = perturbation_data[((perturbation_data.obs["cell_type"] == "type0") & (perturbation_data.obs["condition"] == "stimulated")).to_numpy()]
    scores = perturbation_scores(real, real, degs, n_draws=5)
    assert set(scores) == {"r2_mean_all", "r2_mean_top10", "r2_variance_all", "r2_variance_top10"}
    assert scores["r2_mean_top10"]["full"] == pytest.approx(1.0)


def test_baselines_shift_control_cells(perturbation_data):
    train = perturbation_data[~((perturbation_data.obs["cell_type"] == "type0") & (perturbation_data.obs["condition"] == "stimulated")).to_numpy()]
    control_pool, stimulated_pool = baselines.balanced_condition_pools(train)
    control = perturbation_data[:40]
    gene = baselines.gene_space_arithmetic(control_pool, stimulated_pool, control)
    pca = baselines.pca_space_arithmetic(train, control_pool, stimulated_pool, control, n_components=10)
    null = baselines.null_prediction(control)
    np.testing.assert_array_equal(null.X, control.X)
    assert gene.X[:, :10].mean() > control.X[:, :10].mean() + 0.5
    assert pca.X[:, :10].mean() > control.X[:, :10].mean() + 0.5


# --- bad input: a clear error, before any training --------------------------------------


def _no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started despite bad input")

    monkeypatch.setattr(ScGen, "_train", refuse)


def test_bad_inputs_are_rejected_before_training(perturbation_data, monkeypatch):
    from omicsgen.pipelines.modelling.scgen.nodes import held_out_cell_types

    _no_training(monkeypatch)

    def settings(holdout, residual=True, **changed):
        return {"keys": {**KEYS, **changed}, "holdout": holdout, "residual": residual, "dataset": {"name": "toy"}}

    with pytest.raises(InputValidationError, match=r"parameter scgen.residual must be true or false, got 'no'"):
        held_out_cell_types(perturbation_data, settings("type0", residual="no"))
    with pytest.raises(InputValidationError, match=r"toy.h5ad.*'Neuron' not found in obs column 'cell_type'"):
        held_out_cell_types(perturbation_data, settings("Neuron"))
    with pytest.raises(InputValidationError, match=r"toy.h5ad.*'treatment'.*missing"):
        held_out_cell_types(perturbation_data, settings("type0", condition_key="treatment"))
    only_one = perturbation_data[
        ~((perturbation_data.obs["condition"] == "stimulated") & (perturbation_data.obs["cell_type"] != "type0")).to_numpy()
    ].copy()
    with pytest.raises(InputValidationError, match=r"no condition='stimulated' cells of any other cell type"):
        held_out_cell_types(only_one, settings("type0"))
    assert held_out_cell_types(perturbation_data, settings("all")) == ["type0", "type1", "type2"]


def test_held_out_types_resolve_largest_all_and_lists(perturbation_data, kang):
    from omicsgen.pipelines.modelling.scgen.nodes import held_out_cell_types
    from omicsgen.preprocessing.expression import resolve_held_out_types

    # scGen's default: the most frequent type, CD4T on kang as in the paper
    assert resolve_held_out_types(kang.obs["cell_type"], "largest") == ["CD4T"]
    types = perturbation_data.obs["cell_type"]  # 80 cells of each type: ties go to the first name
    assert resolve_held_out_types(types, "largest") == ["type0"]
    fewer = perturbation_data[(np.arange(perturbation_data.n_obs) % 4 != 0) | (types != "type0").to_numpy()].copy()
    assert resolve_held_out_types(fewer.obs["cell_type"], "largest") == ["type1"]
    assert resolve_held_out_types(types, "all") == ["type0", "type1", "type2"]
    assert resolve_held_out_types(types, "type2;type0") == ["type2", "type0"]  # the --params form
    assert resolve_held_out_types(types, ["type1"]) == ["type1"]
    assert held_out_cell_types(fewer, {"keys": KEYS, "holdout": "largest", "residual": True, "dataset": {"name": "toy"}}) == ["type1"]


def test_genes_differing_from_training_are_rejected(perturbation_data):
    _, model, _ = _train_without(perturbation_data, max_epochs=1)
    renamed = perturbation_data[:20].copy()
    renamed.var_names = [f"other{i}" for i in range(renamed.n_vars)]
    with pytest.raises(InputValidationError, match=r"toy.h5ad: 60 of the model's 60 genes are missing: 'gene0'"):
        model.predict(renamed)
    with pytest.raises(InputValidationError, match=r"1 of the model's 60 genes are missing: 'gene0'"):
        model.predict(perturbation_data[:20, 1:])


# --- end to end --------------------------------------------------------------------------


def test_kedro_run_scgen_test_env_and_same_seed_same_metrics(kedro_project_copy):
    project = kedro_project_copy
    run_kedro(project, env="test", pipeline_names=["scgen"])
    reporting = project / "data" / "test" / "08_reporting" / "kang" / "scgen"
    metrics = json.loads((reporting / "metrics.json").read_text())
    entry = metrics["held_out"]["CD4T"]
    assert set(entry["methods"]) == {"scgen", "gene_arithmetic", "pca_arithmetic", "mean_response", "null"}
    assert len(entry["top_degs"]) == 20 and entry["epochs_run"] <= 3
    for scores in entry["methods"].values():
        assert 0.0 <= scores["r2_mean_all"]["mean"] <= 1.0 and scores["r2_mean_top20"]["sd"] >= 0.0
        assert scores["energy_distance"] >= 0.0
    assert entry["methods"]["null"]["pearson_delta_all"] is None  # the null prediction has no response
    assert -1.0 <= entry["methods"]["mean_response"]["pearson_delta_top20"] <= 1.0
    assert set(entry["best_method"]) == set(entry["methods"]["scgen"])
    assert metrics["prediction"] == "residual"  # scgen.residual's default, named in the report
    for figure in ("mean_expression_scatter", "strongest_deg_violin", "training_curves"):
        assert (reporting / f"{figure}.png").stat().st_size > 10_000
    timings = json.loads((reporting / "timings.json").read_text())
    assert timings["CD4T"]["seconds_per_epoch"] > 0 and timings["CD4T"]["peak_memory_mb"] > 0
    predictions = ad.read_h5ad(project / "data" / "test" / "07_model_output" / "kang" / "scgen" / "predictions.h5ad")
    assert set(predictions.obs["held_out"]) == {"CD4T"} and "X_scgen" in predictions.obsm
    assert (project / "data" / "test" / "06_models" / "kang" / "scgen" / "model.pt").exists()

    # same seed → byte-identical metrics (re-run modelling + reporting on the saved inputs)
    first = (reporting / "metrics.json").read_bytes()
    (reporting / "metrics.json").unlink()
    run_kedro(project, env="test", pipeline_names=["scgen"], from_nodes=["kang.scgen.resolve_parameters"])
    assert (reporting / "metrics.json").read_bytes() == first

    # the saved checkpoint is {held-out type: ScGen.checkpoint()}; scgen_apply predicts with it
    checkpoints = TorchCheckpointDataset(filepath=str(project / "data" / "test" / "06_models" / "kang" / "scgen" / "model.pt")).load()
    assert set(checkpoints) == {"CD4T"} and ScGen.from_checkpoint(checkpoints["CD4T"]).delta.shape == (20,)
    run_kedro(project, env="test", pipeline_names=["scgen_apply"])
    applied = ad.read_h5ad(project / "data" / "test" / "07_model_output" / "kang" / "scgen_apply" / "applied.h5ad")
    np.testing.assert_array_equal(applied.X, predictions.X)


def test_kedro_run_with_unknown_held_out_type_fails_before_training(kedro_project_copy):
    project = kedro_project_copy
    overrides = project / "conf" / "test" / "parameters" / "scgen.yml"
    overrides.write_text(overrides.read_text() + "  holdout: [CD4T, Neuron]\n")
    # the error names the file: the raw file when the run's preflight checks catch it before
    # data engineering, the model input when the pipeline's own check does
    with pytest.raises(InputValidationError, match=r"(kang_pbmc_ifnb|model_input)\.h5ad.*'Neuron' not found"):
        run_kedro(project, env="test", pipeline_names=["scgen"])
    assert not (project / "data" / "test" / "06_models" / "kang" / "scgen").exists()
    assert not (project / "data" / "test" / "07_model_output" / "kang" / "scgen").exists()
