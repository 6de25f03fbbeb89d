"""AIF: model pieces, variants, determinism, correction, bad inputs, metrics, baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omicsgen.models.aif import (
    AIFConfig,
    AIFModel,
    class_weights,
    correct,
    embed,
    exp_decay_factor,
    relative_dynamic_scales,
    train_aif,
    validate_batches,
)
from omicsgen.preprocessing.validate import InputValidationError

# Two intra-op threads on a shared 2-core machine make every tiny torch op wait for a busy
# core (100× slower measured); tests use one.
torch.set_num_threads(1)

TINY = {"latent_dim": 4, "hidden": [16], "adversary_hidden": [16]}
QUICK = {"max_epochs": 2, "batch_size": 32, "patience": None, "progress": False, "device": "cpu"}


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


def test_config_rejects_unknown_or_bad_variant_parameters():
    with pytest.raises(ValueError, match="unknown aif model parameters"):
        AIFConfig.from_params({"gama": 1.0})
    with pytest.raises(ValueError, match="weighting"):
        AIFConfig(weighting="dynamic")
    with pytest.raises(ValueError, match="adversary_every"):
        AIFConfig(adversary_every=0)


def test_same_seed_same_numbers_and_correction_outputs(cells):
    model_a, result_a = train_aif(cells, "batch", TINY, {**QUICK, "seed": 5})
    model_b, result_b = train_aif(cells, "batch", TINY, {**QUICK, "seed": 5})
    assert result_a.history[-1]["train_loss"] == result_b.history[-1]["train_loss"]
    out_a = correct(model_a, cells, reference_batch="batch_0", n_samples=3, seed=1)
    out_b = correct(model_b, cells, reference_batch="batch_0", n_samples=3, seed=1)
    np.testing.assert_array_equal(out_a.layers["aif_corrected"], out_b.layers["aif_corrected"])
    assert out_a.layers["aif_corrected"].shape == cells.shape
    assert out_a.obsm["X_aif"].shape == (cells.n_obs, 4)
    assert (out_a.layers["aif_corrected"] >= 0).all()
    assert out_a.uns["aif"]["reference_batch"] == "batch_0"
    assert "aif_corrected" not in cells.layers  # input untouched
    np.testing.assert_allclose(embed(model_a, cells), out_a.obsm["X_aif"], rtol=1e-5, atol=1e-6)
    # Default reference: the largest batch.
    largest = cells.obs["batch"].value_counts().idxmax()
    assert correct(model_a, cells, n_samples=1).uns["aif"]["reference_batch"] == largest


def test_all_variants_combine_and_checkpoint_round_trips(cells):
    variants = {
        **TINY, "weighting": "norm", "weighted_ce": True, "mu": 0.5, "adversary_every": 2,
        "decay_exp": True, "layer": "counts", "log1p": True,
    }  # fmt: skip
    model, result = train_aif(cells, "batch", variants, {**QUICK, "max_epochs": 3})
    history = result.history
    assert all(np.isfinite(row["train_loss"]) for row in history)
    assert history[-1]["train_proj"] > 0  # projection constraint active
    assert "train_aux_train" in history[0] and "train_aux_train" not in history[1]  # delayed: epochs 1, 3
    assert "train_aux_train" in history[2]
    assert history[-1]["lr"] == pytest.approx(1e-3 * 0.999 ** (3 - 0.6))
    assert history[0]["scale_kl"] != 1.0  # norm: scaled by the first epoch's value
    restored = AIFModel.from_checkpoint(model.checkpoint())
    np.testing.assert_allclose(embed(restored, cells), embed(model, cells), rtol=1e-5, atol=1e-6)


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
        train_aif(cells, "batch", TINY, {**QUICK, "batch_size": 500})


def test_baselines_are_a_name_to_function_mapping_and_reduce_batch_signal(cells):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from omicsgen.metrics.integration import BASELINES, baseline_embeddings

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

