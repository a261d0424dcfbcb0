"""notebooks/simulator_vs_real.ipynb runs on the real CWRU recordings at its small size and compares like with like:
a row per class in its tables, finite numbers, and figures holding both the real and the simulated recordings."""

import math
import re

import pytest

from pipeline.data.classes import CLASS_NAMES
from tests.test_notebooks import PLOTLY, REPO, notebook_outputs, values

pytestmark = pytest.mark.slow  # a notebook, on the real recordings

NOTEBOOK = REPO / "notebooks" / "simulator_vs_real.ipynb"
TITLES = [
    "RMS (g), kurtosis and crest factor per class, one point per recording",
    "Where the power sits: band shares per class (mean over loads)",
    "Power spectrum (g²/Hz) per class: real (solid) and simulated (dotted), one line per load",
    "Strike level vs fault size (median envelope peak per recording)",
    "Squared-envelope spectra at 1 HP with the class's fault lines (Hz; peak = 1)",
]


def tables(outputs) -> list[str]:
    """The text of every pandas table the notebook displayed."""
    return [o["data"]["text/plain"] for o in outputs if "text/html" in o.get("data", {})]


def test_notebook_sets_simulated_beside_real_recordings(cwru_dir, monkeypatch):
    monkeypatch.setenv("AVPINO_CWRU_DIR", str(cwru_dir))
    monkeypatch.setenv("AVPINO_NOTEBOOK_SMALL", "1")
    outputs = notebook_outputs(NOTEBOOK)

    figures = [o["data"][PLOTLY] for o in outputs if PLOTLY in o.get("data", {})]
    assert [f["layout"]["title"]["text"] for f in figures] == TITLES
    strip, bands, spectra, strikes, envelopes = figures
    assert {trace["name"] for trace in strip["data"]} == {"real", "simulated"}
    for trace in bands["data"] + strikes["data"]:
        assert all(math.isfinite(v) and v >= 0 for v in values(trace["y"])), trace["name"]
    shares = {}
    for trace in bands["data"]:  # one trace per band and source: the shares of each class add up to 1
        for cls, share in zip(trace["x"], values(trace["y"])):
            shares[(trace["xaxis"], cls)] = shares.get((trace["xaxis"], cls), 0.0) + share
    assert len(shares) == 2 * len(CLASS_NAMES) and all(abs(total - 1) < 1e-6 for total in shares.values()), shares
    assert {trace["name"] for trace in spectra["data"]} == {
        f"{s}, {load} HP" for s in ("real", "simulated") for load in range(4)
    }
    assert len(envelopes["data"]) == 2 * (len(CLASS_NAMES) - 1)
    assert len(envelopes["layout"]["shapes"]) > 2 * 9 * 3  # the fault lines drawn on every spectrum

    counts, per_class, per_recording, strike_table, line_table = tables(outputs)
    assert re.search(r"real\s+37\b", counts)  # every real recording read
    for table in (per_class, line_table):
        rows = [line.split()[0] for line in table.splitlines()[3:]]  # two header lines and the index name
        assert rows == [c for c in CLASS_NAMES if table is per_class or c != "normal"], table
    for table in (per_class, per_recording, strike_table, line_table):
        assert not re.search(r"\bNaN\b|\binf\b", table), table
