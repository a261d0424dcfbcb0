"""The vibration analyst's envelope-spectrum diagnosis as a classifier of fault location, with no training: per
window, demodulate the band of largest spectral kurtosis, score the ball, inner and outer combs of its squared
envelope spectrum in shaft orders (`pipeline.dsp.envelope`), and name the location of the largest contrast, or
`normal` below a threshold. The threshold is its only parameter, so the rule is the floor a learnt model must
beat with no training data at all."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from pipeline.data.bearing import SKF_6205_DE, BearingGeometry
from pipeline.data.classes import FAULT_LOCATIONS
from pipeline.dsp.envelope import COMB_LOCATIONS, RESONANCE_BANDS_HZ, comb_contrast, most_impulsive_band

MAX_BIN_HZ = 3.0
"""Coarsest envelope-spectrum resolution the rule accepts, so windows must be at least sample_rate / 3 samples
long (4000 at 12 kHz, 0.33 s). The inner comb's fundamental (BPFI, 5.4 shaft orders) lies only 0.3 orders
(9 Hz at 30 Hz) above the ball comb's upper cage sideband; `comb_contrast` drops bins that two combs claim, and
a Hann-windowed line spreads over +-1 bin, so on coarser bins the inner line's centre is dropped and an inner
race fault is read from its weaker harmonics alone."""

DEFAULT_THRESHOLD = 0.2
"""Unfitted threshold on the largest comb contrast, set from healthy bearings alone: about the 97th percentile
of that contrast on simulated healthy 4096-sample windows, above every 0.34 s window of CWRU's healthy
drive-end recording; a clear fault comb scores 0.3-0.9. A healthy window's contrast is noisier the fewer bins
it has, so fit the threshold for windows of other lengths."""

THRESHOLD_GRID = np.linspace(0.0, 1.0, 101)  # contrast is at most 1; a flat envelope spectrum scores about 0
CHUNK_SAMPLES = 2**20  # samples demodulated at once: the five complex band signals of a chunk take 80 MB


class EnvelopeRule:
    """Location classifier: windows [N, L] sampled at `sample_rate`, their shaft speeds (Hz, one or one per
    window) -> 'normal', 'ball', 'inner' or 'outer' per window."""

    def __init__(
        self, sample_rate: float = 12000.0, bearing: BearingGeometry = SKF_6205_DE, threshold: float = DEFAULT_THRESHOLD
    ):
        top = max(high for _, high in RESONANCE_BANDS_HZ)
        if not sample_rate > 2 * top:
            raise ValueError(
                f"sample_rate must exceed {2 * top} Hz so the resonance bands up to {top} Hz lie "
                f"below Nyquist, got {sample_rate}"
            )
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number, got {threshold}")
        self.sample_rate = float(sample_rate)
        self.bearing = bearing
        self.threshold = float(threshold)
        self.min_length = math.ceil(self.sample_rate / MAX_BIN_HZ)

    def contrasts(self, windows, shaft_hz, bearing=None) -> np.ndarray:
        """[N, 3] comb contrasts of each window's squared envelope, in COMB_LOCATIONS order (ball, inner,
        outer): about 0 for a flat envelope spectrum, 1 when all its energy lies on that location's comb.
        `bearing`: each window's geometry `[N, 4]` (n_balls, ball, pitch, angle), the rule's own when None."""
        x, shaft = self._checked(windows, shaft_hz)
        rows = None if bearing is None else torch.as_tensor(np.asarray(bearing, dtype=np.float64)).reshape(-1, 4)
        if rows is not None and len(rows) != len(x):
            raise ValueError(f"bearing has {len(rows)} rows for {len(x)} windows: give one geometry per window")
        chunk = max(1, CHUNK_SAMPLES // x.shape[1])
        scores = []
        for i in range(0, len(x), chunk):
            energy, _ = most_impulsive_band(x[i : i + chunk], self.sample_rate)
            geometry = self.bearing if rows is None else rows[i : i + chunk]
            scores.append(comb_contrast(energy, self.sample_rate, shaft[i : i + chunk], geometry)[0])
        return torch.cat(scores).numpy()

    def predict(self, windows, shaft_hz, bearing=None) -> np.ndarray:
        """[N] location names: the comb of largest contrast, or 'normal' below the threshold."""
        return self._decide(self.contrasts(windows, shaft_hz, bearing), self.threshold)

    def fit(self, windows, shaft_hz, labels: Sequence[str], bearing=None) -> EnvelopeRule:
        """Set the threshold to the one of THRESHOLD_GRID with the best accuracy on these windows, whose true
        locations are `labels`; of equally good thresholds the middle one, furthest from both kinds of error."""
        scores = self.contrasts(windows, shaft_hz, bearing)
        truth = np.asarray(labels, dtype=str)
        if truth.shape != (len(scores),):
            raise ValueError(f"labels must hold one location per window ({len(scores)}), got shape {truth.shape}")
        unknown = sorted(str(label) for label in set(truth) - set(FAULT_LOCATIONS))
        if unknown:
            raise ValueError(
                f"labels must be fault locations ({', '.join(FAULT_LOCATIONS)}), got {unknown}; "
                "pipeline.data.classes.fault_location maps class names to them"
            )
        accuracy = np.array([(self._decide(scores, t) == truth).mean() for t in THRESHOLD_GRID])
        best = THRESHOLD_GRID[accuracy == accuracy.max()]
        self.threshold = float(best[len(best) // 2])
        return self

    @staticmethod
    def _decide(scores: np.ndarray, threshold: float) -> np.ndarray:
        located = np.asarray(COMB_LOCATIONS)[scores.argmax(axis=1)]
        return np.where(scores.max(axis=1) >= threshold, located, "normal")

    def _checked(self, windows, shaft_hz) -> tuple[Tensor, Tensor]:
        """Windows as float32 [N, L] (the datasets' dtype; FFTs run several times faster than in float64) and
        shaft speeds [N], or a ValueError naming what is wrong."""
        x = torch.as_tensor(np.asarray(windows, dtype=np.float32))
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"windows must be a non-empty [N, L] array, got shape {tuple(x.shape)}")
        if x.shape[1] < self.min_length:
            raise ValueError(
                f"windows of {x.shape[1]} samples are too short: the envelope spectrum needs bins of at most "
                f"{MAX_BIN_HZ:g} Hz, i.e. at least {self.min_length} samples at {self.sample_rate:g} Hz"
            )
        if not torch.isfinite(x).all():
            raise ValueError("windows contain NaN or infinite samples")
        shaft = torch.as_tensor(np.asarray(shaft_hz, dtype=np.float64))
        if shaft.ndim == 0:
            shaft = shaft.expand(len(x))
        if shaft.shape != (len(x),):
            raise ValueError(
                f"shaft_hz must be one number or one per window ({len(x)}), got shape {tuple(shaft.shape)}"
            )
        bad = shaft[~((shaft > 0) & shaft.isfinite())]
        if len(bad):
            raise ValueError(f"shaft_hz must be positive and finite, got {sorted(set(bad.tolist()))}")
        return x, shaft
