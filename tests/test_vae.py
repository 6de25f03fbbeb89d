"""The VAE model class (train, embed, save/load, gene alignment), clustering and metrics."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from omicsgen import clustering
from omicsgen.datasets import TorchCheckpointDataset
from omicsgen.metrics.clustering import agreement, bin_purity, label_silhouette
from omicsgen.models import VAE
from omicsgen.models.nn import kl_to_standard_normal
from omicsgen.models.vae.model import VAEModelConfig, check_features, resolve_output_activation
from omicsgen.models.vae.module import Decoder, Encoder
from omicsgen.models.vae.plan import VAEPlanConfig, VAETrainingPlan
from omicsgen.preprocessing import normalise_expression
from omicsgen.preprocessing.feature_table import feature_table_to_anndata, read_samples_by_features
from omicsgen.preprocessing.validate import InputValidationError

FAST = {"max_epochs": 15, "batch_size": 64, "patience": None, "progress": False, "device": "cpu"}
SMALL = {"hidden_dims": [64, 32], "latent_dim": 4}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These nets are tiny: on a shared 2-core machine, torch's OpenMP pool spinning against
    other processes makes an epoch 10-50× slower than one thread does. numba (scanpy) resets
    the OpenMP thread count when it runs, so it is pinned to one thread as well."""
    import numba

    previous = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    yield
    torch.set_num_threads(previous[0])
    numba.set_num_threads(previous[1])


@pytest.fixture(scope="module")
def cells(simulated_counts):
    adata = normalise_expression(simulated_counts, target_sum=1e4, counts_layer="counts")
    adata.uns["source_file"] = "simulated.h5ad"
    return adata


def trained(adata: ad.AnnData, model=None, plan=None, training=None, **setup) -> VAE:
    """A VAE trained on ``adata`` (registered with ``setup``): small and fast by default."""
    VAE.setup_anndata(adata, **setup)
    vae = VAE(adata, {**SMALL, **(model or {})}, plan, {**FAST, **(training or {})})
    vae.train()
    return vae


def test_kl_matches_torch_distributions():
    mean, logvar = torch.randn(5, 3), torch.randn(5, 3)
    posterior = torch.distributions.Normal(mean, torch.exp(0.5 * logvar))
    prior = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    expected = torch.distributions.kl_divergence(posterior, prior).sum(dim=1)
    torch.testing.assert_close(kl_to_standard_normal(mean, logvar), expected)


def test_network_shapes_and_logvar_options():
    x = torch.rand(10, 20)
    for softplus in (False, True):
        encoder = Encoder(20, [64, 32], 3, softplus_logvar=softplus).eval()
        decoder = Decoder(3, [64, 32], 20, sigmoid_output=True).eval()
        mean, logvar = encoder(x)
        assert mean.shape == logvar.shape == (10, 3)
        out = decoder(mean)
        assert out.shape == (10, 20) and out.min() >= 0 and out.max() <= 1
        if softplus:
            assert (logvar >= 0).all()  # the tutorial's constraint: posterior variance ≥ 1
    # the decoder mirrors the encoder: Linear → BatchNorm → LeakyReLU → Dropout per hidden layer
    assert [type(m).__name__ for m in Decoder(3, [64, 32], 20, activation="leaky_relu", dropout=0.1).net] == [
        "Linear", "BatchNorm1d", "LeakyReLU", "Dropout", "Linear", "BatchNorm1d", "LeakyReLU", "Dropout", "Linear",
    ]  # fmt: skip


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="logvar_activation must be one of"):
        VAEModelConfig(logvar_activation="exp")
    with pytest.raises(ValueError, match="dropout must be in"):
        VAEModelConfig(dropout=1.5)
    with pytest.raises(ValueError, match=r"vae.model: unknown parameter\(s\) \['latent'\]"):
        VAEModelConfig.from_params({"latent": 3}, "vae.model")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['lr'\]"):
        VAEPlanConfig.from_params({"lr": 0.1})
    with pytest.raises(ValueError, match="'sigmoid' needs inputs scaled to \\[0, 1\\]"):
        resolve_output_activation("sigmoid", np.array([[0.0, 2.0]]))
    assert resolve_output_activation("auto", np.array([[0.0, 0.5]])) == "sigmoid"
    assert resolve_output_activation("auto", np.array([[0.0, 5.5]])) == "linear"


def test_training_is_deterministic_and_learns(cells):
    first, second, other = (trained(cells.copy(), training={"seed": seed}) for seed in (3, 3, 4))
    latent = [m.get_latent_representation() for m in (first, second, other)]
    np.testing.assert_array_equal(latent[0], latent[1])
    assert not np.allclose(latent[0], latent[2])
    assert first.model_config.output_activation == "linear" and latent[0].shape == (cells.n_obs, 4)
    history = pd.DataFrame(first.training_result.history)
    assert history["train_loss"].iloc[-1] < 0.8 * history["train_loss"].iloc[0]
    assert "validation_loss" not in history  # simulated_counts has no split column: trains on all

    def without_timing(history):
        return [{k: v for k, v in row.items() if k not in ("seconds", "cpu_seconds")} for row in history]

    assert without_timing(first.training_result.history) == without_timing(second.training_result.history)
    # the latent separates the simulated cell types
    assert label_silhouette(latent[0], cells.obs["cell_type"]) > 0.2
    # embed: a copy with the latent under key_added, the caller's AnnData untouched
    embedded = first.embed(cells, key_added="X_vae_seed3")
    np.testing.assert_array_equal(embedded.obsm["X_vae_seed3"], latent[0])
    assert "X_vae_seed3" not in cells.obsm and embedded.var_names.equals(cells.var_names)
    both = other.embed(embedded)  # two results side by side
    assert {"X_vae", "X_vae_seed3"} <= set(both.obsm)


def test_split_column_drives_validation_and_softplus_variance(cells):
    split = cells.copy()
    split.obs["split"] = np.where(np.arange(cells.n_obs) % 5 == 0, "validation", "train")
    vae = trained(split, {"logvar_activation": "softplus"}, {"kl_warmup_epochs": 5}, {"max_epochs": 6})
    assert "validation_loss" in vae.training_result.history[0]
    _, logvar = vae.modules["encoder"](torch.from_numpy(check_features(split)))
    assert (logvar >= 0).all()
    plan = VAETrainingPlan(vae.modules["encoder"], vae.modules["decoder"], VAEPlanConfig(beta=2.0, kl_warmup_epochs=4))
    assert [plan.beta_at(e) for e in (1, 2, 4, 9)] == [0.5, 1.0, 2.0, 2.0]


def test_save_load_roundtrip_and_gene_alignment(cells, tmp_path):
    vae = trained(cells.copy(), training={"max_epochs": 3})
    expected = vae.get_latent_representation(cells)
    vae.save(tmp_path / "vae")
    loaded = VAE.load(tmp_path / "vae", adata=cells)
    np.testing.assert_array_equal(loaded.get_latent_representation(cells), expected)  # exact on CPU
    assert loaded.model_config == vae.model_config and loaded.model_config.output_activation == "linear"
    # the checkpoint as the pipeline's catalog saves it (weights_only) gives the same model
    dataset = TorchCheckpointDataset(filepath=str(tmp_path / "model.pt"))
    dataset.save(vae.checkpoint())
    checkpoint = dataset.load()
    np.testing.assert_array_equal(VAE.from_checkpoint(checkpoint).get_latent_representation(cells), expected)
    # genes in another order plus an extra gene: aligned by name, same latent
    shuffled = cells[:, np.random.default_rng(0).permutation(cells.n_vars)].copy()
    extra = ad.concat([shuffled, ad.AnnData(np.ones((cells.n_obs, 1), np.float32), obs=cells.obs[[]],
                                            var=pd.DataFrame(index=["EXTRA"]))], axis=1)
    extra.uns["source_file"] = "new_cells.h5ad"
    np.testing.assert_allclose(loaded.get_latent_representation(extra), expected, rtol=1e-5, atol=1e-6)
    assert "EXTRA" in loaded.embed(extra).var_names  # embed keeps the caller's features
    missing = extra[:, [g for g in extra.var_names if g not in ("gene_3", "gene_7")]].copy()
    missing.uns["source_file"] = "new_cells.h5ad"
    with pytest.raises(InputValidationError, match=r"new_cells.h5ad: 2 of the model's 300 genes are missing.*'gene_3', 'gene_7'"):
        loaded.embed(missing)
    with pytest.raises(InputValidationError, match=r"new_cells.h5ad: 2 of the model's 300 genes are missing.*'gene_3', 'gene_7'"):
        VAE.load(tmp_path / "vae", adata=missing)
    filled = loaded.embed(missing, fill_missing=True)
    assert filled.obsm["X_vae"].shape == expected.shape and filled.n_vars == missing.n_vars
    with pytest.raises(ValueError, match="checkpoint is for model 'scgen'"):
        VAE.from_checkpoint({**checkpoint, "model": "scgen"})


def test_checkpoint_copies_weights_and_leaves_the_model_on_its_device(cells):
    vae = trained(cells.copy(), training={"max_epochs": 1})
    checkpoint = vae.checkpoint()
    for name, module in vae.modules.items():
        live = module.state_dict()
        for key, tensor in checkpoint["state_dict"][name].items():
            assert tensor.device.type == "cpu" and live[key].device == vae.device
            assert tensor.untyped_storage().data_ptr() != live[key].untyped_storage().data_ptr()
            torch.testing.assert_close(tensor, live[key].cpu(), rtol=0, atol=0)
    assert checkpoint["var_names"] == list(cells.var_names) and checkpoint["setup"]["split_key"] == "split"


def test_bad_matrix_rejected_before_training(cells):
    bad = cells.copy()
    bad.X = bad.X.toarray()
    bad.X[4, 2] = np.nan
    bad.uns["source_file"] = "bad.h5ad"
    with pytest.raises(InputValidationError, match=r"bad.h5ad: 1 NaN/inf values in samples 'cell_4', features 'gene_2'"):
        trained(bad)
    one_train = cells.copy()
    one_train.obs["split"] = ["train"] + ["validation"] * (cells.n_obs - 1)
    with pytest.raises(InputValidationError, match="marks 1 samples as 'train'"):
        trained(one_train)
    with pytest.raises(ValueError, match="call VAE.setup_anndata"):
        VAE(ad.AnnData(np.ones((3, 2), np.float32)))


def test_feature_tables(tmp_path):
    table = pd.DataFrame({"f1": [0.1, 0.2, 0.3], "f2": [1, 2, 3], "cell_type": ["a", "b", "a"]},
                         index=["c1", "c2", "c3"])
    path = tmp_path / "features.csv"
    table.to_csv(path)
    adata = read_samples_by_features(path, ["cell_type", "split"])
    assert adata.shape == (3, 2) and list(adata.obs["cell_type"]) == ["a", "b", "a"]
    assert adata.uns["source_file"] == str(path)
    with pytest.raises(InputValidationError, match=r"t.csv: feature columns must be numeric; non-numeric columns 'cell_type'"):
        feature_table_to_anndata(table, [], source="t.csv")
    table.loc["c2", "f1"] = np.nan
    with pytest.raises(InputValidationError, match=r"t.csv: 1 missing/NaN/inf values in rows 'c2', columns 'f1'"):
        feature_table_to_anndata(table, ["cell_type"], source="t.csv")
    with pytest.raises(InputValidationError, match="expected an .h5ad or a .csv"):
        (tmp_path / "x.xlsx").write_text("x")
        read_samples_by_features(tmp_path / "x.xlsx")


def test_agreement_and_bin_purity_by_hand():
    truth = ["a", "a", "a", "b", "b", "c"]
    assert agreement(truth, ["1", "1", "1", "2", "2", "3"])["ari"] == pytest.approx(1.0)
    scores = agreement(truth, ["1", "1", "noise", "2", "2", "2"])
    assert scores["n_clusters"] == 2 and scores["noise_fraction"] == pytest.approx(1 / 6)
    purity = bin_purity(truth, ["1", "1", "noise", "2", "2", "2"])
    bins = {b["bin"]: b for b in purity["bins"]}
    assert bins["1"] == {"bin": "1", "source": "a", "size": 2, "precision": 1.0, "recall": pytest.approx(2 / 3)}
    assert bins["2"]["source"] == "b" and bins["2"]["precision"] == pytest.approx(2 / 3)
    assert bins["2"]["recall"] == 1.0
    assert purity["binned_fraction"] == pytest.approx(5 / 6)
    assert purity["sources_recovered"] == 1  # a: precision 1, recall 2/3; b: precision 2/3


def test_clustering_recovers_separated_groups():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0, 0], [8, 0, 0], [0, 8, 0]], dtype=np.float32)
    labels = np.repeat([0, 1, 2], 60)
    points = centres[labels] + rng.normal(0, 0.5, (180, 3)).astype(np.float32)
    adata = ad.AnnData(np.zeros((180, 1), np.float32))
    adata.obsm["X_toy"] = points
    out = clustering.cluster_embedding(
        adata, "toy", n_neighbors=10, leiden={"resolution": 0.2}, hdbscan={"min_cluster_size": 20}
    )
    assert "X_toy" in out.obsm and out.obsm["X_umap_toy"].shape == (180, 2)
    assert "toy_leiden" not in adata.obs  # input untouched
    assert agreement(labels, out.obs["toy_leiden"])["ari"] > 0.95
    assert agreement(labels, out.obs["toy_hdbscan"])["ari"] > 0.9
    assert clustering.pca_embedding(points, 50).shape == (180, 3)


def test_negative_binomial_log_likelihood_matches_scipy():
    from scipy.stats import nbinom

    from omicsgen.models.vae.plan import negative_binomial_log_likelihood

    counts = torch.tensor([[0.0, 1.0, 7.0], [3.0, 0.0, 40.0]], dtype=torch.float64)
    mean = torch.tensor([[0.5, 2.0, 6.0], [3.0, 0.1, 25.0]], dtype=torch.float64)
    theta = torch.tensor([0.7, 5.0, 2.0], dtype=torch.float64)
    got = negative_binomial_log_likelihood(counts, mean, theta, eps=0.0)
    # scipy's (n, p): n = θ, p = θ / (θ + mean)
    expected = nbinom.logpmf(counts.numpy(), theta.numpy(), (theta / (theta + mean)).numpy())
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)


def test_count_likelihood_trains_on_raw_counts_and_separates_types(cells):
    first, second = (
        trained(cells.copy(), model={"likelihood": "negative_binomial"}, cell_type_key="cell_type", counts_layer="counts")
        for _ in range(2)
    )
    latent = first.get_latent_representation()
    np.testing.assert_array_equal(latent, second.get_latent_representation())
    history = pd.DataFrame(first.training_result.history)
    assert history["train_reconstruction"].iloc[-1] < 0.8 * history["train_reconstruction"].iloc[0]
    assert label_silhouette(latent, cells.obs["cell_type"]) > 0.2
    decoder = first.modules["decoder"]
    assert decoder.count_output and decoder.log_theta.shape == (cells.n_vars,)
    # the saved model keeps its count decoder and dispersions
    loaded = VAE.from_checkpoint(first.checkpoint())
    np.testing.assert_array_equal(loaded.get_latent_representation(cells), latent)
    assert torch.equal(loaded.modules["decoder"].log_theta, decoder.log_theta)


def test_count_likelihood_needs_a_counts_layer_of_counts(cells):
    with pytest.raises(InputValidationError, match=r"simulated\.h5ad.*counts_layer"):
        trained(cells.copy(), model={"likelihood": "negative_binomial"})
    negative = cells.copy()
    negative.layers["counts"] = negative.layers["counts"].copy()
    negative.layers["counts"][0, 0] = -1
    with pytest.raises(InputValidationError, match=r"layers\['counts'\].*negative values.*vae\.cells\.input\.counts_layer"):
        trained(negative, model={"likelihood": "negative_binomial"}, counts_layer="counts")


def test_the_pipeline_checks_the_counts_layer_before_training(cells):
    from omicsgen.pipelines.modelling.vae.nodes import choose_cells, setup_keys

    section = {"input": {"label_key": "cell_type", "counts_layer": "raw"}, "model": {"likelihood": "negative_binomial"}}
    with pytest.raises(InputValidationError, match=r"simulated\.h5ad: counts layer 'raw' missing \(vae\.cells\.input\.counts_layer\)"):
        choose_cells(cells, section)
    # the Gaussian default never asks for the layer, so data without counts still runs
    gaussian = {**section, "model": {"likelihood": "gaussian"}}
    assert choose_cells(cells, gaussian) is cells and "counts_layer" not in setup_keys(gaussian)


def test_batch_conditioned_decoder_frees_the_latent_of_the_batch(cells):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    longer = {"max_epochs": 60}  # at 15 epochs neither latent has settled (measured: probe 0.92 / 0.94)
    plain = trained(cells.copy(), training=longer, cell_type_key="cell_type")
    conditioned = trained(cells.copy(), training=longer, cell_type_key="cell_type", batch_key="batch")
    again = trained(cells.copy(), training=longer, cell_type_key="cell_type", batch_key="batch")
    latent = conditioned.get_latent_representation()
    np.testing.assert_array_equal(latent, again.get_latent_representation())  # deterministic
    assert conditioned.state["batch_categories"] == ["batch_0", "batch_1"]
    decoder = conditioned.modules["decoder"]
    assert decoder.n_batches == 2 and decoder.net[0].in_features == SMALL["latent_dim"] + 2

    def batch_readability(z):
        return cross_val_score(LogisticRegression(max_iter=2000), z, cells.obs["batch"], cv=5).mean()

    # the batch moves into the decoder: a linear probe reads it far less well from the latent
    # (measured 1.00 → 0.60) and the cell types separate better (silhouette 0.43 → 0.63)
    plain_latent = plain.get_latent_representation()
    assert batch_readability(latent) < batch_readability(plain_latent) - 0.2
    types = cells.obs["cell_type"]
    assert label_silhouette(latent, types) > label_silhouette(plain_latent, types) + 0.1
    # embedding needs no batch (the encoder reads the features only); the saved model keeps
    # its batches and conditioned decoder
    unlabelled = cells.copy()
    del unlabelled.obs["batch"]
    loaded = VAE.from_checkpoint(conditioned.checkpoint())
    np.testing.assert_array_equal(loaded.get_latent_representation(unlabelled), latent)
    assert loaded.state["batch_categories"] == ["batch_0", "batch_1"] and loaded.modules["decoder"].n_batches == 2
    with pytest.raises(ValueError, match="conditioned on 2 batches"):
        decoder(torch.zeros(3, SMALL["latent_dim"]))


def test_the_pipeline_conditions_on_the_datasets_batch_or_condition_column(cells):
    from omicsgen.pipelines.modelling.vae.nodes import bind_dataset, choose_cells, setup_keys

    params = {"cells": {"input": {"split_key": "split", "batch_key": "auto"}, "model": {}, "plan": {}, "training": {}}}
    batches = bind_dataset(params, {"kind": "scrna_batches", "keys": {"cell_type": "cell_type", "batch": "batch"}})
    perturbation = bind_dataset(params, {"kind": "perturbation", "keys": {"cell_type": "cell_type", "condition": "stim"}})
    table = bind_dataset(params, {"kind": "cell_table", "keys": {"cell_type": "cell_type"}})
    assert setup_keys(batches)["batch_key"] == "batch" and setup_keys(perturbation)["batch_key"] == "stim"
    assert setup_keys(table)["batch_key"] is None
    missing = cells.copy()
    del missing.obs["batch"]
    with pytest.raises(InputValidationError, match=r"simulated\.h5ad: required obs column\(s\) 'batch' missing "
                       r"\(set by vae\.cells\.input\.batch_key \(auto: the dataset's keys\.batch, or keys\.condition\)\)"):
        choose_cells(missing, batches)
