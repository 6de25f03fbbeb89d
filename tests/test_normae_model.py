"""NormAE: networks, ranking loss, training phases, selection, save/load, applying, metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omicsgen import preprocessing as pp
from omicsgen.metrics import metabolomics as metrics
from omicsgen.models import NormAE
from omicsgen.models.normae import (
    PHASES,
    RECONSTRUCTED_KEY,
    NormAEModule,
    NormAEPlan,
    NormAEPlanConfig,
    pairwise_ranking_loss,
)
from omicsgen.models.normae.plan import batch_mean_spread
from omicsgen.preprocessing.validate import InputValidationError

TINY_MODEL = {
    "encoder_hidden": [24],
    "latent_dim": 6,
    "mapper_hidden": [8],
    "classifier_hidden": [8],
    "ranker_hidden": [8],
}
TINY_TRAINING = {"autoencoder_epochs": 3, "adversary_epochs": 2, "adversarial_epochs": 4, "batch_size": 16}
KEYS = {"batch_key": "batch", "order_key": "injection_order"}


@pytest.fixture(scope="module")
def model_input():
    data, info = pp.simulate_metabolomics(n_features=30, n_batches=3, samples_per_batch=10, qc_every=4, seed=3)
    data.attrs["source_file"], info.attrs["source_file"] = "data.csv", "info.csv"
    adata = pp.metabolomics_to_anndata(data, info)
    adata = pp.scale_features(pp.impute_half_minimum(pp.filter_features(adata)), log=True)
    NormAE.setup_anndata(adata, **KEYS)
    return adata


def train(adata, seed=5, **training):
    model = NormAE(adata, model=TINY_MODEL, training={**TINY_TRAINING, "seed": seed, "device": "cpu", **training})
    model.train()
    return model


@pytest.fixture(scope="module")
def trained(model_input):
    return train(model_input)


def outputs(corrected):
    return {
        "corrected": corrected.layers["normae_corrected"],
        "reconstructed": corrected.layers[RECONSTRUCTED_KEY],
        "latent": corrected.obsm["X_normae"],
    }


# ----------------------------------------------------------------- ranking loss
def test_ranking_loss_rewards_correct_order_within_groups_only():
    order = torch.tensor([1.0, 2.0, 3.0, 4.0])
    group = torch.tensor([0, 0, 1, 1])
    right = pairwise_ranking_loss(torch.tensor([0.0, 10.0, 0.0, 10.0]), order, group)
    wrong = pairwise_ranking_loss(torch.tensor([10.0, 0.0, 10.0, 0.0]), order, group)
    assert right.item() < 1e-4
    assert wrong.item() == pytest.approx(10.0, abs=1e-3)
    # across groups the scores fall (sample 1 → 2), yet only within-group pairs count
    across = pairwise_ranking_loss(torch.tensor([0.0, 10.0, -20.0, -10.0]), order, group)
    assert across.item() < 1e-4


def test_ranking_loss_is_log2_for_equal_scores_and_zero_without_pairs():
    order = torch.tensor([1.0, 2.0, 3.0])
    equal = pairwise_ranking_loss(torch.zeros(3, requires_grad=True), order, torch.zeros(3))
    assert equal.item() == pytest.approx(np.log(2.0))
    alone = pairwise_ranking_loss(torch.ones(3, requires_grad=True), order, torch.arange(3))
    assert alone.item() == 0.0
    alone.backward()  # still differentiable


def test_confusion_ranking_loss_is_smallest_when_no_pair_is_ordered():
    order, group = torch.tensor([1.0, 2.0, 3.0]), torch.zeros(3)
    equal = pairwise_ranking_loss(torch.zeros(3), order, group, target=0.5)
    ranked = pairwise_ranking_loss(torch.tensor([0.0, 5.0, 10.0]), order, group, target=0.5)
    reversed_ = pairwise_ranking_loss(torch.tensor([10.0, 5.0, 0.0]), order, group, target=0.5)
    assert equal.item() == pytest.approx(np.log(2.0))
    # ordering the pairs either way costs the same: a reversed ranking is no escape
    assert ranked.item() == pytest.approx(reversed_.item()) and ranked.item() > equal.item() + 1.0


def test_batch_mean_spread_is_the_between_batch_share_of_variance():
    group = torch.tensor([0, 0, 1, 1])
    same_means = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    assert batch_mean_spread(same_means, group).item() == pytest.approx(0.0, abs=1e-7)
    shifted = torch.tensor([[1.0], [1.0], [-1.0], [-1.0]])  # all variance between the batches
    assert batch_mean_spread(shifted, group).item() == pytest.approx(1.0)
    half = torch.tensor([[2.0], [0.0], [0.0], [-2.0]])  # batch means ±1, total variance 2
    assert batch_mean_spread(half, group).item() == pytest.approx(0.5)


@pytest.mark.parametrize("objective", ["maximise_adversary_loss", "confuse_adversary"])
def test_encoder_objective_terms(objective):
    torch.manual_seed(0)
    module = NormAEModule(10, 2, dropout=0.0, **TINY_MODEL)
    plan = NormAEPlan(module, NormAEPlanConfig(encoder_objective=objective), {})
    batch = {"order": torch.arange(8.0), "batch_index": torch.tensor([0, 1] * 4)}
    latent = torch.randn(8, 6)
    batch_term, order_term = plan._encoder_adversarial_terms(latent, batch)
    batch_ce, order_rank = plan._adversary_losses(latent, batch)
    if objective == "maximise_adversary_loss":
        assert batch_term.item() == pytest.approx(-batch_ce.item()) and order_term.item() == pytest.approx(-order_rank.item())
    else:  # cross-entropy against uniform batches ≥ log(2 batches), ranking against ½ ≥ log 2
        assert batch_term.item() >= np.log(2.0) - 1e-6 and order_term.item() >= np.log(2.0) - 1e-6
    with pytest.raises(ValueError, match="normae.plan.encoder_objective: 'confuse' is not one of"):
        NormAEPlanConfig(encoder_objective="confuse")


# ----------------------------------------------------------------- networks
def test_networks_shapes_and_mirrored_decoder(model_input):
    module = NormAEModule(50, 3, dropout=0.0, **TINY_MODEL)
    x = torch.randn(5, 50)
    latent = module.encoder(x)
    assert latent.shape == (5, 6)
    assert module.decoder(latent).shape == (5, 50)
    assert module.mapper(torch.randn(5, 4)).shape == (5, 6)  # 3 batches + order
    assert module.batch_classifier(latent).shape == (5, 3)
    assert module.order_ranker(latent).shape == (5, 1)
    single = model_input.copy()
    single.obs["batch"] = "1"
    with pytest.raises(InputValidationError, match="at least two batches"):
        train(single)
    with pytest.raises(ValueError, match=r"normae.model: unknown parameter\(s\) \['latent_dims'\]"):
        NormAE(model_input, model={"latent_dims": 3})


def test_unknown_or_misplaced_parameters_are_rejected(model_input):
    with pytest.raises(ValueError, match=r"unknown training parameters \['epochs'\]"):
        NormAE(model_input, training={"epochs": 3})
    with pytest.raises(ValueError, match="instead of max_epochs"):
        NormAE(model_input, training={"max_epochs": 3})
    with pytest.raises(ValueError, match=r"normae.plan: unknown parameter\(s\) \['lr'\]"):
        NormAE(model_input, plan={"lr": 1e-3})


def test_setup_names_missing_columns(model_input):
    with pytest.raises(InputValidationError, match="'run_order'"):
        NormAE.setup_anndata(model_input.copy(), batch_key="batch", order_key="run_order")


# ----------------------------------------------------------------- training
def test_phases_update_only_their_own_networks(model_input):
    model = NormAE(model_input, model=TINY_MODEL, training={"device": "cpu"})
    model.state = {"batch_categories": ["1", "2", "3"], "order_range": [1.0, 100.0]}
    module = model._build_modules()["module"]
    model.modules = {"module": module}
    data = model._tensors(model_input, model.setup)
    data["is_qc"] = torch.from_numpy(model_input.obs["is_qc"].to_numpy(dtype=bool))
    plan = NormAEPlan(module, NormAEPlanConfig(), data)
    batch = {k: v[:16] for k, v in data.items()}
    nets = dict(module.named_children())

    def snapshot():
        return {k: [p.detach().clone() for p in n.parameters()] for k, n in nets.items()}

    def changed(before):
        return {k for k, ps in before.items() if any(not torch.equal(p, q) for p, q in zip(ps, nets[k].parameters(), strict=True))}

    module.train()
    plan.phase = "autoencoder_pretraining"
    before = snapshot()
    plan.training_step(batch, 1)
    assert changed(before) == {"encoder", "decoder", "mapper"}
    plan.phase = "adversary_pretraining"
    before = snapshot()
    plan.training_step(batch, 1)
    assert changed(before) == {"batch_classifier", "order_ranker"}
    plan.phase = "adversarial_training"
    before = snapshot()
    logged = plan.training_step(batch, 1)
    assert changed(before) == set(nets)
    expected = logged["reconstruction"] + logged["ae_batch_term"] + logged["ae_order_term"]
    assert logged["ae_loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_selected_epoch_is_the_minimum_and_its_weights_are_kept(trained, model_input):
    history = trained.training_result.history
    adversarial = [row for row in history if row["phase"] == "adversarial_training"]
    scores = [row["validation_selection_score"] for row in adversarial]
    selected = trained.selected
    assert selected["adversarial_epoch"] == int(np.argmin(scores)) + 1
    assert selected["selected_epoch"] == 3 + 2 + selected["adversarial_epoch"]
    assert trained.training_result.best_epoch == selected["selected_epoch"]
    corrected = trained.correct().layers["normae_corrected"]
    distance = metrics.qc_pca_distance(corrected, model_input.obs["is_qc"].to_numpy())
    assert distance == pytest.approx(selected["qc_pca_distance"], rel=1e-4)
    assert [row["epoch"] for row in history] == list(range(1, 10))
    assert [row["phase"] for row in history] == [PHASES[0]] * 3 + [PHASES[1]] * 2 + [PHASES[2]] * 4
    assert trained.training_result.config["adversarial_epochs"] == 4


def test_selection_score_adds_the_corrected_batch_mean_spread(model_input):
    """selection = QC distance + w_qc × QC L1 + w_batch × spread of the standardised corrected output."""
    model = NormAE(model_input, model=TINY_MODEL, plan={"selection_batch_weight": 50.0, "lambda_corrected_batch_means": 5.0},
                   training={**TINY_TRAINING, "seed": 5, "device": "cpu"})  # fmt: skip
    model.train()
    adversarial = [row for row in model.training_result.history if row["phase"] == "adversarial_training"]
    for row in adversarial:
        parts = row["validation_qc_pca_distance"] + 100.0 * row["validation_qc_reconstruction"]
        assert row["validation_selection_score"] == pytest.approx(parts + 50.0 * row["validation_corrected_batch_mean_spread"])
        assert 0.0 <= row["validation_corrected_batch_mean_spread"] <= 1.0 and row["train_ae_corrected_batch_mean_spread"] >= 0
    selected = model.selected
    kept = adversarial[selected["adversarial_epoch"] - 1]
    assert selected["corrected_batch_mean_spread"] == kept["validation_corrected_batch_mean_spread"]
    assert selected["selection_batch_weight"] == 50.0
    # the kept output's spread is the recorded one: standardised per feature, every sample
    corrected = torch.from_numpy(model.correct().layers["normae_corrected"])
    standardised = (corrected - corrected.mean(dim=0)) / corrected.std(dim=0)
    codes = torch.from_numpy(model_input.obs["batch"].astype("category").cat.codes.to_numpy().astype(np.int64))
    assert batch_mean_spread(standardised, codes).item() == pytest.approx(selected["corrected_batch_mean_spread"], rel=1e-3)


def test_same_seed_same_numbers_and_other_seed_differs(trained, model_input):
    again = train(model_input)
    first, second = outputs(trained.correct()), outputs(again.correct())
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    assert trained.selected == again.selected
    other = train(model_input, seed=6)
    assert not np.array_equal(first["corrected"], other.correct().layers["normae_corrected"])


def test_correct_returns_a_copy_with_documented_keys(trained, model_input):
    before = model_input.copy()
    corrected = trained.correct(model_input, key_added="mine")
    assert corrected is not model_input and "mine" not in model_input.layers and not model_input.obsm
    np.testing.assert_array_equal(model_input.X, before.X)
    assert set(corrected.layers) >= {"mine", RECONSTRUCTED_KEY}
    np.testing.assert_array_equal(corrected.obsm["X_normae"], trained.get_latent_representation())
    # corrected (no batch term) and reconstructed (with it) must differ
    assert not np.allclose(corrected.layers["mine"], corrected.layers[RECONSTRUCTED_KEY])


def test_an_interrupted_training_resumes_to_the_same_weights(trained, model_input, tmp_path):
    """Each phase writes its own resumable checkpoint; resuming replays none of them."""
    model = NormAE(model_input, model=TINY_MODEL, training={**TINY_TRAINING, "seed": 5, "device": "cpu", "checkpoint_every": 1})
    model.checkpoint_dir = tmp_path
    model.train()
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == sorted(f"normae_{phase}.pt" for phase in PHASES)
    resumed = NormAE(model_input, model=TINY_MODEL, training={**TINY_TRAINING, "seed": 5, "device": "cpu", "resume": True})
    resumed.checkpoint_dir = tmp_path
    resumed.train()
    np.testing.assert_array_equal(resumed.correct().layers["normae_corrected"], trained.correct().layers["normae_corrected"])
    assert resumed.selected == trained.selected


# ----------------------------------------------------------------- save / load / apply
def test_save_load_gives_the_same_numbers(trained, model_input, tmp_path):
    path = trained.save(tmp_path / "normae")
    assert path.name == "model.pt"
    restored = NormAE.load(tmp_path / "normae", adata=model_input, device="cpu")
    assert restored.state["batch_categories"] == ["1", "2", "3"]
    assert restored.selected == trained.selected
    before, after = outputs(trained.correct()), outputs(restored.correct())
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])


def test_checkpoint_round_trip_through_the_dataset(trained, model_input, tmp_path):
    from omicsgen.datasets import TorchCheckpointDataset

    dataset = TorchCheckpointDataset(filepath=str(tmp_path / "normae.pt"))
    dataset.save(trained.checkpoint())
    restored = NormAE.from_checkpoint(dataset.load(), device="cpu")
    np.testing.assert_array_equal(
        restored.correct(model_input).layers["normae_corrected"], trained.correct().layers["normae_corrected"]
    )


def test_checkpoint_copies_and_leaves_the_live_parameters_on_their_device(trained):
    device = next(trained.module.parameters()).device
    checkpoint = trained.checkpoint()
    assert all(p.device == device for p in trained.module.parameters())
    live = {p.untyped_storage().data_ptr() for p in trained.module.state_dict().values()}
    saved = checkpoint["state_dict"]["module"]
    assert all(t.device.type == "cpu" for t in saved.values())
    assert not live & {t.untyped_storage().data_ptr() for t in saved.values()}


def test_new_samples_of_known_batches_are_corrected_identically(trained, model_input, tmp_path):
    """The saved batch categories and injection-order range encode a subset the same way."""
    trained.save(tmp_path / "normae")
    restored = NormAE.load(tmp_path / "normae", device="cpu")
    subset = model_input[model_input.obs["batch"].astype(str) == "2"].copy()
    full = trained.correct().layers["normae_corrected"]
    part = restored.correct(subset).layers["normae_corrected"]
    rows = np.flatnonzero(model_input.obs["batch"].astype(str) == "2")
    np.testing.assert_allclose(part, full[rows], rtol=1e-6, atol=1e-6)  # exact at one thread


def test_load_names_missing_features_and_fill_missing_fills_them(trained, model_input, tmp_path, caplog):
    trained.save(tmp_path / "normae")
    missing = list(model_input.var_names[:2])
    partial = model_input[:, 2:].copy()
    with pytest.raises(InputValidationError, match=rf"2 of the model's {model_input.n_vars} genes are missing: '{missing[0]}', '{missing[1]}'"):
        NormAE.load(tmp_path / "normae", adata=partial, device="cpu")
    restored = NormAE.load(tmp_path / "normae", device="cpu")
    with pytest.raises(InputValidationError, match=missing[0]):
        restored.correct(partial)
    filled = restored.correct(partial, fill_missing=True)
    assert list(filled.var_names) == list(model_input.var_names)
    assert np.isfinite(filled.layers["normae_corrected"]).all()
    assert "filled with zeros" in caplog.text


def test_unknown_batches_are_named(trained, model_input):
    other = model_input.copy()
    other.obs["batch"] = other.obs["batch"].astype(str).replace({"1": "9"})
    with pytest.raises(InputValidationError, match=r"batches \['9'\] \(obs column 'batch'\) were not seen in training"):
        trained.correct(other)


# ----------------------------------------------------------------- metrics
def test_qc_metrics_on_known_values():
    rng = np.random.default_rng(0)
    values = rng.uniform(50, 150, (12, 6))
    is_qc = np.zeros(12, dtype=bool)
    is_qc[[0, 4, 8]] = True
    values[is_qc] = values[0]  # identical QCs
    assert metrics.qc_pca_distance(values, is_qc) == pytest.approx(0.0, abs=1e-9)
    assert metrics.median_qc_rsd(values, is_qc) == pytest.approx(0.0, abs=1e-9)
    assert metrics.qc_correlation(values, is_qc) == pytest.approx(1.0)
    values[is_qc] = [[90.0] * 6, [100.0] * 6, [110.0] * 6]  # sd 10, mean 100 → RSD 10 %
    np.testing.assert_allclose(metrics.qc_rsd(values, is_qc), 10.0)
    assert metrics.qc_pca_distance(values, is_qc) > 0


def test_batch_accuracy_and_class_auc_see_what_is_there():
    rng = np.random.default_rng(1)
    batches = np.repeat(["a", "b", "c"], 20)
    classes = np.tile(["cow", "sheep"], 30)
    noise = rng.normal(size=(60, 30))
    shifted = noise + 3.0 * (batches[:, None] == "b") - 3.0 * (batches[:, None] == "c")
    assert metrics.batch_accuracy(shifted, batches) > 0.9
    assert metrics.batch_accuracy(noise, batches) < 0.6
    # chance: the largest batch's share; noise lands near it, a shifted batch far above
    assert metrics.batch_accuracy_chance(np.r_[batches, ["a"] * 20]) == pytest.approx(0.5)
    assert metrics.batch_accuracy(noise, batches) < metrics.batch_accuracy_chance(batches) + 0.25
    assert metrics.batch_accuracy_target_met(0.02, 0.01, chance=1 / 3)  # both at chance
    assert not metrics.batch_accuracy_target_met(0.5, 0.01, chance=1 / 3)
    assert metrics.batch_accuracy_target_met(0.5, 0.6, chance=1 / 3)  # below ComBat
    separated = noise + 2.0 * (classes[:, None] == "cow")
    assert metrics.class_auc(separated, classes, "cow") > 0.95
    assert metrics.class_auc(noise, classes, "cow") < 0.75
    with pytest.raises(ValueError, match="two classes"):
        metrics.class_auc(noise, np.repeat(["x", "y", "z"], 20), "x")
