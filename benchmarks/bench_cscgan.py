"""Cost of one cscGAN generator step (5 critic updates + 1 generator update) per preset.

Presets are timed interleaved in ONE process (the machine is shared, so only ratios
between presets measured together are meaningful); CPU time is reported beside wall time.

    python benchmarks/bench_cscgan.py --repeats 3 --steps 3
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from omicsgen.models.cscgan import Critic, CscganPlan, Generator, PlanConfig

PRESETS = {
    # the CPU default of conf/base/parameters/cscgan.yml
    "cpu_default": {"n_genes": 500, "critic_layers": (256, 256, 128), "critic_input": "log1p"},
    # the paper's networks on the same genes
    "paper_networks_500_genes": {"n_genes": 500, "critic_layers": (1024, 512, 256)},
    # the paper's networks on every Kang gene seen in >= 3 cells (the GPU preset)
    "paper_all_genes": {"n_genes": 5887, "critic_layers": (1024, 512, 256)},
}


def one_step(plan: CscganPlan, batch: dict[str, torch.Tensor]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    plan.training_step(batch, 1)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    torch.manual_seed(0)
    plans, batches = {}, {}
    for name, preset in PRESETS.items():
        plan_config, n_genes = PlanConfig(), preset["n_genes"]  # the paper's optimiser settings
        generator = Generator(n_genes, n_classes=7)
        critic = Critic(n_genes, preset["critic_layers"], n_classes=7)
        critic_input = preset.get("critic_input", "counts")
        plans[name] = CscganPlan(generator, critic, plan_config, critic_input, torch.ones(7) / 7, 100, args.batch_size)
        n = args.batch_size * plan_config.n_critic
        batches[name] = {"x": torch.rand(n, n_genes) * 40, "y": torch.randint(0, 7, (n,))}
        one_step(plans[name], batches[name])  # warm-up
    timings = {name: {"wall": [], "cpu": []} for name in PRESETS}
    for _ in range(args.repeats):
        for name in PRESETS:
            for _ in range(args.steps):
                wall, cpu = one_step(plans[name], batches[name])
                timings[name]["wall"].append(wall)
                timings[name]["cpu"].append(cpu)
    base = min(timings["cpu_default"]["wall"])
    report = {
        name: {
            "best_wall_s_per_generator_step": min(t["wall"]),
            "median_cpu_s_per_generator_step": sorted(t["cpu"])[len(t["cpu"]) // 2],
            "wall_ratio_to_cpu_default": min(t["wall"]) / base,
        }
        for name, t in timings.items()
    }
    report["threads"] = torch.get_num_threads()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
