"""Plotly figures as static images (PNG, SVG, PDF, ...) drawn by matplotlib, so no browser is needed.

Plotly's own static export (kaleido) drives a headless Chrome that `pip install` cannot bring. Each figure stays
defined once, in plotly: `write_figure` reads its traces and layout and redraws them on matplotlib's Agg canvas at
plotly's pixel sizes, colours and subplot domains. It draws the trace types the project's figures use (scatter,
bar, heatmap); any other raises ValueError before a file is written, and `.html` still works for every figure.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Union

import numpy as np
import plotly.graph_objects as go
from matplotlib import rc_context, rcParams
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap, to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox, BboxTransformTo, TransformedBbox, blended_transform_factory, offset_copy

DRAWN_TRACES = ("scatter", "bar", "heatmap")
STATIC_FORMATS = tuple(sorted(FigureCanvasAgg.get_supported_filetypes()))
DPI = 100  # one plotly pixel is one matplotlib pixel
PT = 72 / DPI  # points per plotly pixel: plotly gives font sizes, line widths and marker sizes in pixels
RASTER_SCALE = 2  # PNG/JPG... at twice plotly's pixel size, for sharp text
MARGIN = {"l": 80, "r": 80, "t": 100, "b": 80}  # plotly's default margins (pixels)
COLORBAR = (15, 80)  # colour bar thickness, and the room it takes with its tick labels and title (pixels)
DASHES = {
    "solid": "-",
    "dot": ":",
    "dash": "--",
    "longdash": (0, (8, 4)),
    "dashdot": "-.",
    "longdashdot": (0, (8, 4, 2, 4)),
}
ANCHORS = {"left": "left", "center": "center", "right": "right", "top": "top", "middle": "center", "bottom": "bottom"}


def write_figure(figure: go.Figure, path: Union[str, Path]) -> Path:
    """Write `figure` to `path`: `.html` is plotly's interactive page; any suffix matplotlib can write (png,
    svg, pdf, jpg, ...) is a static image drawn by matplotlib. Creates the parent directory; returns the path."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix != "html" and suffix not in STATIC_FORMATS:
        raise ValueError(
            f"cannot save a figure as {path.suffix or 'a file without suffix'!r} ({str(path)!r}): "
            f"use .html or one of {', '.join('.' + s for s in STATIC_FORMATS)}"
        )
    with rc_context(_style(figure)):
        drawing = None if suffix == "html" else to_matplotlib(figure)  # refuses what it cannot draw, before writing
        path.parent.mkdir(parents=True, exist_ok=True)
        if drawing is None:
            figure.write_html(path)
        else:
            drawing.savefig(path, format=suffix, dpi=DPI * RASTER_SCALE, facecolor=drawing.get_facecolor())
    return path


def to_matplotlib(figure: go.Figure) -> Figure:
    """The plotly figure redrawn as a matplotlib Figure (Agg canvas, no display); ValueError for what it
    cannot draw (a trace type other than scatter, bar and heatmap, stacked bars, a shape that is not a line)."""
    _check_drawable(figure)
    with rc_context(_style(figure)):  # write_figure saves inside it too: ticks are laid out when drawn
        return _Drawing(go.Figure(_decoded(figure.to_dict()))).figure


def _check_drawable(figure: go.Figure) -> None:
    """ValueError naming the first thing `_Drawing` cannot draw."""
    problems = [f"a {t.type!r} trace ({type(t).__name__})" for t in figure.data if t.type not in DRAWN_TRACES]
    problems += [f"a {s.type or 'rect'!r} shape" for s in figure.layout.shapes if (s.type or "rect") != "line"]
    problems += [f"barmode={figure.layout.barmode!r}"] if figure.layout.barmode in ("stack", "relative") else []
    if problems:
        raise ValueError(
            f"cannot draw {problems[0]} as a static image (only {', '.join(DRAWN_TRACES)} traces, line "
            f"shapes, grouped or overlaid bars). Save the figure as .html instead: the interactive "
            f"plotly view still works"
        )


def _style(figure: go.Figure) -> dict:
    """matplotlib settings for plotly's look: its font size and colour; SVG text kept as text."""
    font = figure.layout.template.layout.font
    color = figure.layout.font.color or font.color or "#444"
    return {
        "font.size": (figure.layout.font.size or font.size or 12) * PT,
        "text.color": color,
        "axes.labelcolor": color,
        "xtick.color": color,
        "ytick.color": color,
        "svg.fonttype": "none",
    }


class _Drawing:
    """One plotly figure drawn on a matplotlib Figure: one Axes per (x axis, y axis) pair the traces use,
    placed by the axes' `domain`s inside plotly's plot area (the figure less its margins and what sits right of
    the plot: colour bars, then the legend)."""

    def __init__(self, source: go.Figure):
        self.source, self.layout, self.template = source, source.layout, source.layout.template.layout
        width, height = self.layout.width or 700, self.layout.height or 450  # plotly's default image size
        self.figure = Figure((width / DPI, height / DPI), DPI, facecolor=_color(self._setting("paper_bgcolor", "#fff")))
        FigureCanvasAgg(self.figure)
        self.axes: dict[tuple[str, str], object] = {}  # (xref, yref), e.g. ("x2", "y2") -> Axes
        self.colorbars: list[tuple[object, object, object]] = []  # (mappable, plotly colorbar, Axes)
        self.legend_entries: list[tuple[object, str]] = []  # (matplotlib handle, trace name), in trace order
        for index, trace in enumerate(source.data):
            if trace.visible not in (False, "legendonly"):
                getattr(self, f"_draw_{trace.type}")(trace, index)
        if not self.axes:
            self._subplot(("x", "y"))  # an empty figure still shows its titles
        self._link_axes()
        for key, ax in self.axes.items():
            self._configure_axes(ax, key)
        self._place()
        for annotation in self.layout.annotations:
            self._annotate(annotation)
        for shape in self.layout.shapes:
            self._draw_line_shape(shape)
        self._title()

    def _draw_scatter(self, trace: go.Scatter, index: int) -> None:
        """Lines and/or markers (`mode`) with error bars; markers coloured by value (`marker.color` numbers on a
        colour scale, as Optuna's views do) are a matplotlib scatter."""
        ax, marker = self._subplot(_key(trace)), trace.marker
        y = _values(trace.y)
        x = _values(trace.x) if trace.x is not None else np.arange(len(y))
        mode = trace.mode or ("lines+markers" if len(y) < 20 else "lines")  # plotly's default
        shaded = "markers" in mode and _is_numeric(marker.color)
        color = _color(
            trace.line.color or (marker.color if isinstance(marker.color, str) else None) or self._default_color(index)
        )
        size = (marker.size if np.isscalar(marker.size) else 6) * PT  # one size for all markers
        handle = ax.errorbar(
            x,
            y,
            yerr=_error_bars(trace.error_y, y),
            ecolor=_color(trace.error_y.color) or color,
            color=color,
            linestyle=DASHES[trace.line.dash or "solid"] if "lines" in mode else "None",
            linewidth=_first(trace.line.width, 2) * PT,
            alpha=trace.opacity,
            marker="o" if "markers" in mode and not shaded else "None",
            markersize=size,
        )
        if shaded:
            handle = ax.scatter(
                x,
                y,
                c=np.asarray(marker.color, dtype=float),
                s=size**2,
                alpha=trace.opacity,
                cmap=self._colormap(marker.colorscale, marker.reversescale),
                vmin=marker.cmin,
                vmax=marker.cmax,
                edgecolors=_color(marker.line.color) or "face",
                linewidths=(marker.line.width or 0) * PT,
                zorder=2,
            )
            if marker.showscale:
                self.colorbars.append((handle, marker.colorbar, ax))
        self._add_to_legend(handle, trace, index)

    def _draw_bar(self, trace: go.Bar, index: int) -> None:
        """Vertical or horizontal (`orientation="h"`) bars; bars of several traces at one position sit side by
        side (plotly's default barmode "group") or over one another ("overlay")."""
        key, horizontal = _key(trace), trace.orientation == "h"
        ax = self._subplot(key)
        places, lengths = (trace.y, trace.x) if horizontal else (trace.x, trace.y)
        lengths = np.asarray(lengths, dtype=float)
        axis = ax.yaxis if horizontal else ax.xaxis
        places = np.arange(len(lengths)) if places is None else _values(places)
        axis.update_units(places)  # category labels become positions 0, 1, ... as matplotlib does it
        positions = np.asarray(axis.convert_units(places), dtype=float)
        group = (
            [index]
            if self.layout.barmode == "overlay"
            else [  # the bar traces sharing these positions
                i
                for i, other in enumerate(self.source.data)
                if other.type == "bar"
                and _key(other) == key
                and other.visible not in (False, "legendonly")
                and (other.orientation == "h") == horizontal
            ]
        )
        distinct = np.unique(positions[np.isfinite(positions)])
        spacing = np.diff(distinct).min() if len(distinct) > 1 else 1.0
        full_width = _first(trace.width, (1 - _first(self.layout.bargap, 0.2)) * spacing)  # plotly's default gap
        width = np.asarray(full_width, dtype=float) / len(group)
        offset = (group.index(index) - (len(group) - 1) / 2) * width
        color = _first(trace.marker.color, self._default_color(index))  # one colour, or one per bar
        error = trace.error_x if horizontal else trace.error_y
        bars = (ax.barh if horizontal else ax.bar)(
            positions + offset,
            lengths,
            width,
            alpha=trace.opacity,
            color=_color(color) if isinstance(color, str) else [_color(c) for c in color],
            ecolor=_color(error.color or "#2a3f5f"),
            **{"xerr" if horizontal else "yerr": _error_bars(error, lengths)},
        )
        self._add_to_legend(bars, trace, index)
        if trace.text is not None and trace.textposition != "none":
            text = [trace.text] * len(lengths) if isinstance(trace.text, str) else trace.text
            ax.bar_label(
                bars,
                labels=[_plain(str(t)) for t in text],
                padding=3,
                label_type="edge" if trace.textposition == "outside" else "center",
            )

    def _draw_heatmap(self, trace: go.Heatmap, index: int) -> None:
        """Cells of `z` (row 0 at the bottom, as in plotly), `x`/`y` as the column/row labels; `texttemplate`
        writes each cell's text in black or white, whichever reads on the cell's colour."""
        ax = self._subplot(_key(trace))
        z = np.asarray(trace.z, dtype=float)
        image = ax.imshow(
            z,
            cmap=self._colormap(trace.colorscale, trace.reversescale),
            vmin=trace.zmin,
            vmax=trace.zmax,
            origin="lower",
            aspect="auto",
            interpolation="nearest",
        )
        ax.grid(False)
        columns, rows = list(_first(trace.x, range(z.shape[1]))), list(_first(trace.y, range(z.shape[0])))
        ax.set_xticks(range(len(columns)), [str(c) for c in columns])
        ax.set_yticks(range(len(rows)), [str(r) for r in rows])
        if trace.showscale is not False:
            self.colorbars.append((image, trace.colorbar, ax))
        if not trace.texttemplate:
            return
        size = (trace.textfont.size or self.layout.font.size or 12) * PT
        for row, column in zip(*np.nonzero(np.isfinite(z))):  # an empty cell has no text
            fields = {
                "z": trace.z[row][column],
                "x": columns[column],
                "y": rows[row],
                "text": trace.text[row][column] if trace.text is not None else "",
            }
            red, green, blue, _ = image.cmap(image.norm(z[row, column]))
            ax.text(
                column,
                row,
                _fill(trace.texttemplate, fields),
                ha="center",
                va="center",
                fontsize=size,
                color="black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white",
            )

    def _subplot(self, key: tuple[str, str]):
        if key not in self.axes:
            ax = self.figure.add_axes((0, 0, 1, 1))  # placed by _place once the plot area is known
            ax.set_facecolor(_color(self._setting("plot_bgcolor", "white")))
            ax.grid(True, color=_color(self.template.xaxis.gridcolor or "#e5e5e5"))
            ax.set_axisbelow(True)
            ax.tick_params(length=0)
            ax.spines[:].set_visible(False)
            self.axes[key] = ax
        return self.axes[key]

    def _axis_layout(self, ref: str):
        """The layout of axis "x", "x2", "y3"... (a default one when the layout does not name it)."""
        name = f"{ref[0]}axis{ref[1:]}"
        return self.layout[name] if name in self.layout else go.layout.XAxis()  # x and y axes: same attributes

    def _link_axes(self) -> None:
        """Axes whose layout `matches` another axis share its range (make_subplots' shared_xaxes)."""
        by_ref = {ref: ax for key, ax in reversed(self.axes.items()) for ref in key}  # the first Axes using it
        for (xref, yref), ax in self.axes.items():
            for ref, share in ((xref, ax.sharex), (yref, ax.sharey)):
                target = by_ref.get(self._axis_layout(ref).matches)
                if target is not None and target is not ax:
                    share(target)

    def _configure_axes(self, ax, key: tuple[str, str]) -> None:
        for ref, axis in zip(key, (ax.xaxis, ax.yaxis)):
            spec = self._axis_layout(ref)
            set_scale, set_limits = (ax.set_xscale, ax.set_xlim) if axis is ax.xaxis else (ax.set_yscale, ax.set_ylim)
            if spec.title.text:
                axis.set_label_text(_plain(spec.title.text))
            if spec.type == "log":
                set_scale("log")
            if spec.range is not None and None not in spec.range:
                set_limits(*(10.0 ** np.asarray(spec.range) if spec.type == "log" else spec.range))
            if spec.autorange == "reversed" and not axis.get_inverted():
                axis.set_inverted(True)
            if spec.tickvals is not None:
                axis.set_ticks(spec.tickvals, labels=[_plain(str(t)) for t in spec.ticktext or spec.tickvals])
            if spec.showticklabels is False:
                axis.set_tick_params(label1On=False)
            if spec.showgrid is False:
                axis.grid(False)
            if spec.visible is False:
                axis.set_visible(False)

    def _place(self) -> None:
        """Size the plot area as plotly's automargin does (the right margin grows to hold colour bars and
        legend, the left and bottom ones to hold tick labels and axis titles), put each Axes at its domain in
        it, and the colour bars and legend right of it."""
        width = self.figure.bbox.width
        margin = {side: _first(self.layout.margin[side], pixels) for side, pixels in MARGIN.items()}
        renderer = self.figure.canvas.get_renderer()
        legend = self._legend()
        legend_width = legend.get_window_extent(renderer).width if legend else 0
        margin["r"] = max(margin["r"], 10 + COLORBAR[1] * len(self.colorbars) + legend_width + 10)
        self._arrange(margin)
        extents = [ax.get_tightbbox(renderer) for ax in self.axes.values()]
        margin["l"] += max(0.0, 4 - min(extent.x0 for extent in extents))
        margin["b"] += max(0.0, 4 - min(extent.y0 for extent in extents))
        box = self._arrange(margin)
        for slot, (mappable, spec, ax) in enumerate(self.colorbars):
            place = ax.get_position()
            cax = self.figure.add_axes(
                (box.x1 + (10 + slot * COLORBAR[1]) / width, place.y0, COLORBAR[0] / width, place.height)
            )
            self.figure.colorbar(mappable, cax=cax, label=_plain(spec.title.text or "")).outline.set_visible(False)
        if legend:
            legend.set_bbox_to_anchor(
                (box.x1 + (10 + COLORBAR[1] * len(self.colorbars)) / width, box.y1), transform=self.figure.transFigure
            )

    def _arrange(self, margin: dict) -> Bbox:
        """Put each Axes at its x and y domains in the plot area left by `margin` (pixels); returns that area."""
        width, height = self.figure.bbox.width, self.figure.bbox.height
        box = Bbox.from_extents(
            margin["l"] / width, margin["b"] / height, 1 - margin["r"] / width, 1 - margin["t"] / height
        )
        self.paper = BboxTransformTo(TransformedBbox(box, self.figure.transFigure))  # plotly's "paper" coordinates
        for (xref, yref), ax in self.axes.items():
            (x0, x1), (y0, y1) = self._axis_layout(xref).domain or (0, 1), self._axis_layout(yref).domain or (0, 1)
            ax.set_position(
                (box.x0 + x0 * box.width, box.y0 + y0 * box.height, (x1 - x0) * box.width, (y1 - y0) * box.height)
            )
        return box

    def _legend(self):
        """One legend for all subplots, shown as plotly does: two or more entries, or `showlegend=True`."""
        entries = self.legend_entries
        if entries and _first(self.layout.showlegend, len(entries) > 1):
            return self.figure.legend(*zip(*entries), loc="upper left", frameon=False, borderaxespad=0)
        return None

    def _frame(self, ref: str):
        """The matplotlib transform of one plotly coordinate reference: "paper" (the plot area, 0..1),
        "container" (the whole figure), "x2" (that axis' data) or "x2 domain" (that axis' extent)."""
        if ref in ("paper", "container"):
            return self.paper if ref == "paper" else self.figure.transFigure
        ax = self._axes_of(ref.split()[0])
        return ax.transAxes if ref.endswith("domain") else ax.transData

    def _axes_of(self, ref: str):
        for key, ax in self.axes.items():
            if ref in key:
                return ax
        raise ValueError(f"the figure refers to axis {ref!r}, which no trace uses: cannot draw it as a static image")

    def _annotate(self, note) -> None:
        """A layout annotation as text (subplot titles are annotations); arrows are not drawn."""
        at = blended_transform_factory(self._frame(note.xref or "x"), self._frame(note.yref or "y"))
        self.figure.text(
            note.x or 0,
            note.y or 0,
            _plain(note.text or ""),
            color=_color(note.font.color),
            transform=offset_copy(at, self.figure, note.xshift or 0, note.yshift or 0, units="dots"),
            ha=ANCHORS.get(note.xanchor, "center"),
            va=ANCHORS.get(note.yanchor, "center"),
            fontsize=(note.font.size or self.layout.font.size or 12) * PT,
        )

    def _draw_line_shape(self, shape) -> None:
        """A layout line; one in data coordinates belongs to its Axes (clipped, and below the traces when
        `layer="below"`), one in paper coordinates to the figure."""
        xref, yref = shape.xref or "x", shape.yref or "y"
        line = Line2D(
            [shape.x0, shape.x1],
            [shape.y0, shape.y1],
            color=_color(shape.line.color or "#444"),
            linewidth=_first(shape.line.width, 2) * PT,
            linestyle=DASHES[shape.line.dash or "solid"],
            zorder=1 if shape.layer == "below" else 3,
            transform=blended_transform_factory(self._frame(xref), self._frame(yref)),
        )
        (self.figure if xref == "paper" else self._axes_of(xref)).add_artist(line)

    def _title(self) -> None:
        """The figure title; by default left-aligned in the middle of the top margin, as in plotly's template."""
        title = self.layout.title
        if not title.text:
            return
        x = _first(title.x, self.template.title.x, 0.5)
        middle_of_top_margin = 1 - _first(self.layout.margin.t, MARGIN["t"]) / 2 / self.figure.bbox.height
        at = blended_transform_factory(self._frame(title.xref or "container"), self._frame(title.yref or "container"))
        self.figure.text(
            x,
            title.y if isinstance(title.y, (int, float)) else middle_of_top_margin,
            _plain(title.text),
            transform=at,
            va=ANCHORS.get(title.yanchor, "baseline"),
            ha=ANCHORS.get(title.xanchor) or ("left" if x < 1 / 3 else "right" if x > 2 / 3 else "center"),
            fontsize=(title.font.size or self.template.title.font.size or 17) * PT,
        )

    def _setting(self, name: str, default):
        """A layout setting, else the template's, else `default`."""
        return _first(self.layout[name], self.template[name], default)

    def _default_color(self, index: int):
        colorway = self._setting("colorway", None) or [c["color"] for c in rcParams["axes.prop_cycle"]]
        return colorway[index % len(colorway)]

    def _colormap(self, scale, reverse) -> LinearSegmentedColormap:
        """A plotly colour scale ([[0, colour], ..., [1, colour]]; the template's sequential one by default)."""
        scale = (
            scale or self.template.colorscale.sequential or ((0, "#440154"), (0.5, "#21918c"), (1, "#fde725"))
        )  # viridis, when the figure has no template
        colormap = LinearSegmentedColormap.from_list("plotly", [(position, _color(c)) for position, c in scale])
        return colormap.reversed() if reverse else colormap

    def _add_to_legend(self, handle, trace, index: int) -> None:
        if trace.showlegend is not False:  # plotly names an unnamed trace "trace <index>"
            self.legend_entries.append((handle, _plain(_first(trace.name, f"trace {index}"))))


def _decoded(value):
    """Plotly JSON keeps numeric arrays as base64 "typed arrays" ({"dtype", "bdata", "shape"}), and a figure
    read back from JSON still holds them: numpy arrays again."""
    if isinstance(value, dict) and "bdata" in value and "dtype" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return array.reshape([int(n) for n in value.get("shape", str(array.size)).split(",")])
    if isinstance(value, dict):
        return {key: _decoded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_decoded(item) for item in value]
    return value


def _first(*values):
    """The first value that is set (not None): plotly leaves unset attributes None."""
    return next((value for value in values if value is not None), None)


def _key(trace) -> tuple[str, str]:
    return trace.xaxis or "x", trace.yaxis or "y"


def _error_bars(error, values) -> np.ndarray | None:
    """Plotly error bars as matplotlib's [minus, plus] rows (None when there are none): "data" arrays, or a
    "constant", "percent" or "sqrt" of each value; symmetric unless a minus side is given."""
    if not _first(error.visible, error.array is not None or error.value is not None):
        return None
    size = np.abs(np.asarray(values, dtype=float))
    kind = error.type or ("data" if error.array is not None else "percent")

    def amount(value, array):
        return {
            "data": np.asarray(_first(array, np.zeros_like(size)), dtype=float),
            "sqrt": np.sqrt(size),
            "constant": np.full_like(size, _first(value, 10)),
            "percent": size * _first(value, 10) / 100,
        }[kind]

    plus = amount(error.value, error.array)
    symmetric = _first(error.symmetric, error.arrayminus is None and error.valueminus is None)
    return np.vstack([plus if symmetric else amount(error.valueminus, error.arrayminus), plus])


def _values(values):
    """Trace coordinates as floats (None -> NaN), or as category labels when they are not numbers."""
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return [str(v) for v in values]


def _is_numeric(values) -> bool:
    """True for an array of numbers (a per-point value to colour by), False for colour names or one colour."""
    return not isinstance(values, str) and values is not None and np.issubdtype(np.asarray(values).dtype, np.number)


def _color(color):
    """A plotly colour ("rgb(1, 2, 3)", "rgba(...)", "#hex" or a CSS name) as matplotlib takes it."""
    if isinstance(color, str) and color.startswith("rgb"):
        red, green, blue, *alpha = (float(v) for v in re.findall(r"[\d.]+", color))
        return red / 255, green / 255, blue / 255, *alpha
    return to_rgba(color.lower()) if isinstance(color, str) else color


def _plain(text: str) -> str:
    """Plotly's HTML-ish text (<br>, <b>, <sup>...) as plain text with line breaks."""
    return re.sub(r"<[^>]+>", "", re.sub(r"<br\s*/?>", "\n", text, flags=re.IGNORECASE))


def _fill(template: str, fields: dict) -> str:
    """A plotly text template ("%{z}", "%{z:.2f}", "%{y}: %{text}") filled in; plotly's d3 number formats
    such as ".2f", ".1%" and ",d" are Python format specs too."""
    return _plain(re.sub(r"%\{(\w+)(?::([^}]*))?\}", lambda m: format(fields[m[1]], m[2] or ""), template))
