"""AGT-NO's serving forward: the decision of `forward(physics=False)` in eval mode, without autograd or autocast.

A batch-1 forward is about a hundred small ops, and each costs mostly its call: the module call, the attribute
walk to its weights, the slicing of a 1x1 convolution's weight into a matrix. A `ServingPlan` holds every weight
already in the form its op takes, and the tables made from them (the spectral layers' mixing matrices and Fourier
bases), and runs the network as a flat sequence of ops on them, with the biases inside the matmuls and the 1x1
path of each FNO block as the accumulator of its spectral synthesis. The model builds it once per weight
version. It computes what the modules' forward computes, to float rounding (tests/physics/
test_agt_no_architecture.py compares the two); training, and anything needing autograd, runs the modules.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.model_outputs import variational_outputs
from pipeline.physics.spectral import FNOBlock, cached_fourier_basis, mix_modes, mixing_matrices, patch_attention
from pipeline.physics.views import envelope_lines, pooled_spectrum, spectrum_view


class _Fno(NamedTuple):
    spectral: Tensor  # the spectral weight [in, out, n_modes, 2]
    n_modes: int
    weight: Tensor  # the 1x1 path [out, in] (expanded over the batch) ...
    bias: Tensor  # ... and its bias [out, 1]
    norm: tuple  # GroupNorm's weight, bias, eps


class _Attention(NamedTuple):
    n_heads: int
    patch_size: int
    norm: functools.partial  # its layers in functional form
    qkv: functools.partial
    out: functools.partial


class ServingPlan:
    """The weights of an AGTNOArchitecture in the form the serving path's ops take them."""

    def __init__(self, model: nn.Module):
        """`model`: the AGTNOArchitecture that builds this plan (read by its layers, so not imported here)."""
        self._slots = [
            (module._parameters, name)
            for module in model.modules()
            for name, param in module._parameters.items()
            if param is not None
        ]
        self.version = self.weights_version()
        self.sample_rate, self.orders, self.order_grid = model.sample_rate, model.orders, model.order_grid
        with torch.inference_mode(False), torch.no_grad():  # plain tensors: usable outside inference mode too
            self.lift = _matrix(model.lift)
            self.blocks = [_fno(block) if isinstance(block, FNOBlock) else _attention(block) for block in model.blocks]
            self.spectrum_norm = _layer_norm(model.spectrum_norm)
            self.band_head = _matrix(model.band_head) if model.n_bands else None
            if model.n_bands:
                self.order_convs = [
                    (conv.weight.detach(), conv.bias.detach(), conv.padding)
                    for conv in model.order_conv
                    if isinstance(conv, nn.Conv1d)
                ]
                self.envelope_norm = _layer_norm(model.envelope_norm)
            self.encoder = _linear(model.encoder[0])
            self.latent_head, self.classifier = _linear(model.latent_head), _linear(model.classifier)
        self._tables = {}  # window length -> the FNO blocks' (analysis, synthesis, mixing), None for attention

    def weights_version(self) -> tuple:
        """Storage and in-place version of every parameter: they change with an optimizer step, a load_state_dict,
        a move to another device or dtype, and a parameter put in another's place (the plan keeps the old one's
        storage alive, so the new one cannot reuse its address)."""
        return tuple((param.data_ptr(), param._version) for params, name in self._slots for param in (params[name],))

    def decide(self, signal: Tensor, shaft_hz: Tensor | float) -> dict:
        """predictions, mean, log_var, uncertainties and features of windows `[B, L, C]` (float32 or float64),
        read at `shaft_hz`: `[B]`, or one number for every window."""
        batch, length = signal.shape[:2]
        spectrum, log_power = spectrum_view(signal)
        h = torch.baddbmm(self.lift[1], self.lift[0].expand(batch, -1, -1), log_power)
        for block, table in zip(self.blocks, self._fourier_tables(h)):
            if table is None:
                h = patch_attention(h, block.n_heads, block.patch_size, block.norm, block.qkv, block.out)
            else:
                h = _fno_forward(h, block, *table)
        features = [self.spectrum_norm(pooled_spectrum(log_power, h))]
        if self.band_head is not None:
            weights = torch.baddbmm(self.band_head[1], self.band_head[0].expand(batch, -1, -1), h).sigmoid()
            weights = F.interpolate(weights, size=spectrum.shape[-1], mode="linear", align_corners=True)
            orders = envelope_lines(
                spectrum[:, 0], weights, length, shaft_hz, self.sample_rate, self.orders, self.order_grid
            )
            for weight, bias, padding in self.order_convs:
                orders = F.gelu(F.conv1d(orders, weight, bias, padding=padding))
            features.append(self.envelope_norm(orders.flatten(1)))
        hidden = F.gelu(self.encoder(torch.cat(features, dim=-1)))
        mean, log_var = self.latent_head(hidden).chunk(2, dim=-1)
        return variational_outputs(self.classifier(mean), mean, log_var, hidden)  # VariationalClassifier.decide

    def _fourier_tables(self, h: Tensor) -> list[Optional[tuple[Tensor, Tensor, Tensor]]]:
        """Per block, for features `h` of this length and dtype: analysis, synthesis and mixing matrices."""
        key = (h.shape[-1], h.dtype)
        if key not in self._tables:
            with torch.inference_mode(False), torch.no_grad():
                self._tables[key] = [
                    None if isinstance(block, _Attention) else _fourier_table(block, *key) for block in self.blocks
                ]
        return self._tables[key]


def _fourier_table(block: _Fno, length: int, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    modes = min(block.n_modes, length // 2 + 1)
    analysis, synthesis = cached_fourier_basis(length, modes, block.spectral.device, dtype)
    return analysis, synthesis, mixing_matrices(block.spectral, modes, dtype)


def _fno_forward(x: Tensor, block: _Fno, analysis: Tensor, synthesis: Tensor, mixing: Tensor) -> Tensor:
    """FNOBlock's forward, x + gelu(norm(spectral(x) + pointwise(x))), with the 1x1 path as the accumulator the
    spectral synthesis adds into."""
    batch = len(x)
    y = torch.baddbmm(block.bias, block.weight.expand(batch, -1, -1), x)
    y = torch.baddbmm(y, mix_modes(x, analysis, mixing).transpose(1, 2), synthesis.expand(batch, -1, -1))
    return x + F.gelu(F.group_norm(y, 1, *block.norm))


def _fno(block: FNOBlock) -> _Fno:
    norm = block.norm
    return _Fno(
        block.spectral.weight.detach(),
        block.spectral.n_modes,
        *_matrix(block.pointwise),
        (norm.weight.detach(), norm.bias.detach(), norm.eps),
    )


def _attention(block: nn.Module) -> _Attention:
    return _Attention(block.n_heads, block.patch_size, _layer_norm(block.norm), _linear(block.qkv), _linear(block.out))


def _matrix(conv: nn.Conv1d) -> tuple[Tensor, Tensor]:
    """A kernel-1 convolution as (weight [out, in], bias [out, 1]), for baddbmm."""
    return conv.weight.detach()[:, :, 0], conv.bias.detach()[:, None]


def _linear(layer: nn.Linear) -> functools.partial:
    return functools.partial(F.linear, weight=layer.weight.detach(), bias=layer.bias.detach())


def _layer_norm(norm: nn.LayerNorm) -> functools.partial:
    return functools.partial(
        F.layer_norm,
        normalized_shape=norm.normalized_shape,
        weight=norm.weight.detach(),
        bias=norm.bias.detach(),
        eps=norm.eps,
    )
