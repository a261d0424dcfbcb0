"""The simulator: deterministic, exactly trapezoidal, and physically recognisable (rates, SNR, classes)."""

import math
import time

import numpy as np
import pytest
from scipy.signal import butter, hilbert, sosfiltfilt

from pipeline.data.bearing import SKF_6205_DE, characteristic_frequencies
from pipeline.data.simulator import simulate_recording

FIELDS = {"displacement", "velocity", "acceleration", "force"}
PARAMS = {"natural_freq_hz", "damping_ratio", "rpm", "shaft_hz", "fault_hz", "resonance_hz", "snr_db"}


def envelope_spectrum(rec, signal=None):
    """Classic bearing diagnosis: band-pass around the resonance, Hilbert envelope, its amplitude spectrum."""
    fs, f0 = rec.sample_rate, rec.params["resonance_hz"]
    sos = butter(4, [0.75 * f0, min(1.25 * f0, 0.49 * fs)], btype="bandpass", fs=fs, output="sos")
    env = np.abs(hilbert(sosfiltfilt(sos, rec.signal if signal is None else signal)))
    spectrum = np.abs(np.fft.rfft((env - env.mean()) * np.hanning(env.size)))
    return np.fft.rfftfreq(env.size, 1 / fs), spectrum


def line_height(freqs, spectrum, f, rel=0.03):
    return spectrum[np.abs(freqs - f) <= rel * f + 1.0].max()


def test_outputs_shapes_dtypes_and_params():
    rec = simulate_recording("inner_014", 2, seed=0, duration_s=0.5)
    assert rec.signal.shape == (6000,) and rec.signal.dtype == np.float32
    assert set(rec.fields) == FIELDS and all(f.shape == (6000,) for f in rec.fields.values())
    assert set(rec.params) == PARAMS
    assert 2500 <= rec.params["resonance_hz"] <= 4000 and 0.01 <= rec.params["damping_ratio"] <= 0.1
    # pre-warping: Tustin maps the equation's w_n back onto the physical resonance
    w_n, dt = 2 * math.pi * rec.params["natural_freq_hz"], 1 / rec.sample_rate
    assert 2 / dt * math.atan(w_n * dt / 2) / (2 * math.pi) == pytest.approx(rec.params["resonance_hz"])
    assert rec.params["shaft_hz"] == pytest.approx(rec.params["rpm"] / 60)
    bpfi = characteristic_frequencies(SKF_6205_DE, rec.params["shaft_hz"])["bpfi"]
    assert rec.params["fault_hz"] == pytest.approx(bpfi)
    assert (rec.label, rec.load_hp, rec.sample_rate) == ("inner_014", 2, 12000.0)
    assert math.isnan(simulate_recording("normal", 0, seed=0, duration_s=0.2).params["fault_hz"])


def test_deterministic_per_seed_and_different_across_seeds():
    a, b = simulate_recording("ball_007", 1, seed=3), simulate_recording("ball_007", 1, seed=3)
    c = simulate_recording("ball_007", 1, seed=4)
    np.testing.assert_array_equal(a.signal, b.signal)
    np.testing.assert_array_equal(a.fields["force"], b.fields["force"])
    assert a.params == b.params
    assert not np.allclose(a.signal, c.signal)


def test_ground_truth_satisfies_the_trapezoidal_equations_to_rounding():
    rec = simulate_recording("outer_021", 3, seed=1, snr_db=math.inf)
    x, v, a, f = (rec.fields[k] for k in ("displacement", "velocity", "acceleration", "force"))
    dt, w, zeta = 1 / rec.sample_rate, 2 * math.pi * rec.params["natural_freq_hz"], rec.params["damping_ratio"]

    def rel_error(lhs, rhs):
        return np.abs(lhs - rhs).max() / np.abs(rhs).max()

    assert rel_error(np.diff(x), dt / 2 * (v[1:] + v[:-1])) < 1e-12
    assert rel_error(np.diff(v), dt / 2 * (a[1:] + a[:-1])) < 1e-12
    assert rel_error(a, f - 2 * zeta * w * v - w**2 * x) < 1e-12


def test_simulates_two_seconds_fast():
    simulate_recording("inner_021", 0, seed=0)  # warm-up
    start = time.perf_counter()
    for seed in range(5):
        simulate_recording("inner_021", 0, seed=seed)
    assert (time.perf_counter() - start) / 5 < 0.1


@pytest.mark.parametrize("label", ["outer_014", "inner_014", "ball_014"])
def test_impacts_repeat_at_the_class_rate(label):
    rec = simulate_recording(label, 0, seed=2, snr_db=math.inf)
    freqs, spectrum = envelope_spectrum(rec)
    search = (freqs > 0.6 * rec.params["fault_hz"]) & (freqs < 1.4 * rec.params["fault_hz"])
    peak = freqs[search][spectrum[search].argmax()]
    assert peak == pytest.approx(rec.params["fault_hz"], rel=0.02)


def test_amplitude_grows_with_fault_size_and_normal_is_quiet():
    def rms(label):
        signals = [simulate_recording(label, 1, seed, snr_db=math.inf).signal for seed in range(4)]
        return np.mean([np.sqrt(np.mean(s**2)) for s in signals])

    assert rms("normal") < rms("outer_007") < rms("outer_014") < rms("outer_021")
    peak = np.abs(simulate_recording("outer_014", 1, 0).signal).max()
    assert 0.3 < peak < 10  # g-like units of order 1


@pytest.mark.parametrize("snr_db", [10.0, 20.0, 30.0])
def test_noise_is_added_at_the_requested_snr(snr_db):
    rec = simulate_recording("inner_007", 1, seed=5, snr_db=snr_db, harmonics=False)
    clean = rec.fields["acceleration"]
    noise = rec.signal - clean
    realised = 10 * np.log10(np.mean(clean**2) / np.mean(noise**2))
    assert realised == pytest.approx(snr_db, abs=0.5)


def test_infinite_snr_without_harmonics_reads_the_structure_exactly():
    rec = simulate_recording("ball_021", 2, seed=0, snr_db=math.inf, harmonics=False)
    np.testing.assert_array_equal(rec.signal, rec.fields["acceleration"].astype(np.float32))


def test_shaft_harmonics_show_in_the_signal_only_when_asked():
    on = simulate_recording("normal", 0, seed=0, snr_db=math.inf)
    off = simulate_recording("normal", 0, seed=0, snr_db=math.inf, harmonics=False)
    freqs = np.fft.rfftfreq(on.signal.size, 1 / on.sample_rate)
    for rec, expected in ((on, True), (off, False)):
        spectrum = np.abs(np.fft.rfft(rec.signal))
        near = lambda f: spectrum[np.abs(freqs - f) < 2].max()  # noqa: E731
        shaft_line = near(rec.params["shaft_hz"]) > 10 * np.median(spectrum[(freqs > 10) & (freqs < 200)])
        assert shaft_line == expected


@pytest.mark.parametrize("load_hp", [0, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_envelope_spectrum_rule_separates_fault_locations(seed, load_hp):
    for location in ("outer", "inner", "ball"):
        rec = simulate_recording(f"{location}_007", load_hp, seed, snr_db=math.inf)
        rates = characteristic_frequencies(SKF_6205_DE, rec.params["shaft_hz"])
        candidates = {"outer": rates["bpfo"], "inner": rates["bpfi"], "ball": 2 * rates["bsf"]}
        freqs, spectrum = envelope_spectrum(rec)
        heights = {loc: line_height(freqs, spectrum, f) for loc, f in candidates.items()}
        assert max(heights, key=heights.get) == location, heights


def test_rejects_unknown_load_and_class():
    with pytest.raises(ValueError, match="load_hp"):
        simulate_recording("normal", 4, seed=0)
    with pytest.raises(ValueError, match="outer_099"):
        simulate_recording("outer_099", 0, seed=0)
