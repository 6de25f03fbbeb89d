"""What a user sees after `kedro run`: the summary report and the notebooks.

One session-scoped run of the whole default pipeline in the `test` environment feeds
every test here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from omicsgen.pipelines.methods import build_method_pipelines
from tests.conftest import PROJECT_ROOT, copy_project, project_registry, run_kedro

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="session")
def default_run(tmp_path_factory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("default_run") / "project")
    run_kedro(project)
    return project


def expected_runs(project: Path) -> list[tuple[str, str]]:
    """(method, dataset) for every method pipeline and every dataset of the run's registry it runs on."""
    project_registry(project, env="test")
    runs = [(name, dataset) for name, method in build_method_pipelines().items() for dataset in method.datasets]
    assert {("scgen", "kang"), ("aif", "pbmc_batches"), ("normae", "mtbls79"), ("cscgan", "kang"),
            ("vae", "kang"), ("vae", "simulated_metagenome")} <= set(runs)  # fmt: skip
    return runs


NUMBER = r"-?\d[\d,]*\.?\d*(?:e[-+]?\d+)?"


def test_report_has_a_section_per_run_with_its_numbers(default_run):
    page = (default_run / "data" / "test" / "08_reporting" / "report.html").read_text()
    runs = expected_runs(default_run)
    for method, dataset in runs:
        run = f"{method}-{dataset}"
        section = re.search(rf'<section class="method[^"]*" id="{run}"[^>]*>(.*?)</section>', page, re.S)
        assert section, f"no section for {run}"
        metrics_file = default_run / "data" / "test" / "08_reporting" / dataset / method / "metrics.json"
        assert metrics_file.is_file(), f"{run} wrote no metrics.json"
        assert "Not run" not in section.group(1)
        assert "<img" in section.group(1), f"{run} section has no figure"
        # every number in the section's lead table (its rows for the method and baselines;
        # reference rows quote published figures) comes from metrics.json
        lead = re.findall(r'<table class="lead">.*?</table>', section.group(1), re.S)
        assert len(lead) == 1, f"{run}: {len(lead)} lead tables"
        rows = re.findall(r'<tr class="(?!reference)[^"]*" data-row="[^"]*">(.*?)</tr>', lead[0], re.S)
        numbers = [x for row in rows for x in re.findall(rf"<td>(?:<b>)?({NUMBER})(?:</b>)?</td>", row)]
        assert numbers, f"{run} lead table shows no numbers"
        flat = json.dumps(json.loads(metrics_file.read_text()))
        values = [float(x) for x in re.findall(r"-?\d+\.?\d*(?:e[-+]?\d+)?", flat)]
        for shown in numbers:
            number = float(shown.replace(",", ""))
            assert any(abs(number - v) <= 5e-4 * max(1.0, abs(v)) for v in values), f"{run}: {shown} not in metrics.json"


def test_report_renders_in_headless_chromium(default_run):
    """Opened offline in a browser, every method section is there with its figures drawn."""
    from playwright.sync_api import sync_playwright

    from tests.test_viz import CHROMIUM_ARGS, chromium_path

    report = default_run / "data" / "test" / "08_reporting" / "report.html"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(report.as_uri())
        sections = page.eval_on_selector_all("section.method", "nodes => nodes.map(n => n.id)")
        drawn = page.eval_on_selector_all("section.method img", "imgs => imgs.filter(i => i.complete && i.naturalWidth > 0).length")
        total = page.eval_on_selector_all("section.method img", "imgs => imgs.length")
        page.screenshot(path=str(report.with_suffix(".png")), full_page=True)
        browser.close()
    assert set(sections) == {f"{method}-{dataset}" for method, dataset in expected_runs(default_run)}
    assert total >= 2 * len(sections) and drawn == total


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook_runs_headless(default_run, notebook, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("KEDRO_ENV", "test")
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    workdir = default_run / "notebooks"
    workdir.mkdir(exist_ok=True)
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    errors = [o for cell in nb.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


def test_notebooks_exist_for_every_job():
    """One notebook per job, from the catalog; and one using the five model classes without Kedro."""
    api = [n for n in NOTEBOOKS if "python_api" in n.name]
    jobs = [n for n in NOTEBOOKS if n not in api]
    assert len(jobs) >= 5 and len(api) == 1, [n.name for n in NOTEBOOKS]
    for notebook in jobs:
        text = notebook.read_text()
        assert "%load_ext kedro.ipython" in text and "catalog.load(" in text, notebook.name
    text = api[0].read_text()
    assert "from omicsgen.models import AIF, VAE, CscGAN, NormAE, ScGen" in text and "kedro" not in text
    for verb in (".predict(", ".correct(", ".generate(", ".embed(", ".save(", ".load("):
        assert verb in text, verb
