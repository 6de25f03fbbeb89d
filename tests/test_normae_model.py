"""NormAE: networks, ranking loss, training phases, selection, checkpoints, metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from omicsgen import preprocessing as pp
from omicsgen.metrics import metabolomics as metrics
from omicsgen.models import normae

TINY_NETWORK = {
    "encoder_hidden": [24],
    "latent_dim": 6,
    "mapper_hidden": [8],
    "classifier_hidden": [8],
    "ranker_hidden": [8],
}
TINY_TRAINING = {"autoencoder_epochs": 3, "adversary_epochs": 2, "adversarial_epochs": 4, "batch_size": 16}


@pytest.fixture(scope="module")
def model_input():
    data, info = pp.simulate_metabolomics(n_features=30, n_batches=3, samples_per_batch=10, qc_every=4, seed=3)
    data.attrs["source_file"], info.attrs["source_file"] = "data.csv", "info.csv"
    adata = pp.metabolomics_to_anndata(data, info)
    return pp.scale_features(pp.impute_half_minimum(pp.filter_features(adata)), log=True)


@pytest.fixture(scope="module")
def trained(model_input):
    return normae.train_normae(model_input, TINY_NETWORK, TINY_TRAINING, seed=5, device="cpu")


# ----------------------------------------------------------------- ranking loss
def test_ranking_loss_rewards_correct_order_within_groups_only():
    order = torch.tensor([1.0, 2.0, 3.0, 4.0])
    group = torch.tensor([0, 0, 1, 1])
    right = normae.pairwise_ranking_loss(torch.tensor([0.0, 10.0, 0.0, 10.0]), order, group)
    wrong = normae.pairwise_ranking_loss(torch.tensor([10.0, 0.0, 10.0, 0.0]), order, group)
    assert right.item() < 1e-4
    assert wrong.item() == pytest.approx(10.0, abs=1e-3)
    # across groups the scores fall (sample 1 → 2), yet only within-group pairs count
    across = normae.pairwise_ranking_loss(torch.tensor([0.0, 10.0, -20.0, -10.0]), order, group)
    assert across.item() < 1e-4


def test_ranking_loss_is_log2_for_equal_scores_and_zero_without_pairs():
    order = torch.tensor([1.0, 2.0, 3.0])
    equal = normae.pairwise_ranking_loss(torch.zeros(3, requires_grad=True), order, torch.zeros(3))
    assert equal.item() == pytest.approx(np.log(2.0))
    alone = normae.pairwise_ranking_loss(torch.ones(3, requires_grad=True), order, torch.arange(3))
    assert alone.item() == 0.0
    alone.backward()  # still differentiable


# ----------------------------------------------------------------- networks
def test_networks_shapes_and_mirrored_decoder():
    config = normae.NormAENetworkConfig(n_features=50, n_batches=3, **TINY_NETWORK)
    nets = normae.build_networks(config)
    x = torch.randn(5, 50)
    latent = nets["encoder"](x)
    assert latent.shape == (5, 6)
    assert nets["decoder"](latent).shape == (5, 50)
    assert nets["mapper"](torch.randn(5, 4)).shape == (5, 6)  # 3 batches + order
    assert nets["batch_classifier"](latent).shape == (5, 3)
    assert nets["order_ranker"](latent).shape == (5, 1)
    with pytest.raises(ValueError, match="at least two batches"):
        normae.NormAENetworkConfig(n_features=5, n_batches=1)
    with pytest.raises(ValueError, match="unknown normae network parameters"):
        normae.NormAENetworkConfig.from_params(5, 2, {"latent_dims": 3})


# ----------------------------------------------------------------- training
def test_phases_update_only_their_own_networks(model_input):
    params = normae.NormAETrainingParams.from_params({"batch_size": 16})
    config = normae.NormAENetworkConfig(n_features=model_input.n_vars, n_batches=3, **TINY_NETWORK)
    nets = normae.build_networks(config)
    model = normae.NormAEModel(nets, config, list(model_input.var_names), ["1", "2", "3"], (1.0, 100.0))
    data = normae._tensors(model_input, model, torch.device("cpu"))
    plan = normae.NormAEPlan(nets, params, data)
    batch = {k: v[:16] for k, v in data.items()}

    def snapshot():
        return {k: [p.detach().clone() for p in n.parameters()] for k, n in nets.items()}

    def changed(before):
        return {k for k, ps in before.items() if any(not torch.equal(p, q) for p, q in zip(ps, nets[k].parameters(), strict=True))}

    for net in nets.values():
        net.train()
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
    expected = logged["reconstruction"] - logged["ae_batch_ce"] - logged["ae_order_rank"]
    assert logged["ae_loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_selected_epoch_is_the_minimum_and_its_weights_are_kept(trained, model_input):
    model, record = trained
    history = record["phases"]["adversarial_training"]["history"]
    scores = [row["validation_selection_score"] for row in history]
    selected = record["selected"]
    assert selected["adversarial_epoch"] == int(np.argmin(scores)) + 1
    assert selected["selected_epoch"] == 3 + 2 + selected["adversarial_epoch"]
    corrected = normae.remove_batch_effects(model, model_input, "cpu")["corrected"]
    distance = metrics.qc_pca_distance(corrected, model_input.obs["is_qc"].to_numpy())
    assert distance == pytest.approx(selected["qc_pca_distance"], rel=1e-4)
    table = normae.history_table(record)
    assert list(table["epoch"]) == list(range(1, 10))
    assert list(table["phase"].unique()) == list(normae.PHASES)


def test_same_seed_same_numbers_and_other_seed_differs(trained, model_input):
    model, record = trained
    again, record_again = normae.train_normae(model_input, TINY_NETWORK, TINY_TRAINING, seed=5, device="cpu")
    first = normae.remove_batch_effects(model, model_input, "cpu")
    second = normae.remove_batch_effects(again, model_input, "cpu")
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    assert record["selected"] == record_again["selected"]
    other, _ = normae.train_normae(model_input, TINY_NETWORK, TINY_TRAINING, seed=6, device="cpu")
    assert not np.array_equal(first["corrected"], normae.remove_batch_effects(other, model_input, "cpu")["corrected"])


def test_checkpoint_round_trip_through_the_dataset(trained, model_input, tmp_path):
    from omicsgen.datasets import TorchCheckpointDataset

    model, _ = trained
    dataset = TorchCheckpointDataset(filepath=str(tmp_path / "normae.pt"))
    dataset.save(model.checkpoint(seed=5))
    restored = normae.NormAEModel.from_checkpoint(dataset.load())
    assert restored.batch_categories == model.batch_categories
    before = normae.remove_batch_effects(model, model_input, "cpu")
    after = normae.remove_batch_effects(restored, model_input, "cpu")
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])
    # corrected (no batch term) and reconstructed (with it) must differ
    assert not np.allclose(before["corrected"], before["reconstructed"])


def test_remove_rejects_other_features_and_unknown_batches(trained, model_input):
    model, _ = trained
    with pytest.raises(ValueError, match="features differ"):
        normae.remove_batch_effects(model, model_input[:, 1:], "cpu")
    other = model_input.copy()
    other.obs["batch"] = other.obs["batch"].astype(str).replace({"1": "9"})
    with pytest.raises(ValueError, match=r"batches \['9'\]"):
        normae.remove_batch_effects(model, other, "cpu")


def test_unknown_training_parameter_is_rejected(model_input):
    with pytest.raises(ValueError, match="unknown normae training parameters"):
        normae.train_normae(model_input, TINY_NETWORK, {"epochs": 3}, device="cpu")


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
    separated = noise + 2.0 * (classes[:, None] == "cow")
    assert metrics.class_auc(separated, classes, "cow") > 0.95
    assert metrics.class_auc(noise, classes, "cow") < 0.75
    with pytest.raises(ValueError, match="two classes"):
        metrics.class_auc(noise, np.repeat(["x", "y", "z"], 20), "x")
