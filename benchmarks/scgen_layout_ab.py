"""Interleaved A/B in one process: one scGen float32 training step (batch 32, 6,998 genes)
with the gene-input layer as ``nn.Linear`` (weight (out, in)) vs ``InputMajorLinear``
(weight (in, out)); same initial values.

    OMP_NUM_THREADS=1 python benchmarks/scgen_layout_ab.py
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict

import torch
from torch import nn

from omicsgen.models.scgen.model import ScGenModelConfig
from omicsgen.models.scgen.module import ScGenVAE
from omicsgen.models.scgen.plan import ScGenPlanConfig, ScGenTrainingPlan

N_GENES, BATCH, STEPS, REPEATS = 6998, 32, 46, 4


def make_plan(input_major: bool) -> ScGenTrainingPlan:
    torch.manual_seed(0)
    config = ScGenModelConfig()
    model = ScGenVAE(N_GENES, **asdict(config))
    if not input_major:
        transposed, linear = model.encoder[0], nn.Linear(N_GENES, config.n_hidden)
        with torch.no_grad():
            linear.weight.copy_(transposed.weight.t())
            linear.bias.copy_(transposed.bias)
        model.encoder[0] = linear
    model.train()
    return ScGenTrainingPlan(model, ScGenPlanConfig())


def main() -> None:
    x = torch.rand(STEPS * BATCH, N_GENES)
    plans = {"nn.Linear (out, in)": make_plan(False), "InputMajorLinear (in, out)": make_plan(True)}
    times: dict[str, list[float]] = {name: [] for name in plans}
    for _ in range(REPEATS):
        for name, plan in plans.items():  # interleaved: A, B, A, B, ...
            start = time.perf_counter()
            for i in range(STEPS):
                plan.training_step({"x": x[i * BATCH : (i + 1) * BATCH]}, 1)
            times[name].append((time.perf_counter() - start) / STEPS * 1000)
    medians = {name: statistics.median(ts[1:]) for name, ts in times.items()}  # first = warm-up
    for name, ts in times.items():
        print(f"{name}: median {medians[name]:.1f} ms/step {[round(t, 1) for t in ts]}")
    slow, fast = medians.values()
    print(f"speed-up of the input-major layout: {slow / fast:.2f}x")


if __name__ == "__main__":
    main()
