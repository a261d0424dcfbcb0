"""What an analyst reads off a vibration recording, to compare simulated and real ones on the same terms.

Level and impulsiveness (RMS, kurtosis, crest factor), where the power sits (band shares, Welch spectrum),
and the bearing's signature: the squared-envelope spectrum of the band where strikes stand out most, the
class's fault lines in it, and how high the strikes peak. notebooks/simulator_vs_real.ipynb uses them.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.signal import find_peaks, welch

from pipeline.data.bearing import BearingGeometry, characteristic_frequencies, fault_frequency
from pipeline.data.classes import fault_location
from pipeline.dsp.envelope import (
    RESONANCE_BANDS_HZ,
    band_masks,
    envelope_spectrum,
    most_impulsive_band,
    squared_envelope,
)

BANDS_HZ = ((0, 1000), (1000, 2000), (2000, 3000), (3000, 4000), (4000, 6000))
LINE_TOLERANCE = 0.02  # relative: the recorded speed is good to 0.2 %, slip broadens the lines by about 1 %


def level_stats(x: np.ndarray) -> dict[str, float]:
    """RMS, kurtosis (3 for Gaussian noise, higher the more impulsive) and crest factor (peak over RMS)."""
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    rms = float(np.sqrt(np.mean(x**2)))
    return {"rms": rms, "kurtosis": float(np.mean(x**4) / rms**4), "crest": float(np.abs(x).max() / rms)}


def power_spectrum(x: np.ndarray, fs: float, nperseg: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density (frequencies in Hz, g^2/Hz)."""
    return welch(np.asarray(x, dtype=np.float64), fs, nperseg=nperseg)


def band_shares(x: np.ndarray, fs: float, bands=BANDS_HZ) -> dict[str, float]:
    """Share of the recording's power in each band [low, high), keyed like '0-1 kHz'; a band reaching Nyquist
    keeps it."""
    freqs, psd = power_spectrum(x, fs)
    shares = {}
    for lo, hi in bands:
        inside = (freqs >= lo) & ((freqs < hi) | (hi >= fs / 2))
        shares[f"{lo / 1000:g}-{hi / 1000:g} kHz"] = float(psd[inside & (freqs <= hi)].sum() / psd.sum())
    return shares


def impulsive_band(x: np.ndarray, fs: float) -> tuple[float, float]:
    """The band of RESONANCE_BANDS_HZ whose envelope is most impulsive (largest spectral kurtosis)."""
    _, best = most_impulsive_band(_tensor(x)[None], fs)
    return RESONANCE_BANDS_HZ[int(best)]


def squared_envelope_spectrum(x: np.ndarray, fs: float, band: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (Hz) and amplitude spectrum of the squared envelope of `x` in `band`, relative to its mean:
    strikes show as lines at their rate, modulation as sidebands."""
    return np.fft.rfftfreq(len(x), 1 / fs), envelope_spectrum(_squared_envelope(x, fs, band)).numpy()


def fault_lines(label: str, shaft_hz: float, bearing: BearingGeometry, harmonics: int = 3) -> list[tuple[str, float]]:
    """(name, Hz) of the lines a fault class strikes: BPFO harmonics (outer), BPFI harmonics with shaft-rate
    sidebands (inner), 2 x BSF harmonics with cage-rate sidebands (ball); none for a healthy bearing."""
    location = fault_location(label)
    if location == "normal":
        return []
    rate = fault_frequency(label, bearing, shaft_hz)
    name = {"outer": "BPFO", "inner": "BPFI", "ball": "2xBSF"}[location]
    sideband = {"inner": ("fr", shaft_hz), "ball": ("FTF", characteristic_frequencies(bearing, shaft_hz)["ftf"])}
    lines = []
    for h in range(1, harmonics + 1):
        lines.append((f"{h} {name}", h * rate))
        if location in sideband:
            side, hz = sideband[location]
            lines += [(f"{h} {name} - {side}", h * rate - hz), (f"{h} {name} + {side}", h * rate + hz)]
    return lines


def line_prominence(freqs: np.ndarray, spectrum: np.ndarray, line_hz: float) -> float:
    """Height of the envelope spectrum's peak within LINE_TOLERANCE of `line_hz` over the median of the spectrum
    from half to one and a half times `line_hz`: about 2-3 with no line, tens for a clear one."""
    near = np.abs(freqs - line_hz) <= LINE_TOLERANCE * line_hz + (freqs[1] - freqs[0])
    around = (freqs > 0.5 * line_hz) & (freqs < 1.5 * line_hz)
    return float(spectrum[near].max() / np.median(spectrum[around]))


def resonance_band(x: np.ndarray, fs: float, half_width: float = 600.0) -> tuple[float, float]:
    """The band +-`half_width` Hz around the strongest peak of the smoothed spectrum above 1 kHz: where the
    strikes ring the structure hardest."""
    freqs, psd = power_spectrum(x, fs, nperseg=256)
    above = freqs > 1000
    centre = freqs[above][np.argmax(psd[above])]
    return max(centre - half_width, 100.0), min(centre + half_width, 0.49 * fs)


def strike_peaks(x: np.ndarray, fs: float, rate_hz: float, band: tuple[float, float]) -> np.ndarray:
    """Heights (in x's units) of the envelope's peaks in `band`: the level at which strikes at `rate_hz` ring
    the structure."""
    envelope, peaks = _strikes(x, fs, rate_hz, band)
    return envelope[peaks]


def strike_damping(x: np.ndarray, fs: float, rate_hz: float, band: tuple[float, float]) -> float:
    """Damping ratio of the mode the strikes ring, from how fast the median envelope after the strikes in the
    top decile of the envelope decays to 30 %: zeta = decay rate / (2 pi f) at the band's centre."""
    span = int(0.01 * fs)
    envelope, peaks = _strikes(x, fs, rate_hz, band)
    peaks = peaks[(envelope[peaks] >= np.quantile(envelope, 0.9)) & (peaks < len(x) - span)]
    decay = np.median(envelope[peaks[:, None] + np.arange(span)] / envelope[peaks, None], axis=0)
    n = max(3, int(np.argmax(decay < 0.3)))
    rate = -np.polyfit(np.arange(n) / fs, np.log(decay[:n]), 1)[0]
    return float(rate / (2 * np.pi * np.mean(band)))


def _strikes(x: np.ndarray, fs: float, rate_hz: float, band: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The envelope of `x` in `band` and its peaks, at most one per 0.7 strike intervals."""
    envelope = _envelope(x, fs, band)
    peaks, _ = find_peaks(envelope, distance=max(1, int(0.7 * fs / rate_hz)))
    return envelope, peaks


def floor_slope(x: np.ndarray, fs: float, frame: int = 128) -> float:
    """Colour of the floor between strikes: slope (dB per decade, 0.2-2 kHz) of the mean spectrum of the
    quietest fifth of `frame`-sample frames. White noise: 0."""
    frames = np.asarray(x[: len(x) // frame * frame], dtype=np.float64).reshape(-1, frame)
    frames = frames - frames.mean(axis=1, keepdims=True)
    energy = (frames**2).mean(axis=1)
    quiet = frames[energy <= np.quantile(energy, 0.2)]
    spectrum = (np.abs(np.fft.rfft(quiet * np.hanning(frame), axis=1)) ** 2).mean(axis=0)
    freqs = np.fft.rfftfreq(frame, 1 / fs)
    keep = (freqs >= 200) & (freqs <= 2000)
    return float(np.polyfit(np.log10(freqs[keep]), 10 * np.log10(spectrum[keep]), 1)[0])


def _envelope(x: np.ndarray, fs: float, band: tuple[float, float]) -> np.ndarray:
    """Magnitude of the analytic signal of `x` in `band` (pipeline.dsp.envelope), in x's units."""
    return np.sqrt(_squared_envelope(x, fs, band).numpy())


def _squared_envelope(x: np.ndarray, fs: float, band: tuple[float, float]) -> torch.Tensor:
    """|analytic signal|^2 of `x` in `band`, as `[T]`."""
    signal = _tensor(x)
    return squared_envelope(torch.fft.rfft(signal), band_masks(len(signal), fs, [band], signal.dtype), len(signal))[0]


def _tensor(x: np.ndarray) -> torch.Tensor:
    """A recording as a float64 tensor: whole recordings are long, and float32 sums over them lose digits."""
    return torch.as_tensor(np.asarray(x, dtype=np.float64))
