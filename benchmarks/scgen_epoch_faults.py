"""Per-epoch wall time, CPU time and minor page faults of scGen training, with glibc's
default handling of freed memory and with :func:`omicsgen.models.runtime.retain_freed_memory`
(what every training now applies), each in its own process.

Same setting as the speed comparison (`bench_scgen.py`): Kang model input, CD4T stimulated
held out, batch 32, no validation split, float32, 1 thread.

    python benchmarks/scgen_epoch_faults.py --epochs 6
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def worker(mode: str, epochs: int) -> None:
    import anndata as ad
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    import bench_scgen

    from omicsgen.models import ScGen, training
    from omicsgen.models.scgen.plan import ScGenTrainingPlan

    torch.set_num_threads(1)
    if mode == "default":
        training.retain_freed_memory = lambda: False
    train_path, _ = bench_scgen.write_inputs(bench_scgen.model_input(), "CD4T", Path(tempfile.mkdtemp()))
    train = ad.read_h5ad(train_path)
    ScGen.setup_anndata(train, **bench_scgen.KEYS, split_key=None)
    model = ScGen(train, plan={"precision": "32", "adam_eps": 0.01, "weight_decay": 1e-6},
                  training={"max_epochs": epochs, "batch_size": 32, "patience": None, "seed": 0,
                            "device": "cpu", "progress": False})  # fmt: skip
    last = [resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()]
    on_epoch_end = ScGenTrainingPlan.on_epoch_end

    def report(self, epoch, record):
        usage, now = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        print(f"{mode:8s} epoch {epoch}: {now - last[1]:.2f} s wall, {usage.ru_utime - last[0].ru_utime:.2f} s user, "
              f"{usage.ru_stime - last[0].ru_stime:.2f} s system, {usage.ru_minflt - last[0].ru_minflt} minor faults",
              flush=True)
        last[:] = [usage, now]
        return on_epoch_end(self, epoch, record)

    ScGenTrainingPlan.on_epoch_end = report
    model.train()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--worker", choices=["default", "retain"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.epochs)
        return
    for mode in ("default", "retain"):
        subprocess.run([sys.executable, __file__, "--worker", mode, "--epochs", str(args.epochs)], check=True)


if __name__ == "__main__":
    main()
