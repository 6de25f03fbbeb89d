"""Project commands: ``kedro run`` uses :class:`omicsgen.runner.OverlapRunner` unless
``--runner`` names another (Kedro lets a project's ``cli.py`` redefine a built-in command).

Everything else about ``kedro run`` (its options, ``--runner SequentialRunner``,
``--runner-params``) is Kedro's own command.
"""

from __future__ import annotations

import copy

import click
from kedro.framework.cli.project import run as kedro_run

DEFAULT_RUNNER = "omicsgen.runner.OverlapRunner"


@click.group(name="omicsgen")
def cli() -> None:
    """omicsgen's project commands."""


run = copy.copy(kedro_run)
run.params = [copy.copy(option) for option in kedro_run.params]
for option in run.params:
    if option.name == "runner":
        option.default = DEFAULT_RUNNER
        option.help = f"{option.help} Default: {DEFAULT_RUNNER} (trainings overlap in worker processes)."
cli.add_command(run, "run")
