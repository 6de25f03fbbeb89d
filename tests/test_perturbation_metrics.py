"""Pearson Δ, energy distance, the mean-response baseline and the per-type best method
(issue #15, scGen part)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from omicsgen.metrics.perturbation import (
    energy_distance,
    evaluation_space,
    pearson_delta,
    response_scores,
    subsample,
)
from omicsgen.models.baselines import perturbation as baselines
from omicsgen.pipelines.modelling.scgen.nodes import predict_baselines
from omicsgen.pipelines.reporting.scgen.nodes import best_methods
from omicsgen.preprocessing import InputValidationError
from omicsgen.report import render_run_section

KEYS = {"condition_key": "condition", "control": "control", "stimulated": "stimulated", "cell_type_key": "cell_type"}


def _adata(x, cell_types, conditions) -> ad.AnnData:
    obs = pd.DataFrame({"cell_type": cell_types, "condition": conditions}, index=[f"cell{i}" for i in range(len(x))])
    var = pd.DataFrame(index=[f"gene{i}" for i in range(len(x[0]))])
    return ad.AnnData(X=np.asarray(x, dtype=np.float32), obs=obs, var=var)


@pytest.fixture(scope="module")
def held_out() -> tuple[ad.AnnData, ad.AnnData]:
    """Control and stimulated cells of one type: the stimulus raises genes 0-4 by 2."""
    rng = np.random.default_rng(0)
    control = rng.normal(1.0, 0.3, size=(60, 20))
    stimulated = rng.normal(1.0, 0.3, size=(60, 20))
    stimulated[:, :5] += 2.0
    return _adata(control, ["t"] * 60, ["control"] * 60), _adata(stimulated, ["t"] * 60, ["stimulated"] * 60)


def test_pearson_delta_perfect_anti_and_undefined():
    control = np.array([1.0, 2.0, 3.0, 4.0])
    real = control + np.array([1.0, 0.0, -1.0, 2.0])
    assert pearson_delta(real, control, real) == pytest.approx(1.0)
    assert pearson_delta(control + 3 * (real - control), control, real) == pytest.approx(1.0)  # scale-free
    assert pearson_delta(control - (real - control), control, real) == pytest.approx(-1.0)
    # the null prediction (the control cells) has no response: undefined, not 0 or 1
    assert pearson_delta(control, control, real) is None
    assert pearson_delta(control + 5.0, control, real) is None  # a constant shift says nothing either
    assert pearson_delta(real, control, control) is None


def test_energy_distance_is_zero_for_identical_samples_and_grows_with_a_shift():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 5))
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    # one point each, 1 apart: 2·1 − 0 − 0
    assert energy_distance(np.zeros((1, 3)), np.eye(3)[:1]) == pytest.approx(2.0)
    shifted = [energy_distance(x, x + [s, 0, 0, 0, 0]) for s in (0.25, 0.5, 1.0, 2.0)]
    assert 0 < shifted[0] < shifted[1] < shifted[2] < shifted[3]
    assert energy_distance(x, x + 2.0) == pytest.approx(energy_distance(x + 2.0, x))


def test_subsample_caps_and_is_seeded():
    x = np.arange(100).reshape(50, 2)
    assert subsample(x, 60) is x
    assert len(subsample(x, 10, seed=3)) == 10
    np.testing.assert_array_equal(subsample(x, 10, seed=3), subsample(x, 10, seed=3))


def test_response_scores_of_perfect_null_and_partial_predictions(held_out):
    control, real = held_out
    degs = [f"gene{i}" for i in range(5)]
    space = evaluation_space(control, real, n_components=5)
    perfect = response_scores(real, control, real, degs, space)
    assert perfect["pearson_delta_all"] == pytest.approx(1.0)
    assert perfect["pearson_delta_top5"] == pytest.approx(1.0)
    assert perfect["energy_distance"] == pytest.approx(0.0, abs=1e-9)
    null = response_scores(control, control, real, degs, space)
    assert null["pearson_delta_all"] is None and null["pearson_delta_top5"] is None
    half = control.copy()
    half.X[:, :5] += 1.0  # the right genes, half the effect
    partial = response_scores(half, control, real, degs, space)
    assert partial["pearson_delta_all"] > 0.95
    assert 0 < partial["energy_distance"] < null["energy_distance"]
    # the cap: at most max_cells per side, and the same seed gives the same number
    assert response_scores(half, control, real, degs, max_cells=20) == response_scores(half, control, real, degs, max_cells=20)


def test_mean_response_is_the_equally_weighted_mean_of_the_other_types_shifts():
    # type a: 1 control (0,0), 3 stimulated (2,0) → shift (2, 0); type b: 2 control (1,1),
    # 1 stimulated (1,5) → shift (0, 4); held-out c's control (10, 10) + mean (1, 2)
    x = [[0, 0], [2, 0], [2, 0], [2, 0], [1, 1], [1, 1], [1, 5], [10, 10], [10, 10]]
    types = ["a"] * 4 + ["b"] * 3 + ["c"] * 2
    conditions = ["control"] + ["stimulated"] * 3 + ["control"] * 2 + ["stimulated", "control", "control"]
    train = _adata(x, types, conditions)
    control = train[train.obs["cell_type"] == "c"]
    predicted = baselines.mean_response(train, control, **KEYS)
    np.testing.assert_allclose(predicted.X, [[11, 12], [11, 12]])
    assert set(predicted.obs["method"]) == {"mean_response"}
    # the gene-space arithmetic differs: its balanced control pool also holds c's controls
    # (a, b, c twice each: mean 11/3) against a, b stimulated (3 each: mean (1.5, 2.5))
    control_pool, stimulated_pool = baselines.balanced_condition_pools(train, **KEYS)
    gene = baselines.gene_space_arithmetic(control_pool, stimulated_pool, control)
    np.testing.assert_allclose(gene.X, [[10 + 1.5 - 11 / 3, 10 + 2.5 - 11 / 3]] * 2, rtol=1e-6)
    with pytest.raises(InputValidationError, match="no cell type other than"):
        baselines.mean_response(train[train.obs["cell_type"] == "c"], control, **KEYS)


def test_predict_baselines_includes_the_mean_response(held_out):
    rng = np.random.default_rng(2)
    parts = []
    for t in ("t0", "t1", "t2"):
        for condition in ("control", "stimulated"):
            x = rng.normal(1.0, 0.2, size=(20, 8)) + (1.0 if condition == "stimulated" else 0.0)
            parts.append(_adata(x, [t] * 20, [condition] * 20))
    adata = ad.concat(parts, index_unique="-")
    adata.obs["split"] = "train"
    params = {"keys": KEYS, "evaluation": {"pca_components": 4}, "training": {"seed": 0}}
    out = predict_baselines(adata, ["t0"], params)
    assert list(dict.fromkeys(out.obs["method"])) == ["gene_arithmetic", "pca_arithmetic", "mean_response", "null"]
    mean = out[(out.obs["method"] == "mean_response").to_numpy()]
    assert (mean.obs["held_out"] == "t0").all() and mean.n_obs == 20
    assert mean.X.mean() == pytest.approx(adata[:20].X.mean() + 1.0, abs=0.1)


def test_best_method_per_metric_and_the_report_line():
    methods = {
        "scgen": {"r2_mean_top2": {"mean": 0.9, "sd": 0.0}, "pearson_delta_all": 0.5, "energy_distance": 1.0},
        "mean_response": {"r2_mean_top2": {"mean": 0.8, "sd": 0.0}, "pearson_delta_all": 0.7, "energy_distance": 0.5},
        "null": {"r2_mean_top2": {"mean": 0.9, "sd": 0.0}, "pearson_delta_all": None, "energy_distance": 2.0},
    }
    best = best_methods(methods)
    assert best == {"r2_mean_top2": ["scgen", "null"], "pearson_delta_all": ["mean_response"], "energy_distance": ["mean_response"]}
    summary = {m: {k: (v["mean"] if isinstance(v, dict) else v) for k, v in s.items()} for m, s in methods.items()}
    for scores in summary.values():
        scores["r2_mean_all"] = 0.5
    metrics = {
        "held_out": {"T": {"methods": methods, "best_method": best, "top_degs": ["g1", "g2"]}},
        "mean_over_held_out_types": summary,
    }
    html, targets = render_run_section({"method": "scgen", "dataset": "toy", "metrics": metrics}, {"title": "scGen"})
    assert 'data-column="pearson_delta_all"' in html and 'data-column="energy_distance"' in html
    line = targets[-1]
    assert line.met is False and "<b>T</b>" in line.text
    assert "Pearson Δ, all genes: mean response of the other types" in line.text
    assert "R² of means, top-2 DEGs: scGen = null (control cells)" in line.text
    assert "energy distance (PCA): mean response of the other types" in line.text
