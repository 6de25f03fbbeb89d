"""scGen's network: encoder → diagonal Gaussian latent → decoder (torch modules only)."""

from __future__ import annotations

import torch
from torch import nn

from omicsgen.models.nn import UniformMaskDropout, WideLinear, mlp, reparameterise

#: Keras-style batch norm (running averages with momentum 0.99), as the original
#: TensorFlow scGen and the scvi-tools port use.
KERAS_BATCH_NORM = {"batch_norm_momentum": 0.01, "batch_norm_eps": 1e-3}


class InputMajorLinear(WideLinear):
    """A :class:`WideLinear` whose weight is stored transposed, as ``(in_features, out_features)``.

    Same function, same initial values as ``nn.Linear`` (its init, then transposed). Why:
    for the gene-input layer (6,998 → 800) at batch 32 the weight gradient is a rank-32
    product written into a 5.6 M-entry matrix. With nn.Linear's layout its rows are 6,998
    floats long, a leading dimension that is not a multiple of the SIMD width; the CPU BLAS
    (MKL, one thread) then runs that product ~2.5× slower than into the transposed
    ``(6998, 800)`` matrix, and it was the largest single cost of a training step.
    Checkpoints in nn.Linear's ``(out, in)`` layout are transposed on load. (Where oneDNN
    runs the products, it reads either layout at the same speed.)
    """

    input_major = True

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.weight = nn.Parameter(self.weight.detach().t().contiguous())

    def _torch_forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and self.bias is not None:
            return torch.addmm(self.bias, x, self.weight)
        out = x @ self.weight
        return out + self.bias if self.bias is not None else out

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        weight = state_dict.get(prefix + "weight")
        linear_layout = (self.out_features, self.in_features)
        if weight is not None and self.in_features != self.out_features and tuple(weight.shape) == linear_layout:
            state_dict[prefix + "weight"] = weight.t().contiguous()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class ScGenVAE(nn.Module):
    """Encoder → (mean, log-variance) of a diagonal Gaussian latent → decoder → expression.

    Encoder and decoder are ``n_layers`` × (Linear → BatchNorm → LeakyReLU → Dropout), as in
    scGen; the two gene-wide layers (the encoder's first, stored input-major, and the
    decoder's output) are :class:`WideLinear`.
    """

    def __init__(self, n_input: int, n_hidden: int, n_latent: int, n_layers: int, dropout: float):  # noqa: PLR0913
        super().__init__()
        hidden = [n_hidden] * n_layers
        stack = {"activation": "leaky_relu", "dropout": dropout, "dropout_layer": UniformMaskDropout, **KERAS_BATCH_NORM}
        self.encoder = mlp([n_input, *hidden], first_linear=InputMajorLinear, **stack)
        self.mean = nn.Linear(n_hidden, n_latent)
        self.log_var = nn.Linear(n_hidden, n_latent)
        self.decoder = mlp([n_latent, *hidden], output=n_input, output_linear=WideLinear, **stack)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(x)
        return self.mean(hidden), self.log_var(hidden)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, log_var = self.encode(x)
        z = reparameterise(mean, log_var) if self.training else mean
        return self.decode(z), mean, log_var
