"""scGAN / cscGAN: networks, training, generation, metrics, bad input and the Kedro pipeline."""

from __future__ import annotations

import json
import warnings

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from omicsgen.metrics.augmentation import (
    augmentation_experiment,
    downsample_label,
    stratified_test_split,
)
from omicsgen.metrics.generation import (
    classifier_auc,
    density_coverage,
    evaluate_generation,
    gene_statistic_correlations,
    mmd_rbf,
)
from omicsgen.models.cscgan import (
    Critic,
    CscganConfig,
    CscganModel,
    Generator,
    assign_cell_types,
    generate_cells,
    preprocess_counts,
    train_cscgan,
)
from omicsgen.pipelines.modelling.cscgan import nodes as modelling_nodes
from omicsgen.preprocessing.validate import SOURCE_FILE_KEY, InputValidationError

from .conftest import run_kedro


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks run fastest on one thread (and the test machine is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = {"latent_dim": 8, "generator_layers": (16, 32), "critic_layers": (32, 16)}


@pytest.fixture(scope="module")
def cells():
    from omicsgen.preprocessing import simulate_scrna_counts

    counts = simulate_scrna_counts(n_cells=240, n_genes=120, n_cell_types=3, n_batches=1, n_markers=10, n_response_genes=10, seed=3)
    counts.layers["counts"] = counts.X.copy()
    return preprocess_counts(counts, library_size=20000)


def test_generator_output_has_library_size_and_is_non_negative():
    config = CscganConfig(n_genes=50, cell_types=["a", "b"], library_size=1000, **TINY)
    generator = Generator(config).eval()
    cells = generator(torch.randn(20, 8), torch.tensor([0, 1] * 10))
    assert cells.shape == (20, 50)
    assert torch.all(cells >= 0)
    np.testing.assert_allclose(cells.sum(1).detach().numpy(), 1000, rtol=1e-4)


def test_conditional_batch_norm_and_projection_use_the_label():
    torch.manual_seed(0)
    config = CscganConfig(n_genes=30, cell_types=["a", "b"], **TINY)
    generator, critic = Generator(config).eval(), Critic(config)
    for norm in generator.norms:  # per-class scale/shift, made different from their init
        torch.nn.init.normal_(norm.scale.weight)
        torch.nn.init.normal_(norm.shift.weight)
    z = torch.randn(6, 8)
    as_a, as_b = generator(z, torch.zeros(6, dtype=torch.long)), generator(z, torch.ones(6, dtype=torch.long))
    assert not torch.allclose(as_a, as_b)
    x = torch.rand(6, 30)
    assert not torch.allclose(critic(x, torch.zeros(6, dtype=torch.long)), critic(x, torch.ones(6, dtype=torch.long)))
    unconditional = Critic(CscganConfig(n_genes=30, **TINY))
    assert unconditional.projection is None
    assert torch.allclose(unconditional(x, torch.zeros(6, dtype=torch.long)), unconditional(x))


def test_preprocessing_filters_scales_and_warns_about_small_types():
    counts = np.zeros((60, 8), dtype=np.float32)
    rng = np.random.default_rng(0)
    counts[:, :6] = rng.poisson(3, size=(60, 6)) + 1  # 6 genes in every cell
    counts[:5, 6] = 1  # gene 6 expressed in 5 cells (kept), gene 7 in none (dropped)
    counts[59, 1:] = 0  # a cell with too few genes for min_genes_per_cell=3
    adata = ad.AnnData(X=counts.copy(), layers={"counts": sp.csr_matrix(counts)})
    adata.obs["cell_type"] = ["big"] * 50 + ["tiny"] * 10
    adata.uns[SOURCE_FILE_KEY] = "cells.h5ad"
    with pytest.warns(UserWarning, match="cell type 'tiny' has 9 cells"):
        out = preprocess_counts(adata, min_cells_per_gene=3, min_genes_per_cell=3, library_size=100, min_cells_per_type=10)
    assert out.n_vars == 7 and out.n_obs == 50
    np.testing.assert_allclose(np.asarray(out.X.sum(1)).ravel(), 100, rtol=1e-5)
    assert out.uns["cscgan_preprocessing"]["excluded_cell_types"] == ["tiny"]


@pytest.mark.parametrize(
    ("value", "message"), [(-1.0, "negative values"), (0.5, "non-integer values")]
)
def test_non_counts_are_rejected_naming_file_and_layer(value, message):
    counts = np.ones((20, 5), dtype=np.float32)
    counts[3, 2] = value
    adata = ad.AnnData(X=counts.copy(), layers={"counts": counts})
    adata.obs["cell_type"] = "T"
    adata.uns[SOURCE_FILE_KEY] = "data/kang.h5ad"
    with pytest.raises(InputValidationError, match=rf"data/kang.h5ad: layers\['counts'\].*{message}"):
        preprocess_counts(adata)


def test_training_is_deterministic_and_generates_named_types(cells):
    runs = [train_cscgan(cells, generator_steps=2, batch_size=16, seed=5, device="cpu", **TINY) for _ in range(2)]
    (model, result), (again, _) = runs
    # 240 cells / (16 × 5 critic batches) = 3 generator steps per pass; 2 steps round up to one pass
    assert result.config["generator_steps"] == 3 == result.epochs_run * result.config["generator_steps_per_epoch"]
    history = result.history[-1]
    assert np.isfinite([history["train_critic_loss"], history["train_generator_loss"], history["train_wasserstein"]]).all()
    wanted = {"type_A": 4, "type_C": 3}
    first, labels = generate_cells(model, wanted, seed=1, device="cpu")
    second, _ = generate_cells(again, wanted, seed=1, device="cpu")
    np.testing.assert_array_equal(first, second)
    assert list(labels) == ["type_A"] * 4 + ["type_C"] * 3
    restored = CscganModel.from_checkpoint(model.checkpoint())
    np.testing.assert_array_equal(generate_cells(restored, wanted, seed=1, device="cpu")[0], first)
    with pytest.raises(ValueError, match="type_9"):
        generate_cells(model, {"type_9": 2}, device="cpu")


def test_unconditional_scgan_generates_cells_labelled_by_nearest_real_cells(cells):
    model, _ = train_cscgan(cells, cell_type_key=None, generator_steps=2, batch_size=16, device="cpu", **TINY)
    assert not model.config.conditional and model.critic.projection is None
    generated, labels = generate_cells(model, 12, device="cpu")
    assert generated.shape == (12, cells.n_vars) and labels is None
    assigned = assign_cell_types(cells.X.toarray(), cells.obs["cell_type"].astype(str), generated)
    assert set(assigned) <= set(cells.obs["cell_type"])
    restored = CscganModel.from_checkpoint(model.checkpoint())
    np.testing.assert_array_equal(generate_cells(restored, 12, device="cpu")[0], generated)


def test_learning_rate_decays_exponentially_to_the_final_rate(cells):
    # 240 cells / (8 × 5) = 6 generator steps per pass; 18 steps = 3 passes
    _, result = train_cscgan(
        cells, generator_steps=18, batch_size=8, device="cpu", learning_rate=1e-3, final_learning_rate=1e-4, **TINY
    )
    rates = [row["train_learning_rate"] for row in result.history]
    expected = [np.mean([1e-3 * 0.1 ** (step / 18) for step in range(6 * e, 6 * e + 6)]) for e in range(3)]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)


def test_training_moves_generated_cells_towards_the_real_ones(cells):
    """Per-gene mean expression of generated cells: unrelated after 2 steps, related after 60."""
    real = cells.X.toarray()
    sizes = {str(t): int(n) for t, n in cells.obs["cell_type"].value_counts().items()}
    correlation = {}
    for steps in (2, 60):
        model, _ = train_cscgan(cells, generator_steps=steps, batch_size=32, device="cpu", learning_rate=1e-3,
                                final_learning_rate=1e-4, critic_input="log1p", **TINY)
        generated, _ = generate_cells(model, sizes, device="cpu")
        correlation[steps] = gene_statistic_correlations(real, generated)["mean_correlation"]
    assert correlation[60] > correlation[2] + 0.2


def test_metrics_separate_matching_from_different_sets():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 10)), rng.normal(size=(200, 10))
    shifted = rng.normal(size=(200, 10)) + 1.5
    assert classifier_auc(a, b) < 0.65
    assert classifier_auc(a, shifted) > 0.95
    assert abs(mmd_rbf(a, b)) < 0.02 < mmd_rbf(a, shifted)
    same, far = density_coverage(a, b), density_coverage(a, shifted)
    assert same["coverage"] > 0.8 > 0.3 > far["coverage"]
    assert 0.7 < same["density"] < 1.3
    counts = rng.poisson(rng.gamma(1.0, 2.0, size=50), size=(1200, 50)).astype(float)
    stats = gene_statistic_correlations(counts[:600], counts[600:])
    assert min(stats.values()) > 0.9


def test_evaluation_has_control_and_per_type_rows():
    rng = np.random.default_rng(1)
    centres = rng.gamma(2.0, 2.0, size=(2, 40))
    labels = np.repeat(["x", "y"], 100)
    real = rng.poisson(centres[(labels == "y").astype(int)]).astype(float)
    fake = rng.poisson(centres[(labels == "y").astype(int)] * 3).astype(float)  # clearly wrong
    result = evaluate_generation(real, labels, fake, labels, n_components=5, min_cells=60)
    control, generated = result["overall"]["real_vs_real"], result["overall"]["real_vs_generated"]
    assert control["classifier_auc"] < 0.7 < 0.9 < generated["classifier_auc"]
    assert result["per_cell_type"] == {} and result["skipped_cell_types"] == ["x", "y"]
    result = evaluate_generation(real, labels, real, labels, n_components=5, min_cells=10)
    assert set(result["per_cell_type"]) == {"x", "y"}


def test_augmentation_helpers():
    labels = np.repeat(["a", "b"], [100, 40])
    test = stratified_test_split(labels, 0.25, seed=0)
    assert test[:100].sum() == 25 and test[100:].sum() == 10
    kept = downsample_label(labels, "b", 0.05, minimum=3, seed=0)
    assert (labels[kept] == "b").sum() == 3 and (labels[kept] == "a").sum() == 100
    rng = np.random.default_rng(2)
    centre = {"a": np.zeros(20), "b": np.r_[np.full(10, 2.0), np.zeros(10)]}
    make = lambda t, n: rng.poisson(np.exp(centre[t]) * 3, size=(n, 20)).astype(float)  # noqa: E731
    train_x, train_y = np.vstack([make("a", 200), make("b", 2)]), np.repeat(["a", "b"], [200, 2])
    test_x, test_y = np.vstack([make("a", 50), make("b", 50)]), np.repeat(["a", "b"], [50, 50])
    result = augmentation_experiment(train_x, train_y, test_x, test_y, "b", make("b", 100), n_components=5)
    assert result["c_generated"]["f1"] > result["a_downsampled"]["f1"]
    assert result["c_generated"]["n_training_cells_of_type"] == 102


def _params(**overrides):
    params = {
        "seed": 0,
        "device": "cpu",
        "input": {"cell_type_key": "cell_type", "counts_layer": "counts"},
        "preprocessing": {"min_cells_per_type": 0},
        "generation": {"cell_types": None, "cells_per_type": 5},
        "augmentation": {"rare_cell_type": "type_B"},
        "dataset": {"name": "sim", "kind": "cell_table", "keys": {"cell_type": "cell_type", "counts": "auto"}},
    }
    for key, value in overrides.items():
        params[key].update(value)
    return params


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"generation": {"cell_types": ["Megakaryocyte"]}}, "generation.cell_types.*'Megakaryocyte' not found"),
        ({"augmentation": {"rare_cell_type": "Plasma"}}, "augmentation.rare_cell_type.*'Plasma' not found"),
        ({"preprocessing": {"min_cells_per_type": 1000}}, "every cell type has fewer than 1000"),
    ],
)
def test_bad_requests_stop_before_training(simulated_counts, overrides, message):
    adata = simulated_counts.copy()
    adata.layers["counts"] = adata.X.copy()
    adata.uns[SOURCE_FILE_KEY] = "sim.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputValidationError, match=message):
            modelling_nodes.prepare_cells(adata, _params(**overrides))


def test_excluded_type_cannot_be_requested(simulated_counts):
    adata = simulated_counts.copy()
    adata.layers["counts"] = adata.X.copy()
    smallest = adata.obs["cell_type"].value_counts().idxmin()
    size = int(adata.obs["cell_type"].value_counts().min())
    params = _params(preprocessing={"min_cells_per_type": size + 1}, augmentation={"rare_cell_type": smallest})
    with pytest.warns(UserWarning, match=f"cell type '{smallest}'"):
        with pytest.raises(InputValidationError, match="min_cells_per_type"):
            modelling_nodes.prepare_cells(adata, params)


def test_rare_cell_type_auto_is_the_largest_type(simulated_counts):
    adata = simulated_counts.copy()
    largest = adata.obs["cell_type"].astype(str).value_counts().idxmax()
    assert modelling_nodes.rare_cell_type(adata, _params(augmentation={"rare_cell_type": "auto"})) == largest
    assert modelling_nodes.rare_cell_type(adata, _params()) == "type_B"


def test_missing_counts_stop_before_training(simulated_counts):
    adata = simulated_counts.copy()
    del adata.layers["counts"]
    adata.uns[SOURCE_FILE_KEY] = "sim.h5ad"
    with pytest.raises(InputValidationError, match=r"cscGAN needs raw counts.*datasets\.sim\.keys\.counts"):
        modelling_nodes.prepare_cells(adata, _params())


def test_pipeline_end_to_end_in_test_env(kedro_project_copy):
    run_kedro(kedro_project_copy, env="test", pipeline_names=["cscgan"])
    out = kedro_project_copy / "data"
    generated = ad.read_h5ad(out / "07_model_output/kang/cscgan/generated.h5ad")
    assert generated.obs["generated"].all()
    types = set(generated.obs["cell_type"])
    # the 400-cell subsample leaves Dendritic, CD8T and NK below min_cells_per_type = 30
    assert {"Dendritic"}.isdisjoint(types) and "CD14+Mono" in types
    assert (generated.obs["cell_type"].value_counts() == 30).all()
    metrics = json.loads((out / "08_reporting/kang/cscgan/metrics.json").read_text())
    assert {"Dendritic", "CD8T", "NK"} <= set(metrics["generation"]["excluded_cell_types"])
    overall = metrics["generation"]["overall"]
    for comparison in ("real_vs_real", "real_vs_generated"):
        assert 0.0 <= overall[comparison]["classifier_auc"] <= 1.0
    assert {"a_downsampled", "b_resampled_real", "c_generated"} <= set(metrics["augmentation"])
    assert metrics["augmentation"]["rare_cell_type"] == "CD14+Mono"  # cscgan.overrides.kang
    for figure in ("umap_real_vs_generated", "marker_violins", "training_curves"):
        assert (out / f"08_reporting/kang/cscgan/{figure}.png").stat().st_size > 10_000
    assert (out / "06_models/kang/cscgan/model.pt").exists()
    training = json.loads((out / "06_models/kang/cscgan/training.json").read_text())
    assert training["config"]["generator_steps"] >= 4


def test_pipeline_rejects_unknown_cell_type_and_writes_nothing(kedro_project_copy):
    params = kedro_project_copy / "conf/test/parameters/cscgan.yml"
    params.write_text(params.read_text().replace("generation: {cells_per_type: 30}", "generation: {cells_per_type: 30, cell_types: [Megakaryocyte]}"))
    with pytest.raises(InputValidationError, match="Megakaryocyte"):
        run_kedro(kedro_project_copy, env="test", pipeline_names=["cscgan"])
    assert not (kedro_project_copy / "data/06_models/kang/cscgan").exists()
    # only the data description (written before the cells are prepared) may be there: no results
    reporting = kedro_project_copy / "data/08_reporting/kang/cscgan"
    assert not reporting.exists() or {p.name for p in reporting.iterdir()} <= {"data.json"}
    assert not (kedro_project_copy / "data/07_model_output/kang/cscgan").exists()
