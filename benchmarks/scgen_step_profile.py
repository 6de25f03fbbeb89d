"""Where one scGen training step spends its time: forward, backward and Adam, timed apart.

Uses the Kang model input (run the data-engineering pipeline first), our ScGenVAE with
the published architecture and the default training plan, batch 32. Prints the median
of each phase over ``--steps`` steps (after one warm-up epoch) and, with ``--profile``,
torch.profiler's table of the most expensive operators.

    python benchmarks/scgen_step_profile.py --threads 1
    python benchmarks/scgen_step_profile.py --threads 2 --profile
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import anndata as ad
import torch

from omicsgen.models.data import dense_matrix
from omicsgen.models.scgen.model import ScGenModelConfig
from omicsgen.models.scgen.module import ScGenVAE
from omicsgen.models.scgen.plan import ScGenPlanConfig, ScGenTrainingPlan
from omicsgen.models.training import minibatches

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=90)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--precision", default="32")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--input", default=str(ROOT / "data/05_model_input/kang/model_input.h5ad"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.from_numpy(dense_matrix(ad.read_h5ad(args.input)))
    print(f"{x.shape[0]} cells x {x.shape[1]} genes, {(x != 0).float().mean():.3f} non-zero, "
          f"{args.threads} thread(s), batch {args.batch_size}, precision {args.precision}")
    model = ScGenVAE(x.shape[1], **asdict(ScGenModelConfig())).train()
    plan = ScGenTrainingPlan(model, ScGenPlanConfig(precision=args.precision))

    def batches(n: int) -> Iterator[dict[str, torch.Tensor]]:
        """``n`` minibatches from as many shuffled epochs as it takes (the training loop's slicing)."""
        epochs = itertools.chain.from_iterable(minibatches({"x": x}, args.batch_size) for _ in itertools.count())
        return itertools.islice(epochs, n)

    for batch in batches(-(-x.shape[0] // args.batch_size)):  # warm-up epoch
        plan.training_step(batch, 0)
    phases: dict[str, list[float]] = {"forward": [], "backward": [], "adam": []}
    for batch in batches(args.steps):
        t0 = time.perf_counter()
        loss = plan._losses(batch["x"])["loss"]  # the plan's own forward (autocast and all)
        t1 = time.perf_counter()
        plan.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        plan.optimizer.step()
        t3 = time.perf_counter()
        for name, seconds in zip(phases, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            phases[name].append(seconds * 1000)
    medians = {name: statistics.median(values) for name, values in phases.items()}
    print(" | ".join(f"{name} {ms:.1f} ms" for name, ms in medians.items()) + f" | total {sum(medians.values()):.1f} ms")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for batch in batches(20):
                plan.training_step(batch, 0)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30, max_name_column_width=40))


if __name__ == "__main__":
    main()
