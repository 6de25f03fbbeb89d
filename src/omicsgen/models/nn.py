"""Building blocks the methods' networks share: the MLP stack, the Gaussian latent, its KL."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "tanh": nn.Tanh}


def mlp(  # noqa: PLR0913
    sizes: Sequence[int],
    *,
    activation: str = "relu",
    batch_norm: bool = True,
    dropout: float = 0.0,
    batch_norm_momentum: float = 0.1,
    batch_norm_eps: float = 1e-5,
    first_linear: type[nn.Linear] = nn.Linear,
    output: int | None = None,
    output_linear: type[nn.Linear] = nn.Linear,
) -> nn.Sequential:
    """``len(sizes) - 1`` hidden layers of Linear → (BatchNorm) → activation → (Dropout),
    then, with ``output``, one plain Linear to that many units.

    ``batch_norm_momentum=0.01, batch_norm_eps=1e-3`` gives Keras' batch norm (scGen's);
    ``first_linear`` and ``output_linear`` let a method build its first and output layers
    differently (scGen's gene-wide layers: :class:`WideLinear`).
    """
    layers: list[nn.Module] = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append((first_linear if index == 0 else nn.Linear)(n_in, n_out))
        if batch_norm:
            layers.append(nn.BatchNorm1d(n_out, momentum=batch_norm_momentum, eps=batch_norm_eps))
        layers.append(ACTIVATIONS[activation]())
        if dropout:
            layers.append(nn.Dropout(dropout))
    if output is not None:
        layers.append(output_linear(sizes[-1], output))
    return nn.Sequential(*layers)


def _onednn_linear():
    """oneDNN's fp32 linear (``a @ b.T + bias``) as torch ships it, or None where absent."""
    try:
        op = torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):
        return None
    return op if torch.backends.mkldnn.is_available() else None


ONEDNN_LINEAR = _onednn_linear()


def _onednn_product(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``a @ b.T (+ bias)``; strided (transposed) views are read in place, not copied."""
    return ONEDNN_LINEAR(a, b, bias, "none", [], "")


class _OneDNNLinearFunction(torch.autograd.Function):
    """A linear layer whose three products (forward, input gradient, weight gradient) run in oneDNN."""

    @staticmethod
    def forward(ctx, x, weight, bias, input_major):
        ctx.save_for_backward(x, weight)
        ctx.input_major = input_major
        return _onednn_product(x, weight.t() if input_major else weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = _onednn_product(grad, weight if ctx.input_major else weight.t())
        if ctx.needs_input_grad[1]:
            grad_weight = _onednn_product(x.t(), grad.t()) if ctx.input_major else _onednn_product(grad.t(), x.t())
        if ctx.needs_input_grad[2]:
            grad_bias = grad.sum(dim=0)
        return grad_x, grad_weight, grad_bias, None


class WideLinear(nn.Linear):
    """``nn.Linear`` for layers as wide as the genes, whose float32 CPU products run in oneDNN.

    Same parameters, same function, same checkpoints as ``nn.Linear``. Why: torch's CPU
    matrix products go to MKL, which on this project's AMD EPYC (Zen 4) machine runs the
    products of a 6,998 × 800 layer at batch 32 at 53–66 GFLOP/s; oneDNN, which ships in
    the same torch, runs them at 73–84 (benchmarks/scgen.md, "oneDNN products"). For layers
    of ≤ 256 units oneDNN's fixed cost per call makes it slower than MKL, so only the
    gene-wide layers use it. Elsewhere (CUDA, bfloat16 autocast, other dtypes, inputs that
    are not 2-D, a torch without oneDNN) it is ``nn.Linear``.
    """

    #: weight stored as (in, out) rather than nn.Linear's (out, in) (see scGen's InputMajorLinear)
    input_major = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._use_onednn(x):
            return _OneDNNLinearFunction.apply(x, self.weight, self.bias, self.input_major)
        return self._torch_forward(x)

    def _torch_forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)

    def _use_onednn(self, x: torch.Tensor) -> bool:
        return (
            ONEDNN_LINEAR is not None and x.dim() == 2 and x.device.type == "cpu"
            and x.dtype == torch.float32 and self.weight.dtype == torch.float32
            and not torch.is_autocast_enabled("cpu")
        )  # fmt: skip


def reparameterise(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """A draw from N(mean, exp(log_var)) that gradients flow through."""
    return mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)


def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) ‖ N(0, I)) per sample, summed over latent dimensions."""
    return 0.5 * (mean.pow(2) + log_var.exp() - log_var - 1).sum(dim=1)
