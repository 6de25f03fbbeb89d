"""One linear layer's three products, timed alone: torch's default CPU path (MKL) vs oneDNN.

For each (batch × inputs → outputs) shape: the forward ``x @ W.T + b``, the input gradient
``g @ W`` and the weight gradient ``g.T @ x``, median µs over 200 calls. The shapes are
scGen's gene-wide layers (32 × 6,998 → 800 and back), its hidden layers, and the VAE's,
AIF's and cscGAN's (see benchmarks/scgen.md, "oneDNN products").

    python benchmarks/linear_products.py --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

SHAPES = [(32, 6998, 800), (32, 800, 6998), (32, 800, 800), (32, 800, 100), (128, 2000, 256), (128, 256, 128),
          (128, 128, 16), (128, 256, 2000), (64, 256, 512), (64, 512, 1000), (1000, 6998, 800)]


def median_us(function, calls: int = 200) -> float:
    for _ in range(10):
        function()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)


def shape_row(rows: int, n_in: int, n_out: int) -> str:
    """The three products of one shape, MKL vs oneDNN, as one printed line."""
    onednn = torch.ops.mkldnn._linear_pointwise
    x, weight, bias, grad = torch.randn(rows, n_in), torch.randn(n_out, n_in), torch.randn(n_out), torch.randn(rows, n_out)
    pairs = [
        (lambda: torch.nn.functional.linear(x, weight, bias), lambda: onednn(x, weight, bias, "none", [], "")),
        (lambda: grad @ weight, lambda: onednn(grad, weight.t(), None, "none", [], "")),
        (lambda: grad.t() @ x, lambda: onednn(grad.t(), x.t(), None, "none", [], "")),
    ]
    cells = [f"{median_us(mkl):.0f} vs {median_us(dnn):.0f}" for mkl, dnn in pairs]
    gflop = 2 * rows * n_in * n_out / 1e9
    return f"{rows} × {n_in} → {n_out} ({gflop:.3f} GFLOP each): " + " / ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("shape: forward / input gradient / weight gradient, µs (MKL vs oneDNN)")
    for shape in SHAPES:
        print(shape_row(*shape), flush=True)


if __name__ == "__main__":
    main()
