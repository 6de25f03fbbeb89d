"""Building blocks the methods' networks share: the MLP stack, the Gaussian latent, its KL."""

from __future__ import annotations

import warnings
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
    dropout_layer: type[nn.Module] = nn.Dropout,
) -> nn.Sequential:
    """``len(sizes) - 1`` hidden layers of Linear → (BatchNorm) → activation → (Dropout),
    then, with ``output``, one plain Linear to that many units.

    ``batch_norm_momentum=0.01, batch_norm_eps=1e-3`` gives Keras' batch norm (scGen's);
    ``first_linear`` and ``output_linear`` let a method build its first and output layers
    differently (scGen's gene-wide layers: :class:`WideLinear`), ``dropout_layer`` its
    dropout (:class:`UniformMaskDropout`).
    """
    layers: list[nn.Module] = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append((first_linear if index == 0 else nn.Linear)(n_in, n_out))
        if batch_norm:
            layers.append(nn.BatchNorm1d(n_out, momentum=batch_norm_momentum, eps=batch_norm_eps))
        layers.append(ACTIVATIONS[activation]())
        if dropout:
            layers.append(dropout_layer(dropout))
    if output is not None:
        layers.append(output_linear(sizes[-1], output))
    return nn.Sequential(*layers)


class UniformMaskDropout(nn.Dropout):
    """``nn.Dropout`` whose mask is drawn as ``uniform < keep`` rather than by ``bernoulli_``.

    The same distribution of masks, drawn faster on CPU (one thread): forward and backward
    of a 32 × 800 batch take 265 µs with nn.Dropout and 145 µs here, 0.5 ms of a 40 ms scGen
    step with its four dropout layers. (The masks differ from nn.Dropout's for a given seed.)
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = 1.0 - self.p
        # one float mask, scaled in place: the backward is then a single product
        return x * torch.rand_like(x).lt_(keep).div_(keep)


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


#: Inputs with at most this share of non-zero entries go through the sparse product. A
#: 32-cell Kang batch (4.7 % non-zero) costs 1.1 ms sparse + 0.5 ms to find its non-zeros,
#: against 3.9 ms dense (6,998 → 800, one thread); the sparse cost grows with the non-zeros,
#: so the two meet near 15 %. 10 % leaves a margin for other machines.
SPARSE_INPUT_DENSITY = 0.10


def _rows_as_csr(x: torch.Tensor) -> torch.Tensor:
    """The non-zeros of a dense 2-D tensor as a CSR tensor (torch's own conversion is slower)."""
    flat = x.reshape(-1)
    positions = flat.nonzero().squeeze(1)
    n_columns = x.shape[1]
    rows = positions // n_columns
    row_starts = torch.searchsorted(rows, torch.arange(x.shape[0] + 1, device=x.device))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(row_starts, positions - rows * n_columns, flat[positions], size=x.shape,
                                       check_invariants=False)


class _SparseInputLinearFunction(_OneDNNLinearFunction):
    """An input-major linear layer whose forward product reads only the input's non-zeros.

    The gradients are the dense ones of :class:`_OneDNNLinearFunction` (the weight gradient
    is a dense matrix either way, and torch's sparse product for it measured slower).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, input_major):
        ctx.save_for_backward(x, weight)
        ctx.input_major = input_major  # True: (in, out) weights only
        sparse_x = _rows_as_csr(x)
        return torch.addmm(bias, sparse_x, weight) if bias is not None else torch.sparse.mm(sparse_x, weight)


class WideLinear(nn.Linear):
    """``nn.Linear`` for layers as wide as the genes, whose float32 CPU products run in oneDNN.

    Same parameters, same function, same checkpoints as ``nn.Linear``. Why: torch's CPU
    matrix products go to MKL, which on this project's AMD EPYC (Zen 4) machine runs the
    products of a 6,998 × 800 layer at batch 32 at 53–66 GFLOP/s; oneDNN, which ships in
    the same torch, runs them at 73–84 (benchmarks/scgen.md, "oneDNN products"). For layers
    of ≤ 256 units oneDNN's fixed cost per call makes it slower than MKL, so only the
    gene-wide layers use it. An input-major layer (a network's gene input) fed a batch that is
    mostly zeros (≤ ``SPARSE_INPUT_DENSITY``, as scRNA-seq expression is) computes its forward
    product from the non-zeros only. Elsewhere (CUDA, bfloat16 autocast, other dtypes,
    inputs that are not 2-D, a torch without oneDNN) it is ``nn.Linear``.
    """

    #: weight stored as (in, out) rather than nn.Linear's (out, in) (see scGen's InputMajorLinear)
    input_major = False
    #: the largest share of non-zeros for which an input-major layer's forward runs sparse
    sparse_input_density = SPARSE_INPUT_DENSITY

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._use_onednn(x):
            if self.input_major and x.numel() and torch.count_nonzero(x) <= self.sparse_input_density * x.numel():
                return _SparseInputLinearFunction.apply(x, self.weight, self.bias, True)
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
