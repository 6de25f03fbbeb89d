"""NormAE benchmark: the full default run (`kedro run --pipelines normae`, base env) on the
shipped MTBLS79 data — wall time, CPU time, machine load — and the metrics it produced.

    python benchmarks/bench_normae.py [--env base] [--out benchmarks/results/normae.json]

The run is a child process; its CPU time (user + sys) is read from ``os.wait4``, so on a
shared machine ``cpu_seconds / wall_seconds`` shows how much of the CPU the run really got.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--env", default="base")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "normae.json"))
    args = parser.parse_args()

    command = [sys.executable, "-m", "kedro", "run", "--pipelines", "normae", "--env", args.env]
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    load_before = os.getloadavg()
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode(errors="replace")
    if status != 0:
        sys.exit(f"kedro run failed:\n{stderr[-3000:]}")

    report = ROOT / "data" / "08_reporting" / "normae" / "metrics.json"
    stop = ROOT / "data" / "07_model_output" / "normae" / "early_stop_info.json"
    result = {
        "command": " ".join(["kedro", "run", "--pipelines", "normae", "--env", args.env]),
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "cpu_count": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "early_stop_info": json.loads(stop.read_text()),
        "metrics": json.loads(report.read_text())["metrics"],
        "targets_met": json.loads(report.read_text())["targets_met"],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
