"""AGT-NO's spectrum view of a window: its log power spectrum, pooled onto bands (the fault-order view is
pipeline.dsp.fault_orders)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The spectrum view averages the power of neighbouring bins onto SPECTRUM_BINS bins (47 Hz apart for 1024 samples at
# 12 kHz): resonances and band energies are broad; the fine lines are the envelope view's job.
SPECTRUM_BINS = 128
N_SPECTRUM_BANDS = 32  # the log spectrum and the operator's features are pooled into this many bands for the latent


def pooled_spectrum(log_power: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """`[B, features]`: band energies (what an analyst's trend chart shows) beside the operator's view of each band
    and the peak of each of its channels."""
    band_energy = F.adaptive_avg_pool1d(log_power, N_SPECTRUM_BANDS).flatten(1)
    bands = F.adaptive_avg_pool1d(h, N_SPECTRUM_BANDS).flatten(1)
    return torch.cat([band_energy, bands, h.amax(dim=-1)], dim=-1)


def spectrum_view(signal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rfft `[B, C, F]` of windows `[B, L, C]`, orthonormal so that |rfft|^2 is the power per bin (the envelope
    view does not depend on the scale), and the log power pooled onto SPECTRUM_BINS bins `[B, C, bins]`, in the
    signal's own units (dB re 1 unit^2, in nepers): the level stays readable as an offset."""
    spectrum = torch.fft.rfft(signal.transpose(1, 2), dim=-1, norm="ortho")
    power = F.adaptive_avg_pool1d((spectrum * spectrum.conj()).real, min(SPECTRUM_BINS, spectrum.shape[-1]))
    return spectrum, power.clamp_min(1e-12).log()
