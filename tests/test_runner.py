"""The default runner overlaps trainings in worker processes and computes what the
sequential runner computes."""

from __future__ import annotations

import json

from kedro.runner import SequentialRunner

from omicsgen.runner import OverlapRunner
from tests.conftest import copy_project, run_kedro

# NormAE trains in a worker while ComBat, QC-RSC and SERRF run here
PIPELINES = ["normae"]


def _metrics(project) -> dict[str, dict]:
    reporting = project / "data" / "test" / "08_reporting"
    return {
        str(path.relative_to(reporting)): json.loads(path.read_text())
        for path in sorted(reporting.rglob("metrics.json"))
    }


def test_overlapping_trainings_give_the_sequential_numbers(tmp_path):
    sequential = copy_project(tmp_path / "sequential")
    overlapped = copy_project(tmp_path / "overlapped")
    run_kedro(sequential, pipeline_names=PIPELINES, runner=SequentialRunner())
    run_kedro(overlapped, pipeline_names=PIPELINES, runner=OverlapRunner(processes=2))
    expected, got = _metrics(sequential), _metrics(overlapped)
    assert expected and set(got) == set(expected)
    for name in expected:
        if name.startswith("mtbls79"):  # NormAE's metrics name the input files, in each project copy
            for value in (expected[name], got[name]):
                for key in ("input_file", "info_file"):
                    value.pop(key, None)
        assert got[name] == expected[name], name
