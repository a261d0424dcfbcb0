"""The picture an analyst reads for one diagnosis (pipeline/readout/diagnosis_figure.py): the squared-envelope
spectrum of a simulated outer-race fault with the bearing's fault lines marked, beside the class probabilities,
written as self-contained HTML or as PNG."""

import numpy as np
import pytest

from pipeline.data.bearing import NSK_6203_FE, SKF_6205_DE, characteristic_frequencies
from pipeline.data.simulator import simulate_recording
from pipeline.readout.diagnosis_figure import (
    FAMILY_COLOURS,
    diagnosis_figure,
    diagnosis_view,
    fault_markers,
    squared_envelope_power,
    write_diagnosis_figure,
)

PROBABILITIES = {"normal": 0.02, "inner_014": 0.05, "outer_014": 0.9, "ball_014": 0.03}


@pytest.fixture(scope="module")
def outer_fault():
    """One second of a simulated outer-race fault on the CWRU drive-end bearing at 1 HP."""
    return simulate_recording("outer_014", load_hp=1, seed=0, duration_s=1.0)


def test_the_tallest_envelope_line_of_an_outer_race_fault_sits_on_bpfo(outer_fault):
    shaft_hz = outer_fault.params["shaft_hz"]
    view = diagnosis_view(outer_fault.signal, outer_fault.sample_rate, shaft_hz, SKF_6205_DE, PROBABILITIES)
    bpfo = next(m.hz for m in view.markers if m.label == "BPFO ×1")
    assert bpfo == pytest.approx(outer_fault.params["fault_hz"])
    assert view.freqs[np.argmax(view.power)] == pytest.approx(bpfo, rel=0.03)
    assert view.freqs[-1] <= 5 * characteristic_frequencies(SKF_6205_DE, shaft_hz)["bpfi"]


def test_the_spectrum_is_averaged_over_half_overlapping_windows():
    rng = np.random.default_rng(0)
    freqs, power = squared_envelope_power(rng.standard_normal(12000), 12000.0, window_s=0.5)
    assert freqs[1] == pytest.approx(2.0) and power.shape == freqs.shape == (3001,)
    short_freqs, _ = squared_envelope_power(rng.standard_normal(3000), 12000.0, window_s=0.5)
    assert short_freqs[1] == pytest.approx(4.0)  # shorter than a window: read whole, at coarser resolution
    with pytest.raises(ValueError, match="at least 64 samples"):
        squared_envelope_power(rng.standard_normal(63), 12000.0, window_s=0.5)


def test_the_markers_are_the_fault_frequencies_bearing_py_computes():
    shaft_hz = 29.5
    rates = characteristic_frequencies(SKF_6205_DE, shaft_hz)
    markers = {m.label: (m.family, m.hz) for m in fault_markers(SKF_6205_DE, shaft_hz)}
    assert markers["fr"] == ("shaft", shaft_hz)
    assert markers["BPFO ×3"] == ("BPFO", pytest.approx(3 * rates["bpfo"]))
    assert markers["BPFI ×2"] == ("BPFI", pytest.approx(2 * rates["bpfi"]))
    assert markers["BPFI ×2 − fr"] == ("BPFI", pytest.approx(2 * rates["bpfi"] - shaft_hz))
    assert markers["2×BSF ×1 + FTF"] == ("2×BSF", pytest.approx(2 * rates["bsf"] + rates["ftf"]))
    assert "BPFO ×1 − fr" not in markers  # an outer-race defect stays put: no load-zone sidebands
    assert len(markers) == 1 + 3 + 3 * 3 + 3 * 3


def test_a_bearing_preset_may_be_named():
    view = diagnosis_view(np.ones(6000), 12000.0, 30.0, "nsk_6203", PROBABILITIES)
    bpfo = characteristic_frequencies(NSK_6203_FE, 30.0)["bpfo"]
    assert next(m.hz for m in view.markers if m.label == "BPFO ×1") == pytest.approx(bpfo)
    with pytest.raises(ValueError, match="skf_6205, nsk_6203"):
        diagnosis_view(np.ones(6000), 12000.0, 30.0, "skf_6206", PROBABILITIES)


def test_the_plotly_figure_has_a_legend_entry_per_family_and_the_top_class_highlighted(outer_fault):
    shaft_hz = outer_fault.params["shaft_hz"]
    figure = diagnosis_figure(outer_fault.signal, outer_fault.sample_rate, shaft_hz, SKF_6205_DE, PROBABILITIES)
    names = [trace.name for trace in figure.data if trace.showlegend is not False]
    assert names == ["envelope spectrum", *FAMILY_COLOURS]
    bars = figure.data[-1]
    assert list(bars.y) == ["outer_014", "inner_014", "ball_014", "normal"]
    assert bars.marker.color[0] != bars.marker.color[1] == bars.marker.color[3]
    bpfi = next(trace for trace in figure.data if trace.name == "BPFI")
    assert f"BPFI ×2 − fr, {2 * characteristic_frequencies(SKF_6205_DE, shaft_hz)['bpfi'] - shaft_hz:.1f} Hz" in (
        bpfi.text
    )


def test_html_holds_plotly_js_inline_and_names_the_lines(outer_fault, tmp_path):
    shaft_hz = outer_fault.params["shaft_hz"]
    path = write_diagnosis_figure(
        outer_fault.signal, outer_fault.sample_rate, shaft_hz, SKF_6205_DE, PROBABILITIES, tmp_path / "outer.html"
    )
    html = path.read_text(encoding="utf-8")
    assert "plotly.js v" in html and "<script src=" not in html  # opens offline: nothing fetched
    bpfo = characteristic_frequencies(SKF_6205_DE, shaft_hz)["bpfo"]
    assert f"BPFO ×1, {bpfo:.1f} Hz" in html and "BPFI ×1 + fr" in html and "2×BSF ×2 − FTF" in html


def test_png_is_drawn_with_matplotlib(outer_fault, tmp_path):
    path = write_diagnosis_figure(
        outer_fault.signal,
        outer_fault.sample_rate,
        outer_fault.params["shaft_hz"],
        SKF_6205_DE,
        PROBABILITIES,
        tmp_path / "figures" / "outer.PNG",
        title="outer_014, seed 0",
    )
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000


def test_another_suffix_is_refused_naming_the_allowed_ones(tmp_path):
    with pytest.raises(ValueError, match=r"\.html, \.png"):
        write_diagnosis_figure(np.ones(6000), 12000.0, 30.0, SKF_6205_DE, PROBABILITIES, tmp_path / "outer.svg")
    assert not (tmp_path / "outer.svg").exists()
