"""Usage examples for the operator building blocks: all take and return [batch, channels, time]."""

import math

import pytest
import torch

from pipeline.physics.spectral import FNOBlock, PatchAttention, SpectralConv1d


def low_frequency_wave(length: int) -> torch.Tensor:
    """The same band-limited signal (3 and 5 cycles per window) sampled on `length` points, as [1, 1, L]."""
    t = torch.arange(length) / length
    return (torch.sin(2 * math.pi * 3 * t) + 0.5 * torch.cos(2 * math.pi * 5 * t)).view(1, 1, length)


def test_spectral_conv_keeps_length_and_maps_channels():
    conv = SpectralConv1d(in_channels=3, out_channels=5, n_modes=8)
    assert conv(torch.randn(2, 3, 100)).shape == (2, 5, 100)


@pytest.mark.parametrize("length", [16, 17, 1000, 1024])
def test_spectral_conv_is_rfft_times_weights_then_irfft(length):
    """The definition, spelled out with torch.fft (the layer computes the same numbers with matmuls)."""
    conv = SpectralConv1d(3, 2, n_modes=12)
    x = torch.randn(2, 3, length)
    spectrum = torch.fft.rfft(x)
    modes = min(12, spectrum.shape[-1])
    weights = torch.view_as_complex(conv.weight[..., :modes, :].contiguous())
    mixed = torch.zeros(2, 2, spectrum.shape[-1], dtype=spectrum.dtype)
    mixed[..., :modes] = torch.einsum("bim,iom->bom", spectrum[..., :modes], weights)
    torch.testing.assert_close(conv(x), torch.fft.irfft(mixed, n=length), atol=1e-5, rtol=1e-4)


def test_spectral_conv_is_resolution_independent():
    torch.manual_seed(0)
    conv = SpectralConv1d(1, 2, n_modes=8)
    coarse, fine = conv(low_frequency_wave(256)), conv(low_frequency_wave(512))
    assert coarse.abs().max() > 0.1  # the modes were not filtered away
    torch.testing.assert_close(coarse, fine[..., ::2], atol=1e-5, rtol=1e-5)


def test_spectral_conv_ignores_frequencies_above_its_modes():
    conv = SpectralConv1d(1, 1, n_modes=4)
    t = torch.arange(128) / 128
    high = torch.sin(2 * math.pi * 20 * t).view(1, 1, -1)
    assert conv(high).abs().max() < 1e-5


def test_spectral_conv_clips_modes_to_short_inputs():
    conv = SpectralConv1d(2, 2, n_modes=64)
    assert conv(torch.randn(1, 2, 16)).shape == (1, 2, 16)  # only 9 modes exist


def test_spectral_conv_runs_under_bf16_autocast():
    conv = SpectralConv1d(4, 4, n_modes=8)
    x = torch.randn(2, 4, 64, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    assert y.dtype == torch.bfloat16 and torch.isfinite(y.float()).all()


@pytest.mark.parametrize("length", [16, 100, 1024])
def test_fno_block_and_patch_attention_work_for_any_length(length):
    x = torch.randn(2, 8, length)
    assert FNOBlock(8, n_modes=16)(x).shape == x.shape
    assert PatchAttention(8, n_heads=2, patch_size=64)(x).shape == x.shape


def test_patch_attention_does_not_mix_the_batch():
    attention = PatchAttention(8, n_heads=2, patch_size=16).eval()
    x = torch.randn(3, 8, 128)
    changed = x.clone()
    changed[1] = torch.randn(8, 128)
    torch.testing.assert_close(attention(x)[0], attention(changed)[0])


def test_patch_attention_needs_heads_that_divide_channels():
    with pytest.raises(ValueError, match="divisible"):
        PatchAttention(10, n_heads=4, patch_size=16)


def test_spectral_conv_gradients_are_exact_in_float64():
    conv = SpectralConv1d(2, 2, n_modes=4).double()
    x = torch.randn(1, 2, 20, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(conv, (x,))
