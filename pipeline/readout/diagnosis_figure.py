"""The picture an analyst reads to check one bearing diagnosis: envelope spectrum, fault lines, class probabilities.

A model's class probabilities say what it concluded, not why; the squared-envelope spectrum says what the recording
holds. A local fault shows there as lines at its characteristic rate (BPFO, BPFI or 2×BSF of the bearing, at the
recording's shaft speed) and their harmonics and sidebands, so putting the spectrum, with every fault family's lines
marked, beside the probabilities lets an analyst see at a glance whether the recording bears the diagnosis out. The
spectrum comes from the project's one envelope implementation (`pipeline.dsp.envelope`) and is computed once, with
its markers, into a `DiagnosisView` that both renderers draw: plotly for an interactive `.html` (hover names each
line), matplotlib for a static `.png`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import plotly.graph_objects as go
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from plotly.subplots import make_subplots

from pipeline.data.bearing import BEARINGS, BearingGeometry, characteristic_frequencies
from pipeline.dsp.envelope import envelope_spectrum, most_impulsive_band

WINDOW_S = 0.5  # envelope windows: 2 Hz bins, so a line at BPFO (about 107 Hz at 30 Hz) is read to within 2 %
HARMONICS = 3  # lines marked per fault family
MIN_SAMPLES = 64  # below this an envelope spectrum has too few lines to mark anything
LIMIT_BPFI = 5.0  # the spectrum is drawn up to 5 × BPFI: every marked line and its neighbourhood
FAMILY_COLOURS = {"shaft": "#7f7f7f", "BPFO": "#d62728", "BPFI": "#1f77b4", "2×BSF": "#2ca02c"}
TOP_CLASS_COLOUR, OTHER_CLASS_COLOUR = "#ff7f0e", "#c7c7c7"
FORMATS = (".html", ".png")


class Marker(NamedTuple):
    """One marked line: its family (a key of FAMILY_COLOURS), its name ("BPFI ×2 − fr") and where it sits (Hz)."""

    family: str
    label: str
    hz: float


@dataclass(frozen=True)
class DiagnosisView:
    """What both renderers draw: the envelope spectrum up to its limit, the fault lines, the class probabilities."""

    freqs: np.ndarray  # Hz, from 0 to 5 × BPFI
    power: np.ndarray  # mean squared envelope-spectrum amplitude, unit-free (a fully modulated tone's line: 1)
    markers: list[Marker]
    probabilities: dict[str, float]


def squared_envelope_power(
    signal: np.ndarray, sample_rate: float, window_s: float = WINDOW_S
) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies (Hz) and the squared-envelope power spectrum of `signal`, averaged over half-overlapping windows.

    Each `window_s` window is demodulated in its most impulsive resonance band (`most_impulsive_band`) and its
    envelope spectrum (relative to the envelope's mean, Hann-tapered: `envelope_spectrum`) squared; the mean over
    windows, as in Welch's method, keeps the lines that repeat in every window and smooths the noise between them,
    so a long recording gives a readable spectrum. A recording shorter than one window is read whole (coarser lines).
    """
    samples = torch.as_tensor(np.asarray(signal, dtype=np.float64))  # float64: sums over long windows keep digits
    if samples.ndim != 1 or len(samples) < MIN_SAMPLES:
        raise ValueError(f"signal must be 1-D with at least {MIN_SAMPLES} samples, got {tuple(samples.shape)}")
    length = min(int(round(window_s * sample_rate)), len(samples))
    windows = samples.unfold(0, length, max(1, length // 2))
    energy, _ = most_impulsive_band(windows, sample_rate)
    power = (envelope_spectrum(energy) ** 2).mean(dim=0)
    return np.fft.rfftfreq(length, 1.0 / sample_rate), power.numpy()


def fault_markers(bearing: BearingGeometry, shaft_hz: float, harmonics: int = HARMONICS) -> list[Marker]:
    """The lines to mark: the shaft rate fr; BPFO ×1..n; BPFI ×1..n each with ±fr sidebands; 2×BSF ×1..n each with
    ±FTF sidebands, all at the rates `characteristic_frequencies` gives for `bearing` at `shaft_hz`.

    The ball family is marked at 2×BSF, not BSF: a ball defect strikes both races once per spin revolution, so its
    impacts repeat at twice the spin rate (`pipeline.data.bearing.fault_frequency`), and the load zone, which turns
    with the cage, modulates them at FTF. Inner-race strikes are modulated at fr, as the defect turns with the shaft
    through the load zone; an outer-race defect stays put, so BPFO has no sidebands.
    """
    rates = characteristic_frequencies(bearing, shaft_hz)
    families = (("BPFO", rates["bpfo"], None), ("BPFI", rates["bpfi"], ("fr", shaft_hz)))
    families += (("2×BSF", 2 * rates["bsf"], ("FTF", rates["ftf"])),)
    markers = [Marker("shaft", "fr", shaft_hz)]
    for family, rate, sideband in families:
        for h in range(1, harmonics + 1):
            markers.append(Marker(family, f"{family} ×{h}", h * rate))
            if sideband is not None:
                name, hz = sideband
                markers.append(Marker(family, f"{family} ×{h} − {name}", h * rate - hz))
                markers.append(Marker(family, f"{family} ×{h} + {name}", h * rate + hz))
    return markers


def diagnosis_view(
    signal: np.ndarray,
    sample_rate: float,
    shaft_hz: float,
    bearing: BearingGeometry | str,
    probabilities: dict[str, float],
) -> DiagnosisView:
    """The spectrum up to 5 × BPFI, the markers and the probabilities of one diagnosis; `bearing` may name a preset
    of BEARINGS."""
    if isinstance(bearing, str):
        if bearing not in BEARINGS:
            raise ValueError(f"unknown bearing {bearing!r}; expected a BearingGeometry or one of {', '.join(BEARINGS)}")
        bearing = BEARINGS[bearing]
    if not probabilities:
        raise ValueError("probabilities is empty: give the model's probability of each class")
    freqs, power = squared_envelope_power(signal, sample_rate)
    limit = LIMIT_BPFI * characteristic_frequencies(bearing, shaft_hz)["bpfi"]
    shown = freqs <= limit
    markers = [m for m in fault_markers(bearing, shaft_hz) if m.hz <= limit]
    return DiagnosisView(freqs[shown], power[shown], markers, {k: float(v) for k, v in probabilities.items()})


def diagnosis_figure(
    signal: np.ndarray,
    sample_rate: float,
    shaft_hz: float,
    bearing: BearingGeometry | str,
    probabilities: dict[str, float],
    title: str = "Bearing diagnosis",
) -> go.Figure:
    """Two panels side by side: the squared-envelope spectrum with the fault lines marked (hover names each line),
    and the model's class probabilities as horizontal bars, the top class highlighted.

    The spectrum's y axis is linear power: what the analyst asks is whether the tallest lines sit on one family's
    markers, and a linear scale leaves those lines standing far above the floor, where dB would lift the floor's
    noise to look as busy as the lines.
    """
    return _plotly_figure(diagnosis_view(signal, sample_rate, shaft_hz, bearing, probabilities), title)


def write_diagnosis_figure(
    signal: np.ndarray,
    sample_rate: float,
    shaft_hz: float,
    bearing: BearingGeometry | str,
    probabilities: dict[str, float],
    path: str | Path,
    title: str = "Bearing diagnosis",
) -> Path:
    """Write the diagnosis figure to `path`: `.html` is the plotly figure with plotly.js inline, so it opens offline;
    `.png` is the same view drawn with matplotlib (Agg, no browser). Returns the path written."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"{path}: write one of {', '.join(FORMATS)}")
    view = diagnosis_view(signal, sample_rate, shaft_hz, bearing, probabilities)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".html":
        _plotly_figure(view, title).write_html(path, include_plotlyjs=True)
    else:
        _matplotlib_figure(view, title).savefig(path, dpi=100)
    return path


def _ranked(probabilities: dict[str, float]) -> tuple[list[str], list[float], list[str]]:
    """Class names and probabilities, most probable first, and each bar's colour (the top class highlighted)."""
    ranked = sorted(probabilities.items(), key=lambda item: item[1], reverse=True)
    colours = [TOP_CLASS_COLOUR] + [OTHER_CLASS_COLOUR] * (len(ranked) - 1)
    return [name for name, _ in ranked], [p for _, p in ranked], colours


def _plotly_figure(view: DiagnosisView, title: str) -> go.Figure:
    figure = make_subplots(
        rows=1, cols=2, column_widths=[0.72, 0.28], subplot_titles=("squared-envelope spectrum", "class probabilities")
    )
    spectrum = go.Scatter(
        x=view.freqs,
        y=view.power,
        mode="lines",
        name="envelope spectrum",
        line={"color": "black"},
        hovertemplate="%{x:.1f} Hz<br>%{y:.3g}<extra></extra>",
    )
    top = 1.05 * float(view.power.max())
    for trace in [spectrum, *_plotly_marker_lines(view.markers, top)]:
        figure.add_trace(trace, row=1, col=1)
    names, probs, colours = _ranked(view.probabilities)
    bars = go.Bar(
        x=probs,
        y=names,
        orientation="h",
        marker_color=colours,
        showlegend=False,
        text=[f"{p:.2f}" for p in probs],
        hovertemplate="%{y}: %{x:.3f}<extra></extra>",
    )
    figure.add_trace(bars, row=1, col=2)
    figure.update_xaxes(title_text="frequency (Hz)", range=[0, float(view.freqs[-1])], row=1, col=1)
    figure.update_yaxes(title_text="power (relative to the envelope's mean)", range=[0, top], row=1, col=1)
    figure.update_xaxes(title_text="probability", range=[0, 1], row=1, col=2)
    figure.update_yaxes(autorange="reversed", row=1, col=2)
    figure.update_layout(title=title, width=1300, height=520, hovermode="closest")
    return figure


def _plotly_marker_lines(markers: list[Marker], top: float) -> list[go.Scatter]:
    """One dashed trace per family (one legend entry), its vertical lines from 0 to `top` separated by gaps."""
    heights = np.linspace(0, top, 5)  # points along each line, so hovering anywhere on it names it
    traces = []
    for family, colour in FAMILY_COLOURS.items():
        lines = [m for m in markers if m.family == family]
        if lines:
            traces.append(
                go.Scatter(
                    x=[v for m in lines for v in [m.hz] * len(heights) + [None]],
                    y=[v for _ in lines for v in [*heights, None]],
                    text=[v for m in lines for v in [f"{m.label}, {m.hz:.1f} Hz"] * len(heights) + [None]],
                    mode="lines",
                    name=family,
                    line={"color": colour, "dash": "dash"},
                    hovertemplate="%{text}<extra></extra>",
                )
            )
    return traces


def _matplotlib_figure(view: DiagnosisView, title: str) -> Figure:
    figure = Figure(figsize=(13, 5.2), layout="constrained")
    FigureCanvasAgg(figure)
    spectrum_ax, probs_ax = figure.subplots(1, 2, width_ratios=[0.72, 0.28])
    spectrum_ax.plot(view.freqs, view.power, color="black", linewidth=0.8, label="envelope spectrum")
    for family, colour in FAMILY_COLOURS.items():
        for k, marker in enumerate(m for m in view.markers if m.family == family):
            spectrum_ax.axvline(
                marker.hz, color=colour, linestyle="--", linewidth=0.9, alpha=0.8, label=family if k == 0 else None
            )
    spectrum_ax.set(xlim=(0, view.freqs[-1]), ylim=(0, 1.05 * view.power.max()), title="squared-envelope spectrum")
    spectrum_ax.set(xlabel="frequency (Hz)", ylabel="power (relative to the envelope's mean)")
    spectrum_ax.legend(fontsize="small", loc="upper right")
    names, probs, colours = _ranked(view.probabilities)
    probs_ax.barh(names, probs, color=colours)
    for row, p in enumerate(probs):
        probs_ax.text(p + 0.01, row, f"{p:.2f}", va="center", fontsize="small")
    probs_ax.set(xlim=(0, 1.12), xticks=np.linspace(0, 1, 6), xlabel="probability", title="class probabilities")
    probs_ax.invert_yaxis()
    figure.suptitle(title)
    return figure
