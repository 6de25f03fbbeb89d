"""scGen: network, loss, prediction, batch removal, checkpoints, metrics, bad input, and one
end-to-end Kedro run of ``--pipelines scgen`` in the test environment."""

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
from omicsgen.models import perturbation_baselines as baselines
from omicsgen.models import scgen
from omicsgen.preprocessing import InputValidationError
from omicsgen.preprocessing.validate import SOURCE_FILE_KEY
from tests.conftest import run_kedro

SMALL = {"n_hidden": 64, "n_latent": 4, "progress": False, "device": "cpu"}


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


def _train_without(adata: ad.AnnData, cell_type: str = "type0", **kwargs):
    held = (adata.obs["cell_type"] == cell_type) & (adata.obs["condition"] == "stimulated")
    train = adata[~held.to_numpy()].copy()
    model, result = scgen.train_scgen(train, **{**SMALL, "max_epochs": 60, "patience": None, **kwargs})
    return train, model, result


def test_architecture_matches_the_paper():
    model = scgen.ScGenVAE(scgen.ScGenArchitecture(n_input=50))
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    # encoder 2 × 800, mean and log-variance heads (100), decoder 2 × 800 → genes
    assert [(m.in_features, m.out_features) for m in linears] == [
        (50, 800), (800, 800), (800, 100), (800, 100), (100, 800), (800, 800), (800, 50),
    ]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules()) == 4
    assert all(m.p == 0.2 for m in model.modules() if isinstance(m, torch.nn.Dropout))


def test_input_major_linear_equals_linear_and_loads_linear_layout():
    torch.manual_seed(0)
    linear = torch.nn.Linear(50, 8)
    torch.manual_seed(0)
    transposed = scgen.InputMajorLinear(50, 8)
    assert transposed.weight.shape == (50, 8) and torch.equal(transposed.weight, linear.weight.t())
    x = torch.rand(4, 50)
    torch.testing.assert_close(transposed(x), linear(x))
    restored = scgen.InputMajorLinear(50, 8)
    restored.load_state_dict(linear.state_dict())  # an nn.Linear-layout checkpoint
    assert torch.equal(restored.weight, transposed.weight)


def test_loss_is_half_sse_plus_weighted_kl():
    torch.manual_seed(0)
    model = scgen.ScGenVAE(scgen.ScGenArchitecture(n_input=5, n_hidden=4, n_latent=2)).eval()
    x = torch.rand(6, 5)
    losses = scgen.scgen_loss(model, x, kl_weight=0.1)
    mean, log_var = model.encode(x)
    sse = ((model.decode(mean) - x) ** 2).sum(1).mean()
    kl = (-0.5 * (1 + log_var - mean**2 - log_var.exp())).sum(1).mean()
    assert losses["reconstruction"].item() == pytest.approx(0.5 * sse.item(), rel=1e-6)
    assert losses["kl"].item() == pytest.approx(kl.item(), rel=1e-6)
    assert losses["loss"].item() == pytest.approx(0.5 * sse.item() + 0.1 * kl.item(), rel=1e-6)


def test_training_watches_validation_reconstruction_and_learns(perturbation_data):
    _, _, result = _train_without(perturbation_data, max_epochs=15)
    history = result.history
    assert result.config["monitor"] == "reconstruction"
    assert {"train_reconstruction", "validation_reconstruction", "train_kl"} <= set(history[0])
    assert history[-1]["train_reconstruction"] < 0.5 * history[0]["train_reconstruction"]
    assert result.best_value == min(h["validation_reconstruction"] for h in history)


def test_adam_recipe_defaults_to_scvi_tools_and_is_recorded(perturbation_data):
    plan = scgen.ScGenTrainingPlan(scgen.ScGenVAE(scgen.ScGenArchitecture(20, 16, 4)))
    assert (plan.optimizer.defaults["eps"], plan.optimizer.defaults["weight_decay"]) == (0.01, 1e-6)
    _, result = scgen.train_scgen(
        perturbation_data, n_hidden=16, n_latent=4, max_epochs=1, adam_eps=1e-8, weight_decay=0.0,
        device="cpu", progress=False,
    )
    assert (result.config["adam_eps"], result.config["weight_decay"], result.config["lr"]) == (1e-8, 0.0, 1e-3)


def test_bf16_mixed_training_learns_and_unknown_precision_is_rejected(perturbation_data):
    _, model, result = _train_without(perturbation_data, max_epochs=5, precision="bf16-mixed")
    assert result.history[-1]["train_reconstruction"] < result.history[0]["train_reconstruction"]
    assert next(model.parameters()).dtype == torch.float32  # master weights stay float32
    with pytest.raises(ValueError, match="precision must be one of"):
        _train_without(perturbation_data, max_epochs=1, precision="fp8")


def test_prediction_recovers_the_response_and_same_seed_is_identical(perturbation_data):
    train, model, _ = _train_without(perturbation_data)
    control = perturbation_data[
        ((perturbation_data.obs["cell_type"] == "type0") & (perturbation_data.obs["condition"] == "control")).to_numpy()
    ]
    real = perturbation_data[
        ((perturbation_data.obs["cell_type"] == "type0") & (perturbation_data.obs["condition"] == "stimulated")).to_numpy()
    ]
    predicted, delta = scgen.predict_perturbation(model, train, control)
    assert predicted.shape == control.shape and delta.shape == (4,)
    assert list(predicted.obs_names) == list(control.obs_names)
    gain = predicted.X[:, :10].mean() - control.X[:, :10].mean()
    real_gain = real.X[:, :10].mean() - control.X[:, :10].mean()
    assert gain > 0.5 * real_gain  # the stimulated genes go up, as in the real cells
    error = np.abs(predicted.X[:, :10].mean(0) - real.X[:, :10].mean(0)).mean()
    assert error < np.abs(control.X[:, :10].mean(0) - real.X[:, :10].mean(0)).mean()

    _, again, _ = _train_without(perturbation_data)
    repeated, repeated_delta = scgen.predict_perturbation(again, train, control)
    np.testing.assert_array_equal(repeated.X, predicted.X)
    np.testing.assert_array_equal(repeated_delta, delta)


def test_checkpoint_roundtrip_reproduces_predictions_exactly(perturbation_data, tmp_path):
    train, model, _ = _train_without(perturbation_data, max_epochs=3)
    control = perturbation_data[:40]
    delta = scgen.latent_delta(model, train)
    expected = scgen.apply_delta(model, control, delta).X
    dataset = TorchCheckpointDataset(filepath=str(tmp_path / "model.pt"))
    dataset.save(scgen.build_checkpoint({"type0": model}, train.var_names, {"type0": delta}))
    models, deltas = scgen.restore_checkpoint(dataset.load())  # weights_only=True
    np.testing.assert_array_equal(scgen.apply_delta(models["type0"], control, deltas["type0"]).X, expected)


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
    shifted = scgen.shift_batches_in_latent(latent, batches, types)
    np.testing.assert_allclose(shifted[4:6].mean(0), latent[:4].mean(0), atol=1e-5)
    np.testing.assert_array_equal(shifted[:4], latent[:4])  # the largest batch stays
    np.testing.assert_array_equal(shifted[6:8], latent[6:8])  # a type seen in one batch stays
    # a tie between batches b and c: both land on the mean of "b" (first in sorted order)
    np.testing.assert_allclose(shifted[8], shifted[9], atol=1e-6)


def test_remove_batch_effect_returns_corrected_anndata(perturbation_data):
    data = perturbation_data.copy()
    data.obs["batch"] = np.where(data.obs["condition"] == "control", "lab1", "lab2")
    corrected = scgen.remove_batch_effect(
        data, "batch", "cell_type", max_epochs=3, seed=0, device="cpu", n_hidden=32, n_latent=6, progress=False
    )
    assert corrected.shape == data.shape and list(corrected.obs_names) == list(data.obs_names)
    assert corrected.obsm["X_scgen"].shape == (data.n_obs, 6)
    assert "training" in corrected.uns["scgen"]
    latent = corrected.obsm["X_scgen"]
    for cell_type in data.obs["cell_type"].unique():
        in_type = (data.obs["cell_type"] == cell_type).to_numpy()
        means = [latent[in_type & (data.obs["batch"] == b).to_numpy()].mean(0) for b in data.obs["batch"].unique()]
        np.testing.assert_allclose(means[0], means[1], atol=1e-4)


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

    monkeypatch.setattr(scgen, "train_scgen", refuse)


def test_bad_inputs_are_rejected_before_training(perturbation_data, monkeypatch):
    from omicsgen.pipelines.modelling.scgen.nodes import held_out_cell_types

    _no_training(monkeypatch)
    keys = {"condition_key": "condition", "control": "control", "stimulated": "stimulated", "cell_type_key": "cell_type"}

    def settings(holdout, **changed):
        return {"keys": {**keys, **changed}, "holdout": holdout, "dataset": {"name": "toy"}}

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
    keys = {"condition_key": "condition", "control": "control", "stimulated": "stimulated", "cell_type_key": "cell_type"}
    assert held_out_cell_types(fewer, {"keys": keys, "holdout": "largest", "dataset": {"name": "toy"}}) == ["type1"]


def test_genes_differing_from_training_are_rejected(perturbation_data):
    train, model, _ = _train_without(perturbation_data, max_epochs=1)
    renamed = perturbation_data[:20].copy()
    renamed.var_names = [f"other{i}" for i in range(renamed.n_vars)]
    with pytest.raises(InputValidationError, match=r"toy.h5ad: genes differ.*missing 'gene0'"):
        scgen.predict_perturbation(model, train, renamed)
    with pytest.raises(InputValidationError, match=r"59 genes, but the model was trained on 60"):
        scgen.predict_perturbation(model, train, perturbation_data[:20, 1:])


# --- end to end --------------------------------------------------------------------------


def test_kedro_run_scgen_test_env_and_same_seed_same_metrics(kedro_project_copy):
    project = kedro_project_copy
    run_kedro(project, env="test", pipeline_names=["scgen"])
    reporting = project / "data" / "08_reporting" / "kang" / "scgen"
    metrics = json.loads((reporting / "metrics.json").read_text())
    entry = metrics["held_out"]["CD4T"]
    assert set(entry["methods"]) == {"scgen", "gene_arithmetic", "pca_arithmetic", "null"}
    assert len(entry["top_degs"]) == 20 and entry["epochs_run"] <= 3
    for scores in entry["methods"].values():
        assert 0.0 <= scores["r2_mean_all"]["mean"] <= 1.0 and scores["r2_mean_top20"]["sd"] >= 0.0
    for figure in ("mean_expression_scatter", "strongest_deg_violin", "training_curves"):
        assert (reporting / f"{figure}.png").stat().st_size > 10_000
    timings = json.loads((reporting / "timings.json").read_text())
    assert timings["CD4T"]["seconds_per_epoch"] > 0 and timings["CD4T"]["peak_memory_mb"] > 0
    predictions = ad.read_h5ad(project / "data" / "07_model_output" / "kang" / "scgen" / "predictions.h5ad")
    assert set(predictions.obs["held_out"]) == {"CD4T"} and "X_scgen" in predictions.obsm
    assert (project / "data" / "06_models" / "kang" / "scgen" / "model.pt").exists()

    # same seed → byte-identical metrics (re-run modelling + reporting on the saved inputs)
    first = (reporting / "metrics.json").read_bytes()
    (reporting / "metrics.json").unlink()
    run_kedro(project, env="test", pipeline_names=["scgen"], from_nodes=["kang.scgen.resolve_parameters"])
    assert (reporting / "metrics.json").read_bytes() == first


def test_kedro_run_with_unknown_held_out_type_fails_before_training(kedro_project_copy):
    project = kedro_project_copy
    overrides = project / "conf" / "test" / "parameters" / "scgen.yml"
    overrides.write_text(overrides.read_text() + "  holdout: [CD4T, Neuron]\n")
    # the error names the file: the raw file when the run's preflight checks catch it before
    # data engineering, the model input when the pipeline's own check does
    with pytest.raises(InputValidationError, match=r"(kang_pbmc_ifnb|model_input)\.h5ad.*'Neuron' not found"):
        run_kedro(project, env="test", pipeline_names=["scgen"])
    assert not (project / "data" / "06_models" / "kang" / "scgen").exists()
    assert not (project / "data" / "07_model_output" / "kang" / "scgen").exists()
