"""Building blocks of the neural operator: spectral convolution, FNO block, patch attention.

All blocks take and return `[batch, channels, time]` and work for any number of time steps, so one set of
weights serves every window length (the FNO idea: weights live on Fourier modes, not on grid points).
"""

import contextlib
import functools
import math

import torch
import torch.nn.functional as F
from torch import nn


class SpectralConv1d(nn.Module):
    """Global convolution as a product in Fourier space, restricted to the lowest `n_modes` modes (FNO).

    rfft along time -> multiply the lowest modes by learned complex `[in, out]` matrices -> irfft back to the
    input length. A mode is "cycles per window", so a band-limited signal sampled on a finer grid gives the same
    output at the shared time points (resolution independence). Modes beyond what the length holds are ignored.

    Only a few of the L/2+1 modes are kept, so the transforms are matmuls with a cos/sin basis
    rather than full FFTs (one `[2 modes, L]` cos/sin matmul each way, and one batched matmul mixing all modes):
    the same numbers, about 3x faster on CPU, and real-valued, so `torch.compile` generates code for them.
    They run in float32 (float64 for a double model) even under bf16 autocast, to keep the sums over L accurate.
    """

    def __init__(self, in_channels: int, out_channels: int, n_modes: int):
        super().__init__()
        if n_modes < 1:
            raise ValueError(f"n_modes must be >= 1, got {n_modes}")
        self.in_channels, self.out_channels, self.n_modes = in_channels, out_channels, n_modes
        scale = 1.0 / math.sqrt(in_channels * out_channels)
        # [..., 0] real part, [..., 1] imaginary part of the per-mode mixing matrices.
        self.weight = nn.Parameter(scale * torch.randn(in_channels, out_channels, n_modes, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, length = x.shape
        modes = min(self.n_modes, length // 2 + 1)
        dtype = torch.promote_types(x.dtype, torch.float32)  # bf16/fp16 -> float32, float64 stays
        with full_precision(x):
            basis = _fourier_basis if torch.compiler.is_compiling() else _cached_fourier_basis
            analysis, synthesis = basis(length, modes, x.device, dtype)
            # the kept modes, real then imaginary part of every channel, grouped by mode: [B, 2 modes, in]
            spectrum = torch.bmm(analysis.expand(batch, -1, -1), x.to(dtype).transpose(1, 2))
            mixed = torch.bmm(spectrum.view(batch, modes, -1).transpose(0, 1), self._mixing(modes, dtype))
            mixed = mixed.transpose(0, 1).reshape(batch, 2 * modes, -1)  # [B, 2 modes, out]
            # irfft with the dropped modes at zero (the per-mode counts live in the synthesis basis)
            y = torch.bmm(mixed.transpose(1, 2), synthesis.expand(batch, -1, -1))
        return y.to(x.dtype)

    def _mixing(self, modes: int, dtype: torch.dtype) -> torch.Tensor:
        """`[modes, 2 in, 2 out]`: (re, im) in -> (re, im) out, i.e. [[w_re, w_im], [-w_im, w_re]] per mode, so
        that complex mixing is a real batched matmul."""
        weight = self.weight[:, :, :modes].to(dtype).permute(2, 0, 1, 3)  # [modes, in, out, 2]
        w_re, w_im = weight[..., 0], weight[..., 1]
        return torch.cat([torch.cat([w_re, w_im], dim=-1), torch.cat([-w_im, w_re], dim=-1)], dim=1)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, n_modes={self.n_modes}"


def full_precision(x: torch.Tensor) -> contextlib.AbstractContextManager:
    """Autocast off for a block that needs float32 sums; no context at all when autocast is already off, since
    entering one costs a batch-1 forward several microseconds a block."""
    device = x.device.type
    return torch.autocast(device, enabled=False) if torch.is_autocast_enabled(device) else contextlib.nullcontext()


def _fourier_basis(
    length: int, modes: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """The truncated real DFT and its inverse as matrices, a cosine and a sine row per mode.

    analysis `[2 modes, L]`: rows cos and -sin of 2 pi k t / L (k < modes), so `analysis @ x` gives the real
    and imaginary part of each of rfft(x)[:modes] in turn. synthesis `[2 modes, L]`: irfft with the dropped modes
    at zero, i.e. rows c_k cos and -c_k sin, where each kept mode counts twice (itself and its mirror,
    c_k = 2 / L) except DC and, for even lengths, the Nyquist mode (c_k = 1 / L).
    """
    k = torch.arange(modes, device=device, dtype=dtype)
    t = torch.arange(length, device=device, dtype=dtype)
    angle = (2 * math.pi / length) * torch.outer(k, t)
    cos, sin = angle.cos(), angle.sin()
    count = torch.full((modes, 1), 2.0 / length, device=device, dtype=dtype)
    count[0] = 1.0 / length
    if 2 * (modes - 1) == length:
        count[-1] = 1.0 / length
    analysis = torch.stack([cos, -sin], dim=1)  # [modes, 2, L]
    return analysis.reshape(2 * modes, length), (count[..., None] * analysis).reshape(2 * modes, length)


@functools.lru_cache(maxsize=32)
def _cached_fourier_basis(
    length: int, modes: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """`_fourier_basis`, built once per shape instead of by every layer on every call. Built outside inference
    mode, so a table first made under torch.inference_mode can still be saved for backward when training resumes."""
    with torch.inference_mode(False):
        return _fourier_basis(length, modes, device, dtype)


class FNOBlock(nn.Module):
    """x + GELU(norm(spectral(x) + pointwise(x))).

    The spectral path mixes globally but only at low frequencies; the 1x1 path keeps every frequency, and the
    GELU demodulates high-frequency content (e.g. resonance ringing) into low-frequency envelopes the next
    spectral layer can see. GroupNorm with one group normalises each window on its own (no batch mixing).
    """

    def __init__(self, channels: int, n_modes: int):
        super().__init__()
        self.spectral = SpectralConv1d(channels, channels, n_modes)
        self.pointwise = nn.Conv1d(channels, channels, kernel_size=1)
        self.norm = nn.GroupNorm(1, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.gelu(self.norm(self.spectral(x) + pointwise(self.pointwise, x)))


def pointwise(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """A kernel-1 Conv1d `[B, in, L] -> [B, out, L]` as one batched matmul: the same numbers, several times faster
    on CPU than oneDNN's 1x1 convolution. (bmm, not matmul: matmul folds this case into a transposed copy.)"""
    out = torch.bmm(conv.weight[:, :, 0].expand(x.shape[0], -1, -1), x)
    return out if conv.bias is None else out + conv.bias[:, None]


class PatchAttention(nn.Module):
    """Message passing between coarse time patches: pool, multi-head self-attention, broadcast back, add.

    The sequence is average-pooled into about `length / patch_size` patches (at least one); every patch attends
    to every other (a fully connected graph). There is no positional encoding: bearing faults are stationary
    within a window, so what matters is which patches look alike, not where they are, and the block stays
    independent of the window length.
    """

    def __init__(self, channels: int, n_heads: int, patch_size: int, dropout: float = 0.0):
        super().__init__()
        if channels % n_heads:
            raise ValueError(f"channels ({channels}) must be divisible by n_heads ({n_heads})")
        self.n_heads, self.patch_size, self.dropout = n_heads, patch_size, dropout
        self.norm = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, length = x.shape
        n_patches = max(1, round(length / self.patch_size))
        patches = F.adaptive_avg_pool1d(x, n_patches).transpose(1, 2)  # [B, P, C]
        qkv = self.qkv(self.norm(patches)).view(batch, n_patches, 3, self.n_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, P, C / heads]
        attended = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        messages = self.out(attended.transpose(1, 2).reshape(batch, n_patches, channels)).transpose(1, 2)
        # Each time step receives the message of the patch it was pooled into (nearest-neighbour upsampling);
        # when the patches tile the window exactly, a broadcast add does it without building the upsampled copy.
        if length % n_patches == 0:
            return (x.reshape(batch, channels, n_patches, -1) + messages[..., None]).reshape(batch, channels, length)
        return x + F.interpolate(messages, size=length, mode="nearest")
