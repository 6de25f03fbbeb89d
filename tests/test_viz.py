"""kedro-viz: the static build lists the pipelines' nodes, layers and namespaces."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from omicsgen.pipelines.data_engineering import DATASETS


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
    modular = {node.get("modular_pipelines", [None])[0] for node in tasks.values() if node.get("modular_pipelines")}
    assert set(DATASETS) <= modular
    names = {node["name"] for node in tasks.values()}
    assert {"validate", "qc_filter", "normalise", "balance_by_cell_type", "validate_and_join_tables"} <= names
    assert ["raw", "intermediate", "primary", "model_input"] == main["layers"][:4]
