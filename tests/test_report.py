"""The summary report page: one lead table per (method, dataset) run with the JSON's numbers,
targets marked, references only where they were measured, no table twice, details,
figures, methods not run, never a crash on unexpected content, fits a 1,300 px page."""

from __future__ import annotations

import base64
import copy
import io
import json
import os
import re
from pathlib import Path

import matplotlib
import pytest
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from omicsgen.datasets import FigureDataset, OptionalJSONDataset  # noqa: E402
from omicsgen.report import build_report, format_value, render_generic  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _png(width: float = 4, height: float = 3) -> bytes:
    fig, ax = plt.subplots(figsize=(width, height))
    ax.plot([0, 1], [1, 0])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def _json(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def _descriptions() -> dict:
    return yaml.safe_load((ROOT / "conf" / "base" / "parameters" / "reporting.yml").read_text())["report"]["methods"]


def _vae_metrics() -> dict:
    """As ``pipelines/reporting/vae/nodes.py::clustering_metrics`` writes it (labelled cells)."""
    def clustering(ari: float, nmi: float, n: int, noise: float) -> dict:
        return {"ari": ari, "nmi": nmi, "n_clusters": n, "noise_fraction": noise}

    return {
        "n_samples": 1975, "n_features": 6998, "label_key": "cell_type", "n_labels": 7,
        "vae": {
            "dimensions": 10,
            "leiden": {**clustering(0.61234, 0.70111, 9, 0.0), "resolution": 0.5,
                       "nmi_by_resolution": {"0.25": 0.6811, "0.5": 0.70111, "1.0": 0.6522}},
            "hdbscan": clustering(0.41234, 0.55555, 6, 0.12),
            "silhouette": 0.18765,
        },
        "pca": {
            "dimensions": 50,
            "leiden": {**clustering(0.58888, 0.68888, 10, 0.0), "resolution": 0.5,
                       "nmi_by_resolution": {"0.25": 0.6612, "0.5": 0.68888, "1.0": 0.6401}},
            "hdbscan": clustering(0.45678, 0.56789, 7, 0.2),
            "silhouette": 0.1111,
        },
        "vae_leiden_ari_at_least_pca": True,
        "vae_hdbscan_ari_at_least_pca": False,
    }  # fmt: skip


def _normae_metrics() -> dict:
    """The pipeline's metrics.json, with the numbers of the benchmark run."""
    run = _json("normae.json")
    return {
        "input_file": "/data/mtbls79/data.csv", "info_file": "/data/mtbls79/info.csv",
        "n_samples": 172, "n_features": 1180, "n_qc": 38, "class_labels": ["Cow", "Sheep"],
        "selected_epoch": {"epoch": run["early_stop_info"]["selected_epoch"],
                           "qc_pca_distance": run["early_stop_info"]["qc_pca_distance"]},
        "metrics": run["metrics"],
        "targets_met": run["targets_met"],
    }  # fmt: skip


def _runs() -> list[dict]:
    png = _png()
    scgen = _json("scgen_pipeline_all_default_metrics.json")
    cscgan = _json("cscgan_pipeline_metrics.json")
    aif = {**_json("aif_metrics_seed1.json"), "warnings": ["kBET per label skipped: fewer than 10 cells in a batch"]}
    kang = {
        "dataset": "kang", "kind": "perturbation", "files": ["/abs/path/kang.h5ad"], "n_obs": 1975, "n_vars": 6998,
        "obs_label": "cells", "var_label": "genes",
        "groups": {"condition": {"control": 936, "stimulated": 1039}, "cell_type": {"CD4T": 821, "B": 233}},
        "held_out": list(scgen["held_out"]),
    }  # fmt: skip
    other = copy.deepcopy(scgen)
    return [
        {"method": "scgen", "dataset": "kang", "metrics": scgen, "data": kang,
         "figures": {"mean_expression_scatter": _png(25, 3), "training_curves": png},  # 2,000 px wide
         "extras": {"timings": _json("scgen_pipeline_all_default_timings.json")}},
        {"method": "scgen", "dataset": "other", "metrics": other, "data": {**kang, "dataset": "other"},
         "figures": {}, "extras": {}},
        {"method": "normae", "dataset": "mtbls79", "metrics": _normae_metrics(),
         "data": {"dataset": "mtbls79", "kind": "metabolomics", "files": ["/d/data.csv", "/d/info.csv"],
                  "n_obs": 172, "n_vars": 1180, "obs_label": "samples", "var_label": "features",
                  "groups": {"batch": {str(i): 21 for i in range(1, 9)}}},
         "figures": {"pca_by_batch": png}, "extras": {}},
        {"method": "aif", "dataset": "pbmc_batches", "metrics": aif, "data": {"dataset": "pbmc_batches"},
         "figures": {"umap_figure": png, "metrics_figure": _png(9, 2)}, "extras": {}},
        # the per-type generation metrics are also a dataset of their own: must not show twice
        {"method": "cscgan", "dataset": "kang", "metrics": cscgan, "data": kang, "figures": {"umap_figure": png},
         "extras": {"generation_metrics": copy.deepcopy(cscgan["generation"])}},
        {"method": "vae", "dataset": "kang", "metrics": _vae_metrics(), "data": kang, "figures": {}, "extras": {}},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def page() -> str:
    return build_report(_runs(), _descriptions(), "omicsgen report")


def _sections(page: str) -> dict[str, str]:
    return {m.group(1): m.group(0) for m in re.finditer(r'<section class="method[^"]*" id="([^"]+)".*?</section>', page, re.S)}


def _lead(section: str) -> str:
    tables = re.findall(r'<table class="lead">.*?</table>', section, re.S)
    assert len(tables) == 1, f"{len(tables)} lead tables"
    return tables[0]


def _rows(table: str) -> list[str]:
    return re.findall(r'data-row="([^"]+)"', table)


def _columns(table: str) -> list[str]:
    return re.findall(r'data-column="([^"]+)"', table)


def _row(table: str, key: str) -> str:
    return re.search(rf'<tr[^>]*data-row="{re.escape(key)}".*?</tr>', table, re.S).group(0)


def _targets(section: str) -> list[tuple[str, str]]:
    return re.findall(r'<li data-met="(true|false|none)">(.*?)</li>', section, re.S)


def test_a_section_per_run_with_one_lead_table(page):
    sections = _sections(page)
    assert list(sections) == ["scgen-kang", "scgen-other", "normae-mtbls79", "aif-pbmc_batches", "cscgan-kang", "vae-kang"]
    for anchor, section in sections.items():
        method, dataset = anchor.split("-", 1)
        assert f'data-method="{method}" data-dataset="{dataset}"' in section
        _lead(section)
        assert f'href="#{anchor}"' in page
    assert "6 of 6 runs" in page and "generated 20" in page
    assert "<h2>scGen — perturbation prediction · kang</h2>" in sections["scgen-kang"]


def test_scgen_lead_table_and_targets(page):
    metrics = _json("scgen_pipeline_all_default_metrics.json")["mean_over_held_out_types"]
    section = _sections(page)["scgen-kang"]
    lead = _lead(section)
    assert _rows(lead)[:4] == ["scgen", "gene_arithmetic", "pca_arithmetic", "null"]
    assert _columns(lead) == ["r2_mean_top100", "r2_mean_all"]
    for method, scores in metrics.items():
        row = _row(lead, method)
        assert format_value(scores["r2_mean_top100"]) in row and format_value(scores["r2_mean_all"]) in row
    # the published figure and the reference implementation, each with its source
    published = _row(lead, "reference-0-0")
    assert "0.936" in published and "Lotfollahi" in published
    assert "benchmarks/scgen.md" in _row(lead, "reference-1-0")
    targets = _targets(section)
    assert targets[0][0] == "true" and "✓ met" in targets[0][1] and "top-100" in targets[0][1]
    assert "0.8917" in targets[0][1]
    per_type = targets[2]
    assert per_type[0] == "false" and "✗ not met" in per_type[1] and "6 of 7" in per_type[1] and "not B" in per_type[1]
    # per type and timings in details, below the table
    details = section.split("</table>", 1)[1]
    assert "<details><summary>Per held-out cell type</summary>" in details
    assert format_value(_json("scgen_pipeline_all_default_metrics.json")["held_out"]["B"]["methods"]["scgen"]["r2_mean_top100"]["mean"]) in details
    assert format_value(_json("scgen_pipeline_all_default_timings.json")["NK"]["seconds_per_epoch"]) in details
    assert "1,975 cells × 6,998 genes" in section and "<code title=\"/abs/path/kang.h5ad\">kang.h5ad</code>" in section
    assert "condition: control (936), stimulated (1,039)" in section


def test_normae_lead_table_and_targets(page):
    versions = _json("normae.json")["metrics"]
    section = _sections(page)["normae-mtbls79"]
    lead = _lead(section)
    assert _rows(lead) == ["normae", "uncorrected", "combat"]
    assert _columns(lead) == ["qc_pca_distance", "qc_correlation", "median_qc_rsd", "batch_accuracy", "class_auc"]
    for name, scores in versions.items():
        assert all(format_value(v) in _row(lead, name) for v in scores.values())
    targets = dict((t.split("NormAE below ComBat on ")[1].split(":")[0], met) for met, t in _targets(section))
    # 4.338 < 8.686, 7.962 < 15.58; batch accuracy 0.0521 is above ComBat's 0.01176
    assert targets == {"QC distance in PCA space": "true", "median QC RSD (%)": "true", "batch accuracy": "false"}
    assert 'class="references"' not in section  # no published figures for MTBLS79
    assert "On the authors&#x27; data (not MTBLS79)" in section  # paper numbers only as labelled context


@pytest.mark.parametrize(("normae", "combat", "met"), [(0.02, 0.01, True), (0.2, 0.01, False), (0.005, 0.01, True)])
def test_normae_batch_accuracy_target_counts_both_at_chance_as_met(normae, combat, met):
    """The issue's bar: below ComBat, or both at or below chance (8 equal batches: 0.125)."""
    metrics = _normae_metrics() | {"batch_accuracy_chance": 0.125}
    metrics["metrics"]["normae"]["batch_accuracy"], metrics["metrics"]["combat"]["batch_accuracy"] = normae, combat
    page = build_report([{"method": "normae", "dataset": "x", "metrics": metrics}], _descriptions())
    (flag, text), = [t for t in _targets(_sections(page)["normae-x"]) if "batch accuracy" in t[1]]
    assert flag == str(met).lower() and "or both at or below chance (0.125" in text


def test_normae_class_auc_skipped_shows_the_reason():
    metrics = _normae_metrics()
    for scores in metrics["metrics"].values():
        scores.pop("class_auc")
    metrics["class_separation"] = {"skipped": "only one non-QC class ('Cow') in the data"}
    page = build_report([{"method": "normae", "dataset": "x", "metrics": metrics}], _descriptions())
    lead = _lead(_sections(page)["normae-x"])
    assert "class_auc" in _columns(lead) and "skipped" in _row(lead, "normae")
    assert "Class AUC skipped: only one non-QC class (&#x27;Cow&#x27;) in the data" in page


def test_aif_lead_table_targets_warning_and_reference(page):
    metrics = _json("aif_metrics_seed1.json")
    section = _sections(page)["aif-pbmc_batches"]
    lead = _lead(section)
    assert _rows(lead) == ["aif", "uncorrected", "combat", "harmony", "scgen", "reference-0-0"]
    assert _columns(lead) == ["Batch correction", "Bio conservation", "Total", "KMeans ARI"]
    for name, scores in metrics.items():
        assert all(format_value(scores[c]) in _row(lead, name) for c in _columns(lead))
    scvi = _row(lead, "reference-0-0")
    assert "scVI" in scvi and "0.731" in scvi and "omicsgen benchmark, benchmarks/aif.md" in scvi
    targets = _targets(section)
    assert targets[0][0] == "false" and "AIF total ≥ every baseline" in targets[0][1]  # 0.7543 < scGen 0.8099
    assert targets[1][0] == "true" and "k-means ARI ≥ uncorrected" in targets[1][1]
    # a warning recorded in metrics.json is a visible note right under the lead table
    after = section.split("</table>", 1)[1]
    assert after.index("kBET per label skipped") < after.index("<details")
    # the other scIB metrics in a scrollable details table; the picture of the table left out
    assert format_value(metrics["aif"]["iLISI"]) in after
    assert '<img alt="metrics"' not in section and '<img alt="umap"' in section


def test_cscgan_lead_table_per_type_once_and_augmentation(page):
    metrics = _json("cscgan_pipeline_metrics.json")
    overall = metrics["generation"]["overall"]
    section = _sections(page)["cscgan-kang"]
    lead = _lead(section)
    assert _rows(lead) == ["real_vs_generated", "real_vs_real"]
    assert _columns(lead) == ["classifier_auc", "mmd", "mean_correlation", "variance_correlation"]
    for name in _rows(lead):
        assert all(format_value(overall[name][c]) in _row(lead, name) for c in _columns(lead))
    targets = _targets(section)
    assert targets == [("true", targets[0][1])] and "AUC ≤ 0.65 overall: 0.5828" in targets[0][1]
    assert section.count("Per cell type") == 1
    cd4t = metrics["generation"]["per_cell_type"]["CD4T"]["real_vs_generated"]["classifier_auc"]
    assert section.count(format_value(cd4t)) == 1
    augmentation = re.search(r"<details><summary>Augmentation.*?</details>", section, re.S).group(0)
    assert format_value(metrics["augmentation"]["c_generated"]["f1"]) in augmentation
    assert "CD14+Mono" in augmentation
    assert "generation metrics" not in section  # the duplicate extra is not rendered


def test_vae_lead_table_and_targets(page):
    metrics = _vae_metrics()
    section = _sections(page)["vae-kang"]
    lead = _lead(section)
    assert _rows(lead) == ["vae", "pca"]
    assert _columns(lead) == ["leiden_ari", "leiden_nmi", "hdbscan_ari", "silhouette"]
    for name in ("vae", "pca"):
        row = _row(lead, name)
        for value in (metrics[name]["leiden"]["ari"], metrics[name]["leiden"]["nmi"],
                      metrics[name]["hdbscan"]["ari"], metrics[name]["silhouette"]):  # fmt: skip
            assert format_value(value) in row
    assert [met for met, _ in _targets(section)] == ["true", "false"]
    assert "Leiden NMI by resolution" in section and "0.6811" in section


def test_vae_binning_bins_in_details():
    metrics = _vae_metrics()
    metrics["label_key"] = "genome"
    for name in ("vae", "pca"):
        metrics[name]["hdbscan"]["bins"] = {
            "bins": [{"bin": "0", "source": "g1", "size": 40, "precision": 0.975, "recall": 0.8123}],
            "mean_precision": 0.975, "sources_recovered": 1, "n_sources": 6,
        }  # fmt: skip
    runs = [{"method": "vae", "dataset": "simulated_metagenome", "metrics": metrics,
             "extras": {"frame": object(), "timings": {"seconds": 12.5}}}]  # fmt: skip
    section = _sections(build_report(runs, _descriptions()))["vae-simulated_metagenome"]
    assert _rows(_lead(section)) == ["vae", "pca"] and "<code>genome</code>" in section
    bins = re.search(r"<summary>VAE · hdbscan · bins</summary>.*?</details>", section, re.S).group(0)
    assert "0.8123" in bins and "g1" in bins
    assert "12.5" in section


def test_references_only_in_their_datasets_section(page):
    sections = _sections(page)
    assert "Lotfollahi" in sections["scgen-kang"]
    other = sections["scgen-other"]
    assert "Lotfollahi" not in other and "reference-" not in other and 'class="references"' not in other
    assert "benchmarks/aif.md" in sections["aif-pbmc_batches"]
    assert all("benchmarks/aif.md" not in s for k, s in sections.items() if k != "aif-pbmc_batches")
    assert 'class="references"' not in sections["normae-mtbls79"] and 'class="references"' not in sections["cscgan-kang"]
    assert "issue author" not in page


def test_no_table_is_repeated(page):
    tables = re.findall(r"<table.*?</table>", page, re.S)
    for anchor, section in _sections(page).items():
        if anchor == "scgen-other":  # the same metrics on another dataset: the same tables, once per section
            continue
        mine = re.findall(r"<table.*?</table>", section, re.S)
        assert len(mine) == len(set(mine)), anchor
    assert len(tables) > 15


def test_figures_embedded_and_fit_the_width(page):
    png = _png()
    assert base64.b64encode(png).decode()[:200] in page
    assert page.count('style="max-width:100%"') >= 5
    assert ".scroll{overflow-x:auto" in page


def test_methods_not_run(page):
    descriptions = _descriptions()
    runs = [r for r in _runs() if r["method"] != "vae"]
    runs.append({"method": "cscgan", "dataset": "pbmc_batches", "metrics": None, "figures": {}, "extras": {}})
    page = build_report(runs, descriptions)
    sections = _sections(page)
    assert "Not run" in sections["vae"] and "kedro run --pipelines vae" in sections["vae"]
    assert "Not run" in sections["cscgan-pbmc_batches"] and "<table" not in sections["cscgan-pbmc_batches"]
    assert "5 of 7 runs" in page


def test_unexpected_metrics_fall_back_to_details():
    figures = {"scatter": _png()}
    runs = [
        {"method": "scgen", "dataset": "kang", "metrics": {"held_out": {"CD4T": {"r2": 0.91234}}, "warnings": ["only 1 epoch"]}},
        {"method": "aif", "dataset": "b", "metrics": {"aif": "failed", "note": [1, 2, {"a": None}]}},
        {"method": "cscgan", "dataset": "k", "metrics": {"generation": {"overall": {"real_vs_generated": {"mmd": 0.5}}},
                                                         "augmentation": {"a_downsampled": 3}}},
        {"method": "vae", "dataset": "reads", "metrics": {"vae": {"leiden": {"n_clusters": 4}}, "pca": {}}},
        {"method": "newmethod", "dataset": "d", "metrics": {"x": {"y": [{"bin": "1", "precision": 0.5}]}}, "figures": figures},
        {"method": "normae", "dataset": "m", "metrics": None, "figures": figures},
        {"method": "scgen", "dataset": "weird", "metrics": {}, "figures": {"bad": "not bytes"}, "extras": {"t": None}},
        {"method": "vae", "dataset": "list", "metrics": [0.123456], "figures": None, "extras": None},
    ]  # fmt: skip
    page = build_report(runs, _descriptions())
    sections = _sections(page)
    scgen = sections["scgen-kang"]
    assert '<table class="lead">' not in scgen and "0.9123" in scgen and "<details open>" in scgen
    assert "only 1 epoch" in scgen
    assert "failed" in sections["aif-b"]
    assert "0.5" in sections["cscgan-k"] and "<details" in sections["cscgan-k"]
    assert "n clusters" in sections["vae-reads"]
    assert "newmethod" in sections["newmethod-d"] and "precision" in sections["newmethod-d"]
    assert "figures only" in sections["normae-m"] and "<img" in sections["normae-m"]
    assert sections["scgen-weird"] and "0.1235" in sections["vae-list"]


def test_render_generic_and_format_value():
    html = render_generic({"CD4T": {"scgen": 0.91234, "null": 0.5}, "B": {"scgen": 0.8, "null": 0.4}, "n": 3})
    assert "0.9123" in html and html.count("<table") == 2
    assert format_value(1234) == "1,234" and format_value(float("nan")) == "–" and format_value(0.123456) == "0.1235"


def test_page_fits_a_1300_pixel_viewport(page, tmp_path):
    """Headless Chromium at 1,300 px: nothing runs off the page, details open or closed."""
    from playwright.sync_api import sync_playwright

    from tests.test_viz import CHROMIUM_ARGS, chromium_path

    file = tmp_path / "report.html"
    file.write_text(page, encoding="utf-8")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        view = browser.new_page(viewport={"width": 1300, "height": 900})
        view.goto(file.as_uri())
        assert view.evaluate("document.documentElement.scrollWidth") <= 1300
        view.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        assert view.evaluate("document.documentElement.scrollWidth") <= 1300
        if os.environ.get("OMICSGEN_REPORT_SCREENSHOT"):
            view.evaluate("document.querySelectorAll('details').forEach(d => d.open = false)")
            view.screenshot(path=os.environ["OMICSGEN_REPORT_SCREENSHOT"], full_page=True)
        browser.close()


def test_reporting_datasets_tolerate_absence(tmp_path):
    figure = FigureDataset(filepath=str(tmp_path / "f" / "fig.png"))
    metrics = OptionalJSONDataset(filepath=str(tmp_path / "m.json"))
    assert figure.load() is None and metrics.load() is None
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    figure.save(fig)
    assert figure.load()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics.save({"a": 1})
    assert metrics.load() == {"a": 1}


def test_a_method_on_several_datasets_gets_a_table_across_them():
    weaker = _vae_metrics()
    weaker["vae"]["leiden"]["ari"] = 0.41111  # below its PCA (0.58888) on this dataset
    runs = [
        {"method": "vae", "dataset": "first", "metrics": _vae_metrics()},
        {"method": "vae", "dataset": "second", "metrics": weaker},
        {"method": "normae", "dataset": "only", "metrics": {}},  # one dataset: no table
    ]
    page = build_report(runs, _descriptions())
    across = re.findall(r'<section class="across" id="across-(\w+)".*?</section>', page, re.S)
    assert across == ["vae"]
    table = re.search(r'<section class="across" id="across-vae".*?</section>', page, re.S).group(0)
    rows = dict(re.findall(r'<tr[^>]*data-row="([^"]+)"><th scope="row">[^<]*</th>(.*?)</tr>', table, re.S))
    assert list(rows) == ["first", "second", "mean", "worst"]
    assert "0.6123" in rows["first"] and 'class="mark met"' in rows["first"]
    assert "0.4111" in rows["second"] and 'class="mark unmet"' in rows["second"] and "0.5889" in rows["second"]
    assert "0.5117" in rows["mean"]  # (0.61234 + 0.41111) / 2
    assert "0.4111" in rows["worst"] and "second" in rows["worst"]
    assert 'href="#across-vae"' in page


def test_vae_caption_says_when_the_decoder_read_the_batch():
    metrics = _vae_metrics()
    plain = _sections(build_report([{"method": "vae", "dataset": "b", "metrics": metrics}], _descriptions()))["vae-b"]
    metrics["batch_key"] = "chem_x"
    conditioned = _sections(build_report([{"method": "vae", "dataset": "b", "metrics": metrics}], _descriptions()))["vae-b"]
    assert "decoder reads each cell's" not in plain
    assert "the VAE's decoder reads each cell's <code>chem_x</code> (batch or condition), PCA does not" in conditioned
    assert conditioned.count("chem_x") == 1  # used by the caption, not dumped again as another metric
