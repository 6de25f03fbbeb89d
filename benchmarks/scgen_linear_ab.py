"""A/B/C of one scGen training step: the gene-wide layers' products in MKL (torch's default
CPU path), in oneDNN (:class:`omicsgen.models.nn.WideLinear`), and in oneDNN with the gene
input layer's forward product read from the batch's non-zeros (the default), interleaved.

Uses the Kang model input (``kedro run --to-outputs=kang.model_input``), the published
architecture and the default plan, batch 32. All start from the same weights; one
step on the same batch first checks that they agree, then ``--rounds`` rounds of
``--steps`` steps each alternate between them. Prints ms per step per round and the
median (first round skipped).

    python benchmarks/scgen_linear_ab.py --threads 1
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import anndata as ad
import torch

from omicsgen.models.data import dense_matrix
from omicsgen.models.nn import WideLinear
from omicsgen.models.scgen.model import ScGenModelConfig
from omicsgen.models.scgen.module import ScGenVAE
from omicsgen.models.scgen.plan import ScGenPlanConfig, ScGenTrainingPlan
from omicsgen.models.training import minibatches

ROOT = Path(__file__).resolve().parents[1]


def plan_with(onednn: bool, n_genes: int, sparse_input: bool = False) -> ScGenTrainingPlan:
    torch.manual_seed(0)
    model = ScGenVAE(n_genes, **asdict(ScGenModelConfig())).train()
    for layer in model.modules():
        if isinstance(layer, WideLinear):
            if not onednn:
                layer._use_onednn = lambda x: False
            if not sparse_input:
                layer.sparse_input_density = -1.0
    return ScGenTrainingPlan(model, ScGenPlanConfig())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=46)
    parser.add_argument("--input", default=str(ROOT / "data/05_model_input/kang/model_input.h5ad"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.from_numpy(dense_matrix(ad.read_h5ad(args.input)))
    plans = {
        "MKL": plan_with(False, x.shape[1]),
        "oneDNN": plan_with(True, x.shape[1]),
        "oneDNN + sparse input": plan_with(True, x.shape[1], sparse_input=True),
    }
    losses = []
    for plan in plans.values():
        torch.manual_seed(1)
        losses.append(plan.training_step({"x": x[:32]}, 0)["loss"].item())
    weights = [plan.module.encoder[0].weight for plan in plans.values()]
    print("one step from the same weights: loss " + " vs ".join(f"{loss:.6f}" for loss in losses)
          + ", largest weight difference from MKL's "
          + " / ".join(f"{(weight - weights[0]).abs().max().item():.1e}" for weight in weights[1:]))
    epochs = itertools.chain.from_iterable(minibatches({"x": x}, 32) for _ in itertools.count())
    times: dict[str, list[float]] = {name: [] for name in plans}
    for _ in range(args.rounds):
        for name, plan in plans.items():
            batches = list(itertools.islice(epochs, args.steps))
            start = time.perf_counter()
            for batch in batches:
                plan.training_step(batch, 0)
            times[name].append((time.perf_counter() - start) / args.steps * 1000)
    for name, values in times.items():
        print(f"{name}: " + " ".join(f"{t:.1f}" for t in values) + f" | median {statistics.median(values[1:]):.1f} ms/step")


if __name__ == "__main__":
    main()
