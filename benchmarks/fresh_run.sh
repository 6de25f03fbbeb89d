#!/usr/bin/env bash
# A newcomer's first run, timed: clone this repository's HEAD into a fresh directory and run
# `kedro run` there with no environment variables but PATH (the project's venv first), HOME,
# telemetry off and the clone's src on PYTHONPATH, under /usr/bin/time -v.
#
#   benchmarks/fresh_run.sh [CLONE_DIR] [VENV_BIN]      # defaults: /tmp/omicsgen-fresh, ./.venv/bin
#
# Writes CLONE_DIR/run.log (kedro's output) and CLONE_DIR/run.time (time -v: wall, CPU, peak RSS);
# the run's metrics are in CLONE_DIR/data/08_reporting/<dataset>/<method>/metrics.json.
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
clone="${1:-/tmp/omicsgen-fresh}"
venv_bin="$(cd "${2:-$repo/.venv/bin}" && pwd)"
rm -rf "$clone" && git clone -q "$repo" "$clone" && cd "$clone" || exit 9
git log --oneline -1
env -i PATH="$venv_bin:/usr/local/bin:/usr/bin:/bin" HOME="$HOME" KEDRO_DISABLE_TELEMETRY=true PYTHONPATH="$clone/src" \
    /usr/bin/time -v kedro run > run.log 2> run.time
status=$?
grep -E "Elapsed|User time|System time|Maximum resident|Exit status" run.time
exit $status
