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
from omicsgen.models.cscgan import Critic, CscGAN, Generator, assign_cell_types
from omicsgen.pipelines.modelling.cscgan import nodes as modelling_nodes
from omicsgen.preprocessing.cscgan import preprocess_counts
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
def raw():
    from omicsgen.preprocessing import simulate_scrna_counts

    counts = simulate_scrna_counts(n_cells=240, n_genes=120, n_cell_types=3, n_batches=1, n_markers=10, n_response_genes=10, seed=3)
    counts.layers["counts"] = counts.X.copy()
    return counts


@pytest.fixture(scope="module")
def cells(raw):
    return preprocess_counts(raw, library_size=20000)


def _model(cells, cell_type_key="cell_type", model=None, plan=None, **training) -> CscGAN:
    """A tiny (cs)cGAN on a copy of ``cells`` (setup_anndata registers keys in the AnnData)."""
    cells = cells.copy()
    CscGAN.setup_anndata(cells, cell_type_key=cell_type_key)
    training = {"generator_steps": 2, "batch_size": 16, "device": "cpu", **training}
    return CscGAN(cells, model={**TINY, **(model or {})}, plan=plan, training=training)


def _trained(cells, **kwargs) -> CscGAN:
    model = _model(cells, **kwargs)
    model.train()
    return model


def test_generator_output_has_library_size_and_is_non_negative():
    generator = Generator(50, latent_dim=8, layers=(16, 32), library_size=1000, n_classes=2).eval()
    cells = generator(torch.randn(20, 8), torch.tensor([0, 1] * 10))
    assert cells.shape == (20, 50)
    assert torch.all(cells >= 0)
    np.testing.assert_allclose(cells.sum(1).detach().numpy(), 1000, rtol=1e-4)


def test_conditional_batch_norm_and_projection_use_the_label():
    torch.manual_seed(0)
    generator, critic = Generator(30, 8, (16, 32), n_classes=2).eval(), Critic(30, (32, 16), n_classes=2)
    for norm in generator.norms:  # per-class scale/shift, made different from their init
        torch.nn.init.normal_(norm.scale.weight)
        torch.nn.init.normal_(norm.shift.weight)
    z = torch.randn(6, 8)
    as_a, as_b = generator(z, torch.zeros(6, dtype=torch.long)), generator(z, torch.ones(6, dtype=torch.long))
    assert not torch.allclose(as_a, as_b)
    x = torch.rand(6, 30)
    assert not torch.allclose(critic(x, torch.zeros(6, dtype=torch.long)), critic(x, torch.ones(6, dtype=torch.long)))
    unconditional = Critic(30, (32, 16))
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
    (model, again) = (_trained(cells, seed=5) for _ in range(2))
    result = model.training_result
    # 240 cells / (16 × 5 critic batches) = 3 generator steps per pass; 2 steps round up to one pass
    assert result.config["generator_steps"] == 3 == result.epochs_run * result.config["generator_steps_per_epoch"]
    history = result.history[-1]
    assert np.isfinite([history["train_critic_loss"], history["train_generator_loss"], history["train_wasserstein"]]).all()
    wanted = {"type_A": 4, "type_C": 3}
    first, second = model.generate(wanted, seed=1), again.generate(wanted, seed=1)
    np.testing.assert_array_equal(first.X.toarray(), second.X.toarray())
    assert list(first.obs["cell_type"]) == ["type_A"] * 4 + ["type_C"] * 3 and first.obs["generated"].all()
    assert list(first.var_names) == list(cells.var_names)
    np.testing.assert_allclose(first.X.sum(1), 20000, rtol=1e-4)  # the library size, from preprocessing
    every = model.generate(2)  # 2 of each type the model knows, with the training seed
    assert list(every.obs["cell_type"]) == ["type_A", "type_A", "type_B", "type_B", "type_C", "type_C"]
    np.testing.assert_array_equal(model.generate(2, cell_types=["type_C"]).X.toarray(), model.generate({"type_C": 2}).X.toarray())
    with pytest.raises(ValueError, match="type_9"):
        model.generate({"type_9": 2})


def test_unconditional_scgan_generates_cells_labelled_by_nearest_real_cells(cells):
    model = _trained(cells, model={"conditional": False})
    assert not model.conditional and model.modules["critic"].projection is None and model.cell_types == []
    generated = model.generate({"type_A": 12})
    assert generated.shape == (12, cells.n_vars)
    expected = assign_cell_types(cells.X.toarray(), cells.obs["cell_type"].astype(str), generated.X.toarray())
    assert list(generated.obs["cell_type"]) == list(expected) and set(expected) <= set(cells.obs["cell_type"])
    assert model.generate(4).n_obs == 4 * cells.obs["cell_type"].nunique()  # 4 × every real type, in all
    restored = CscGAN.from_checkpoint(model.checkpoint(), cells)
    np.testing.assert_array_equal(restored.generate({"type_A": 12}).X.toarray(), generated.X.toarray())
    with pytest.raises(ValueError, match="nearest real cells"):  # no reference cells to label by
        CscGAN.from_checkpoint(model.checkpoint()).generate(3)
    unlabelled = _trained(cells, cell_type_key=None).generate(5)  # registered without cell types
    assert list(unlabelled.obs["cell_type"]) == ["unlabelled"] * 5


def test_learning_rate_decays_exponentially_to_the_final_rate(cells):
    # 240 cells / (8 × 5) = 6 generator steps per pass; 18 steps = 3 passes
    model = _trained(cells, plan={"learning_rate": 1e-3, "final_learning_rate": 1e-4}, generator_steps=18, batch_size=8)
    rates = [row["train_learning_rate"] for row in model.training_result.history]
    expected = [np.mean([1e-3 * 0.1 ** (step / 18) for step in range(6 * e, 6 * e + 6)]) for e in range(3)]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)


def test_training_moves_generated_cells_towards_the_real_ones(cells):
    """Per-gene mean expression of generated cells: unrelated after 2 steps, related after 60."""
    real = cells.X.toarray()
    sizes = {str(t): int(n) for t, n in cells.obs["cell_type"].value_counts().items()}
    correlation = {}
    for steps in (2, 60):
        model = _trained(cells, model={"critic_input": "log1p"}, plan={"learning_rate": 1e-3, "final_learning_rate": 1e-4},
                         generator_steps=steps, batch_size=32)
        generated = model.generate(sizes).X.toarray()
        correlation[steps] = gene_statistic_correlations(real, generated)["mean_correlation"]
    assert correlation[60] > correlation[2] + 0.2


def test_saved_model_loads_and_generates_identically(cells, tmp_path):
    model = _trained(cells, seed=2)
    before = model.generate(3, seed=4)
    model.save(tmp_path / "cscgan")
    loaded = CscGAN.load(tmp_path / "cscgan", adata=cells)
    assert loaded.cell_types == model.cell_types == ["type_A", "type_B", "type_C"]
    assert loaded.library_size == 20000.0 and loaded.var_names == list(cells.var_names)
    after = loaded.generate(3, seed=4)
    np.testing.assert_array_equal(after.X.toarray(), before.X.toarray())
    assert list(after.obs["cell_type"]) == list(before.obs["cell_type"])
    for name, module in model.modules.items():
        for key, value in module.state_dict().items():
            assert torch.equal(value, loaded.modules[name].state_dict()[key])
    # without data: the conditional model needs none to generate
    np.testing.assert_array_equal(CscGAN.load(tmp_path / "cscgan").generate(3, seed=4).X.toarray(), before.X.toarray())


def test_load_with_missing_genes_lists_them_and_fill_missing_fills_zeros(cells, raw, tmp_path, caplog):
    model = _trained(cells, model={"conditional": False})
    model.save(tmp_path / "scgan")
    dropped = list(cells.var_names[:3])
    with pytest.raises(InputValidationError, match=rf"3 of the model's {cells.n_vars} genes are missing: '{dropped[0]}'"):
        CscGAN.load(tmp_path / "scgan", adata=cells[:, 3:].copy())
    # reference cells normalised on the genes they have: the missing ones are zeros
    partial = preprocess_counts(raw[:, [g for g in raw.var_names if g not in dropped]].copy(), min_cells_per_gene=0,
                                genes=[g for g in cells.var_names if g not in dropped])
    with pytest.raises(InputValidationError, match=f"'{dropped[0]}'"):
        model.generate(4, reference=partial)
    with caplog.at_level("WARNING"):
        filled = model.generate(4, reference=partial, fill_missing=True)
    assert "3 genes missing, filled with zeros" in caplog.text
    assert filled.n_obs == 4 * partial.obs["cell_type"].nunique() and set(filled.obs["cell_type"]) <= set(cells.obs["cell_type"])


def test_checkpoint_copies_weights_and_leaves_the_networks_on_their_device(cells):
    model = _trained(cells)
    checkpoint = model.checkpoint()
    for name, module in model.modules.items():
        live = module.state_dict()
        assert all(p.device == model.device for p in module.parameters())
        for key, saved in checkpoint["state_dict"][name].items():
            assert saved.device.type == "cpu" and torch.equal(saved, live[key].cpu())
            assert saved.untyped_storage().data_ptr() != live[key].untyped_storage().data_ptr()
    assert checkpoint["state"]["library_size"] == 20000.0 and checkpoint["state"]["cell_types"] == model.cell_types


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_trains_and_generates_on_the_gpu(cells, tmp_path):
    model = _trained(cells, device="cuda")
    assert all(p.is_cuda for module in model.modules.values() for p in module.parameters())
    checkpoint = model.checkpoint()
    assert all(t.device.type == "cpu" for state in checkpoint["state_dict"].values() for t in state.values())
    assert all(p.is_cuda for module in model.modules.values() for p in module.parameters())
    model.save(tmp_path / "gpu")
    on_gpu = model.generate(3, seed=1).X.toarray()
    np.testing.assert_array_equal(CscGAN.load(tmp_path / "gpu", device="cuda").generate(3, seed=1).X.toarray(), on_gpu)
    np.testing.assert_allclose(CscGAN.load(tmp_path / "gpu", device="cpu").generate(3, seed=1).X.toarray(), on_gpu,
                               rtol=1e-3, atol=1e-2)


def test_resumed_training_ends_as_an_uninterrupted_run(cells, tmp_path):
    """A run killed after 2 of 3 passes resumes to the same weights (optimisers and the
    learning rate's step count are restored with the networks)."""
    steps = {"generator_steps": 9, "checkpoint_every": 2}  # 3 passes of 3 steps; checkpoint after pass 2
    first = _model(cells, **steps)
    first.checkpoint_dir = tmp_path
    first.train()
    resumed = _model(cells, **steps, resume=True)
    resumed.checkpoint_dir = tmp_path
    resumed.train()
    history = resumed.training_result.history
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[:2] == first.training_result.history[:2]  # read back (wall times included), not retrained
    assert resumed.training_result.config["generator_steps"] == 9
    for name, module in first.modules.items():
        for key, value in module.state_dict().items():
            assert torch.equal(value, resumed.modules[name].state_dict()[key]), (name, key)


def test_reference_cells_of_the_training_data_are_the_training_cells(raw):
    cells = preprocess_counts(raw, n_top_genes=60, min_cells_per_type=10)
    model = _trained(cells, model={"conditional": False})
    reference = model.reference_cells(raw, min_cells_per_type=10)
    assert list(reference.obs_names) == list(cells.obs_names) and list(reference.var_names) == list(cells.var_names)
    np.testing.assert_array_equal(reference.X.toarray(), cells.X.toarray())
    np.testing.assert_array_equal(model.generate(3, reference=reference).X.toarray(), model.generate(3).X.toarray())
    with pytest.raises(InputValidationError, match=f"genes are missing: '{cells.var_names[0]}'"):
        model.reference_cells(raw[:, [g for g in raw.var_names if g != cells.var_names[0]]].copy())


def test_sections_reject_unknown_keys_and_unscaled_cells(cells, raw):
    with pytest.raises(ValueError, match="cscgan.model: unknown parameter.*'n_critic'"):
        _model(cells, model={"n_critic": 3})
    with pytest.raises(ValueError, match="generator_steps, not max_epochs"):
        _model(cells, max_epochs=3)
    with pytest.raises(ValueError, match="critic_input"):
        _model(cells, model={"critic_input": "log2"})
    counts = raw.copy()
    counts.uns[SOURCE_FILE_KEY] = "raw.h5ad"
    CscGAN.setup_anndata(counts, cell_type_key="cell_type", layer="counts")
    with pytest.raises(InputValidationError, match="raw.h5ad: training cells must each total the library size"):
        CscGAN(counts, model=TINY, training={"generator_steps": 1, "device": "cpu"}).train()


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
        "training": {"device": "cpu"},
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
    out = kedro_project_copy / "data" / "test"
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
    # cscgan_apply: the saved model generates cells_per_type of every type again, identically
    run_kedro(kedro_project_copy, env="test", pipeline_names=["cscgan_apply"])
    applied = ad.read_h5ad(out / "07_model_output/kang/cscgan_apply/applied.h5ad")
    assert applied.obs["generated"].all() and list(applied.obs["cell_type"]) == list(generated.obs["cell_type"])
    np.testing.assert_array_equal(applied.X.toarray(), generated.X.toarray())


def test_pipeline_rejects_unknown_cell_type_and_writes_nothing(kedro_project_copy):
    params = kedro_project_copy / "conf/test/parameters/cscgan.yml"
    params.write_text(params.read_text().replace("generation: {cells_per_type: 30}", "generation: {cells_per_type: 30, cell_types: [Megakaryocyte]}"))
    with pytest.raises(InputValidationError, match="Megakaryocyte"):
        run_kedro(kedro_project_copy, env="test", pipeline_names=["cscgan"])
    assert not (kedro_project_copy / "data/test/06_models/kang/cscgan").exists()
    # only the data description (written before the cells are prepared) may be there: no results
    reporting = kedro_project_copy / "data/test/08_reporting/kang/cscgan"
    assert not reporting.exists() or {p.name for p in reporting.iterdir()} <= {"data.json"}
    assert not (kedro_project_copy / "data/test/07_model_output/kang/cscgan").exists()


def test_main_and_augmentation_gans_are_separate_trainings_the_runner_can_overlap():
    from omicsgen.pipelines.modelling.cscgan.pipeline import create_pipeline
    from omicsgen.runner import TRAINING_TAG

    trainings = [n for n in create_pipeline().nodes if TRAINING_TAG in n.tags]
    assert sorted(n.name for n in trainings) == ["train_augmentation_model", "train_main_model"]
    main, augmentation = sorted(trainings, key=lambda n: n.name != "train_main_model")
    # neither needs what the other makes: both can run at once
    assert not set(main.outputs) & set(augmentation.inputs) and not set(augmentation.outputs) & set(main.inputs)
