"""kedro-viz: the static build lists the pipelines' nodes, layers and namespaces."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import project_registry


def _expected_namespaces(project: Path) -> tuple[set[str], set[str]]:
    """The datasets of ``project``'s registry (kedro viz reads the local environment) and
    one namespace per (dataset, method) the method pipelines run."""
    from omicsgen.pipelines.methods import build_method_pipelines

    datasets = set(project_registry(project, env="local"))
    runs = {f"{dataset}.{name}" for name, method in build_method_pipelines().items() for dataset in method.datasets}
    assert {"kang", "pbmc_batches", "mtbls79", "simulated_metagenome"} <= datasets
    assert {"kang.scgen", "kang.cscgan", "kang.vae", "pbmc_batches.aif", "mtbls79.normae", "simulated_metagenome.vae"} <= runs
    return datasets, runs


def test_kedro_viz_build_lists_data_engineering_nodes(kedro_project_copy):
    project = kedro_project_copy
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    completed = subprocess.run(
        [sys.executable, "-m", "kedro", "viz", "build"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    main = json.loads((project / "build" / "api" / "main").read_text())
    tasks = {node["id"]: node for node in main["nodes"] if node["type"] == "task"}
    datasets, runs = _expected_namespaces(project)
    modular = {name.split(".")[0] for node in tasks.values() for name in node.get("modular_pipelines") or []}
    assert datasets <= modular
    # one namespace per (dataset, method), nested in its dataset's, each with its own nodes
    assert runs <= set(main["modular_pipelines"])
    for namespace in runs:
        assert namespace in {child["id"] for child in main["modular_pipelines"][namespace.split(".")[0]]["children"]}
        assert any(node["full_name"].startswith(f"{namespace}.") for node in tasks.values()), namespace
    names = {node["name"] for node in tasks.values()}
    assert {"validate", "qc_filter", "normalise", "split_train_validation", "validate_and_join_tables"} <= names
    assert ["raw", "intermediate", "primary", "model_input"] == main["layers"][:4]


def _free_port() -> int:
    """A free localhost port below 49152: kedro-viz refuses the ephemeral range above it,
    where the operating system's own choice (binding port 0) often lands."""
    import random
    import socket

    for port in random.Random().sample(range(20_000, 49_000), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 49000")


def chromium_path() -> str:
    import shutil

    import pytest

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            raise AssertionError("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return path


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def test_kedro_viz_flowchart_renders_namespaces(kedro_project_copy):
    """Serve kedro-viz on a free localhost port and look at it in headless Chromium."""
    import re
    import time
    import urllib.request

    from playwright.sync_api import sync_playwright

    chromium = chromium_path()
    project = kedro_project_copy
    datasets, runs = _expected_namespaces(project)
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    log = project / "kedro_viz.log"

    def start_server() -> tuple[subprocess.Popen, int]:
        port = _free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "kedro", "viz", "run", "--no-browser", "--host", "127.0.0.1", "--port", str(port)],
            cwd=project,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the server it spawns goes with it
        )
        return process, port

    def stop(process: subprocess.Popen) -> None:
        """`kedro viz run` serves from a child process that outlives a terminated parent."""
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)

    def wait_until_serving(process: subprocess.Popen, port: int) -> bool:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/main", timeout=5).read()
                return True
            except OSError:
                if process.poll() is not None:
                    return False
                time.sleep(1)
        raise AssertionError(f"kedro viz did not come up in 180 s:\n{log.read_text()[-3000:]}")

    # A second try covers the free port being taken between choosing and binding it.
    server, port = start_server()
    if not wait_until_serving(server, port):
        stop(server)
        server, port = start_server()
        assert wait_until_serving(server, port), f"kedro viz run exited:\n{log.read_text()[-3000:]}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
            modular = page.locator(".pipeline-node--modularPipeline")
            page.wait_for_selector(".pipeline-node--modularPipeline", timeout=60_000)
            collapsed = set(modular.all_text_contents())
            # clicking a dataset's namespace expands it into one namespace per method run on it
            for dataset in sorted(datasets):
                modular.filter(has_text=re.compile(rf"^{re.escape(dataset)}$")).first.click()
                page.wait_for_selector(
                    f".pipeline-node--modularPipeline:has-text('{dataset}.')", timeout=60_000
                )
            expanded = set(modular.all_text_contents())
            screenshot = project / "data" / "08_reporting" / "kedro_viz_flowchart.png"
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot))
            browser.close()
    finally:
        stop(server)

    assert datasets <= collapsed, f"flowchart shows {sorted(collapsed)}, expected {sorted(datasets)}"
    assert runs <= expanded, f"expanded flowchart shows {sorted(expanded)}, expected {sorted(runs)}"
    assert screenshot.stat().st_size > 10_000
    # keep the latest screenshot where a person looks for reports
    target = Path(__file__).resolve().parents[1] / "data" / "08_reporting" / screenshot.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(screenshot.read_bytes())
