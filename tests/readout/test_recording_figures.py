"""What evaluate logs as evidence: the diagnosis figure of a few test recordings per class, each drawn from its
own windows at its own speed and bearing, beside the mean of its windows' probabilities."""

import numpy as np
import pytest

from pipeline.data.bearing import SKF_6205_DE
from pipeline.data.dataset import BearingWindows
from pipeline.readout.recording_figures import recording_figures

WINDOW = 256


def test_a_few_recordings_per_class_each_get_their_figure():
    recordings = np.repeat([3, 4, 5, 8], 6)  # four recordings of six windows: 3 and 4 normal, 5 and 8 outer
    labels = np.repeat([0, 0, 1, 1], 6)
    rng = np.random.default_rng(0)
    test = BearingWindows(
        rng.standard_normal((24, WINDOW)).astype(np.float32),
        labels,
        recording_ids=recordings,
        shaft_hz=np.full(24, 29.95, np.float32),
        bearing=np.tile(np.array(list(vars(SKF_6205_DE).values()), np.float32), (24, 1)),
    )
    probs = np.tile([0.8, 0.2], (24, 1))

    figures = recording_figures(test, probs, ["normal", "outer"], per_class=1, sample_rate=12000.0, hop=WINDOW // 2)

    assert sorted(figures) == ["normal-recording-3", "outer-recording-5"]
    spectrum, bars = figures["outer-recording-5"].data[0], figures["outer-recording-5"].data[-1]
    assert spectrum.x[1] == pytest.approx(12000 / (3 * WINDOW))  # every other window of six: 3 x 256 samples, whole
    assert list(bars.x) == pytest.approx([0.2, 0.8]) or list(bars.x) == pytest.approx([0.8, 0.2])
    assert "test recording 5 (outer)" in figures["outer-recording-5"].layout.title.text
