"""AIF: model pieces, variants, determinism, correction, save/load, checkpoints, bad inputs,
grid parameters, baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omicsgen.models import AIF
from omicsgen.models.aif import AIFPlanConfig, validate_batches
from omicsgen.models.aif.plan import class_weights, exp_decay_factor, relative_dynamic_scales
from omicsgen.preprocessing.validate import InputValidationError

# Two intra-op threads on a shared 2-core machine make every tiny torch op wait for a busy
# core (100× slower measured); tests use one.
torch.set_num_threads(1)

TINY = {"latent_dim": 4, "hidden": [16], "adversary_hidden": [16]}
QUICK = {"max_epochs": 2, "batch_size": 32, "patience": None, "progress": False, "device": "cpu"}
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(scope="module")
def cells():
    """300 simulated cells × 120 genes, 3 batches of different sizes, log-normalised X."""
    import scanpy as sc

    from omicsgen.preprocessing import simulate_scrna_counts

    adata = simulate_scrna_counts(n_cells=300, n_genes=120, n_cell_types=3, n_batches=3, seed=3)
    adata.layers["counts"] = adata.X.copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    adata.obs["batch"] = adata.obs["batch"].astype(str)
    return adata


def _registered(adata, **keys):
    adata = adata.copy()
    AIF.setup_anndata(adata, batch_key="batch", **keys)
    return adata


def _trained(cells, model=TINY, plan=None, **training):
    aif = AIF(_registered(cells), model=model, plan=plan, training={**QUICK, **training})
    aif.train()
    return aif


@pytest.fixture(scope="module")
def trained(cells):
    return _trained(cells, seed=5)


def test_relative_dynamic_scales_use_medians_over_the_last_window():
    history = [{"mse": 1.0, "kl": 100.0, "class": 1.0, "class_rec": 1.0, "aux": 1.0, "gen": 1.0, "proj": 0.0}] * 8
    history += [{"mse": 2.0, "kl": 10.0, "class": 0.5, "class_rec": 4.0, "aux": -2.0, "gen": 8.0, "proj": 0.5}] * 2
    scales = relative_dynamic_scales(history, ratio=0.2)  # last 2 of 10 epochs
    assert scales["mse"] == 1.0
    assert scales["kl"] == pytest.approx(0.2)
    assert scales["class"] == pytest.approx(4.0)
    assert scales["aux"] == pytest.approx(1.0)  # magnitudes, not signs
    assert scales["gen"] == pytest.approx(0.25)
    assert scales["proj"] == pytest.approx(4.0)


def test_exp_decay_starts_after_twenty_percent_of_epochs():
    assert exp_decay_factor(10, 100) == 1.0
    assert exp_decay_factor(20, 100) == 1.0
    assert exp_decay_factor(120, 100) == pytest.approx(0.999**100)


def test_weighted_ce_weights_are_normalised_inverse_frequencies():
    weights = class_weights(np.array([0] * 60 + [1] * 30 + [2] * 10), 3)
    assert weights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(weights / weights[0], [1.0, 2.0, 6.0], rtol=1e-6)


def test_sections_reject_unknown_or_bad_variant_parameters(cells):
    with pytest.raises(ValueError, match=r"aif\.plan: unknown parameter\(s\) \['gama'\]"):
        AIF(_registered(cells), plan={"gama": 1.0})
    with pytest.raises(ValueError, match=r"aif\.model: unknown parameter\(s\) \['gamma'\]"):
        AIF(_registered(cells), model={"gamma": 1.0})  # a plan value in the model section
    with pytest.raises(ValueError, match="weighting"):
        AIFPlanConfig(weighting="dynamic")
    with pytest.raises(ValueError, match="adversary_every"):
        AIFPlanConfig(adversary_every=0)
    with pytest.raises(ValueError, match=r"setup_anndata"):
        AIF(cells.copy())  # not registered


def test_same_seed_same_numbers_and_correction_outputs(cells, trained):
    twin = _trained(cells, seed=5)
    assert trained.training_result.history[-1]["train_loss"] == twin.training_result.history[-1]["train_loss"]
    out_a = trained.correct(reference_batch="batch_0", n_samples=3, seed=1)
    out_b = twin.correct(cells, reference_batch="batch_0", n_samples=3, seed=1)
    np.testing.assert_array_equal(out_a.layers["aif_corrected"], out_b.layers["aif_corrected"])
    assert out_a.layers["aif_corrected"].shape == cells.shape
    assert out_a.obsm["X_aif"].shape == (cells.n_obs, 4)
    assert (out_a.layers["aif_corrected"] >= 0).all()
    assert out_a.uns["aif"]["reference_batch"] == "batch_0"
    assert "aif_corrected" not in cells.layers and "aif_corrected" not in trained.adata.layers  # inputs untouched
    np.testing.assert_allclose(trained.get_latent_representation(), out_a.obsm["X_aif"], rtol=1e-5, atol=1e-6)
    # Default reference: the largest batch; default seed: the training seed; key_added side by side.
    largest = cells.obs["batch"].value_counts().idxmax()
    default = trained.correct(n_samples=1)
    assert default.uns["aif"]["reference_batch"] == largest
    np.testing.assert_array_equal(
        default.layers["aif_corrected"], trained.correct(n_samples=1, seed=5).layers["aif_corrected"]
    )
    both = trained.correct(out_a, reference_batch="batch_1", n_samples=1, key_added="aif_batch_1")
    assert {"aif_corrected", "aif_batch_1"} <= set(both.layers)


def test_all_variants_combine_and_checkpoint_round_trips(cells):
    plan = {"weighting": "norm", "weighted_ce": True, "mu": 0.5, "adversary_every": 2, "decay_exp": True}
    aif = AIF(_registered(cells, layer="counts"), model={**TINY, "log1p": True}, plan=plan, training={**QUICK, "max_epochs": 3})
    history = aif.train().history
    assert all(np.isfinite(row["train_loss"]) for row in history)
    assert history[-1]["train_proj"] > 0  # projection constraint active
    assert "train_aux_train" in history[0] and "train_aux_train" not in history[1]  # delayed: epochs 1, 3
    assert "train_aux_train" in history[2]
    assert history[-1]["lr"] == pytest.approx(1e-3 * 0.999 ** (3 - 0.6))
    assert history[0]["scale_kl"] != 1.0  # norm: scaled by the first epoch's value
    restored = AIF.from_checkpoint(aif.checkpoint(), cells.copy(), device="cpu")
    assert restored.setup.layer == "counts" and restored.model_config.log1p and restored.plan_config.mu == 0.5
    np.testing.assert_array_equal(restored.get_latent_representation(cells), aif.get_latent_representation(cells))
    no_counts = cells.copy()
    del no_counts.layers["counts"]  # the registered input layer is required to correct
    with pytest.raises(InputValidationError, match="aif input layer 'counts' missing"):
        restored.correct(no_counts)


def test_save_load_gives_the_same_numbers(cells, trained, tmp_path):
    path = trained.save(tmp_path / "aif")
    assert path.name == "model.pt"
    shuffled = cells[:, cells.var_names[::-1]].copy()  # genes matched by name, not position
    loaded = AIF.load(tmp_path / "aif", adata=shuffled, device="cpu")
    assert loaded.batches == trained.batches and list(loaded.adata.var_names) == trained.var_names
    np.testing.assert_array_equal(loaded.get_latent_representation(), trained.get_latent_representation())
    expected = trained.correct(reference_batch="batch_2", n_samples=2)
    got = loaded.correct(reference_batch="batch_2", n_samples=2)
    np.testing.assert_array_equal(got.layers["aif_corrected"], expected.layers["aif_corrected"])
    assert loaded.training_result.history == trained.training_result.history


def test_load_with_missing_genes_lists_them_and_fill_missing_adds_zeros(cells, trained, tmp_path):
    trained.save(tmp_path / "aif")
    missing = list(cells.var_names[:3])
    partial = cells[:, cells.var_names[3:]].copy()
    with pytest.raises(InputValidationError, match="3 of the model's 120 genes are missing") as error:
        AIF.load(tmp_path / "aif", adata=partial, device="cpu")
    assert all(gene in str(error.value) for gene in missing)
    with pytest.raises(InputValidationError, match="genes are missing"):
        trained.correct(partial)
    loaded = AIF.load(tmp_path / "aif", device="cpu")
    with pytest.raises(ValueError, match="loaded without cells"):
        loaded.correct()
    corrected = loaded.correct(partial, fill_missing=True, n_samples=1)
    assert list(corrected.var_names) == trained.var_names
    assert np.isfinite(corrected.layers["aif_corrected"]).all()
    assert loaded.get_latent_representation(partial, fill_missing=True).shape == (cells.n_obs, 4)


def test_checkpoint_copies_to_cpu_and_leaves_the_live_model_on_its_device(cells):
    """The issue's bug: checkpoint() moved the live model to the CPU in place, so the next
    step (correction on the training device) crashed on CUDA."""
    aif = _trained(cells, device=DEVICE, max_epochs=1)
    checkpoint = aif.checkpoint()
    for name, module in aif.modules.items():
        live = module.state_dict()
        for key, tensor in live.items():
            assert tensor.device.type == DEVICE, (name, key)
            saved = checkpoint["state_dict"][name][key]
            assert saved.device.type == "cpu"
            assert saved.untyped_storage().data_ptr() != tensor.untyped_storage().data_ptr(), (name, key)
            assert torch.equal(saved, tensor.cpu())
    weight = aif.modules["cvae"].mean.weight
    with torch.no_grad():
        weight.add_(1.0)  # the checkpoint is a copy: changing the live model leaves it alone
    assert not torch.equal(checkpoint["state_dict"]["cvae"]["mean.weight"], weight.detach().cpu())
    out = aif.correct(n_samples=1)  # still usable on its device after checkpoint()
    assert np.isfinite(out.layers["aif_corrected"]).all()


def test_correct_refuses_a_batch_the_model_never_saw(cells, trained):
    new = cells[:40].copy()
    new.obs["batch"] = ["batch_0"] * 39 + ["batch_9"]
    with pytest.raises(InputValidationError, match=r"batch\(es\) 'batch_9' of obs column 'batch' not among the 3 batches"):
        trained.correct(new)
    with pytest.raises(InputValidationError, match="reference batch 'batch_9' not among"):
        trained.correct(cells, reference_batch="batch_9")
    renamed = cells[:40].copy()
    renamed.obs["chemistry"] = renamed.obs.pop("batch")
    corrected = trained.correct(renamed, batch_key="chemistry", n_samples=1)  # another column name
    assert corrected.uns["aif"]["reference_batch"] in trained.batches


def test_a_resumed_training_ends_with_the_same_weights(cells, tmp_path):
    """The plan's three optimisers and its loss scales (rel_dyn) are part of the resumable state."""
    whole = _trained(cells, max_epochs=4, seed=2)
    killed = AIF(_registered(cells), model=TINY, training={**QUICK, "max_epochs": 2, "seed": 2, "checkpoint_every": 2})
    killed.checkpoint_dir = tmp_path
    killed.train()
    resumed = AIF(
        _registered(cells), model=TINY, training={**QUICK, "max_epochs": 4, "seed": 2, "checkpoint_every": 2, "resume": True}
    )
    resumed.checkpoint_dir = tmp_path
    history = resumed.train().history
    assert [r["train_loss"] for r in history] == [r["train_loss"] for r in whole.training_result.history]
    assert history[-1]["scale_kl"] == whole.training_result.history[-1]["scale_kl"]
    for name, module in whole.modules.items():
        for key, value in module.state_dict().items():
            assert torch.equal(value, resumed.modules[name].state_dict()[key]), (name, key)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("one_batch", "one batch only"),
        ("small_batch", "fewer than the batch size"),
        ("bad_reference", "reference batch 'nope' not found"),
        ("no_cell_type", "cell type column 'cell_type'"),
    ],
)
def test_bad_inputs_fail_before_training(cells, change, message):
    adata = cells.copy()
    adata.uns["source_file"] = "data/05_model_input/x.h5ad"
    reference, batch_size = None, 32
    if change == "one_batch":
        adata.obs["batch"] = "b"
    elif change == "small_batch":
        batch_size = 1000
    elif change == "bad_reference":
        reference = "nope"
    else:
        adata.obs = adata.obs.drop(columns="cell_type")
    with pytest.raises(InputValidationError, match=message) as error:
        validate_batches(adata, "batch", batch_size, reference, "cell_type")
    assert "data/05_model_input/x.h5ad" in str(error.value)


def test_training_refuses_batches_smaller_than_the_batch_size(cells):
    with pytest.raises(InputValidationError, match="fewer than the batch size 500"):
        _trained(cells, batch_size=500)


def test_grid_parameters_go_to_the_section_that_has_them():
    from omicsgen.models.aif_grid import split_point_params

    base = {"model": TINY, "plan": {"gamma": 1.0}, "training": QUICK}
    sections = split_point_params({"gamma": 10.0, "latent_dim": 8.0, "batch_size": 64.0, "lr": 0.01}, base, seed=3)
    assert sections["plan"] == {"gamma": 10.0, "lr": 0.01}
    assert sections["model"]["latent_dim"] == 8 and isinstance(sections["model"]["latent_dim"], int)
    assert sections["training"]["batch_size"] == 64 and sections["training"]["seed"] == 3
    assert base["plan"] == {"gamma": 1.0}  # the base sections are not modified
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['gama'\]"):
        split_point_params({"gama": 1.0}, base, seed=0)


def test_baselines_are_a_name_to_function_mapping_and_reduce_batch_signal(cells):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from omicsgen.models.baselines.integration import BASELINES, baseline_embeddings

    assert {"uncorrected", "combat", "harmony", "scgen"} <= set(BASELINES)
    embeddings = baseline_embeddings(cells, "batch", "cell_type", ["uncorrected", "combat", "harmony"], n_pcs=10)
    assert {k: v.shape for k, v in embeddings.items()} == {k: (cells.n_obs, 10) for k in embeddings}

    def accuracy(x):
        return cross_val_score(LogisticRegression(max_iter=500), x, cells.obs["batch"], cv=3).mean()

    assert accuracy(embeddings["combat"]) < accuracy(embeddings["uncorrected"])
    assert accuracy(embeddings["harmony"]) < accuracy(embeddings["uncorrected"])
    scgen = baseline_embeddings(cells, "batch", "cell_type", ["scgen"], n_pcs=10, options={"scgen": {"max_epochs": 1}})
    assert scgen["scgen"].shape == (cells.n_obs, 10) and np.isfinite(scgen["scgen"]).all()
    with pytest.raises(ValueError, match="unknown baselines"):
        baseline_embeddings(cells, "batch", "cell_type", ["scanorama"])


def test_pipeline_parameters_are_checked_by_name(cells):
    """The YAML's sections go to the dataclasses that read them; a key of the old flat
    shape (``aif.seed``) is an error, not silently ignored."""
    from pathlib import Path

    import yaml

    from omicsgen.pipelines.modelling.aif import bind_dataset, check_inputs

    conf = Path(__file__).resolve().parents[1] / "conf" / "base" / "parameters" / "aif.yml"
    params = {k: v for k, v in yaml.safe_load(conf.read_text())["aif"].items() if k not in ("datasets", "overrides")}
    settings = {**bind_dataset(params, {"keys": {"batch": "batch", "cell_type": "cell_type"}}), "dataset": {}}
    check_inputs(cells, settings)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['seed'\].*seed and device are in aif.training"):
        check_inputs(cells, {**settings, "seed": 1})
    with pytest.raises(ValueError, match=r"aif\.plan: unknown parameter\(s\) \['latent_dim'\]"):
        check_inputs(cells, {**settings, "plan": {**settings["plan"], "latent_dim": 8}})
    with pytest.raises(ValueError, match=r"aif\.grid_search: unknown parameter\(s\) \['seeds'\]"):
        check_inputs(cells, {**settings, "grid_search": {"seeds": [0]}})
