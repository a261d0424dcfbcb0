"""The simulator: deterministic, exactly trapezoidal, physically recognisable (rates, SNR, classes), and a new
machine every recording: resonance, damping, speed, levels and what else the sensor reads vary, the kinematics
do not."""

import math
import time

import numpy as np
import pytest
from scipy.signal import butter, hilbert, sosfiltfilt

from pipeline.data.bearing import NOMINAL_RPM, SKF_6205_DE, characteristic_frequencies
from pipeline.data.excitation import rolling_speed
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
    assert 1200 <= rec.params["resonance_hz"] <= 4800 and 0.01 <= rec.params["damping_ratio"] <= 0.08
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


def test_each_recording_is_another_machine():
    """Resonance, damping, speed and strike level are drawn per recording, far beyond CWRU's one rig."""
    recs = [simulate_recording("inner_014", 2, seed, duration_s=0.5, snr_db=math.inf) for seed in range(12)]
    resonance = [r.params["resonance_hz"] for r in recs]
    assert min(resonance) < 2000 and max(resonance) > 3500
    damping = [r.params["damping_ratio"] for r in recs]
    assert max(damping) / min(damping) > 2
    speed = np.array([r.params["rpm"] for r in recs]) / NOMINAL_RPM[2] - 1
    assert np.abs(speed).max() <= 0.03 and np.abs(speed).max() > 0.01  # CWRU's speeds stay within 0.5 %
    peaks = [np.abs(r.fields["acceleration"]).max() for r in recs]
    assert max(peaks) / min(peaks) > 3


def test_strike_level_says_nothing_about_fault_size():
    """CWRU's 0.014 in faults strike weakest of the three sizes for outer and inner races: level is drawn
    independently of size, so the three sizes overlap."""

    def peaks(label):
        return [np.abs(simulate_recording(label, 1, seed, snr_db=math.inf).signal).max() for seed in range(6)]

    small, large = peaks("outer_007"), peaks("outer_021")
    assert max(small) > min(large) and max(large) > min(small)
    assert 0.1 < np.median(small + large) < 5  # g-like units of order 1


@pytest.mark.parametrize("label", ["outer_014", "outer_021"])
def test_fault_size_sets_the_delay_from_entry_to_exit_strike(label):
    """A rolling element enters the defect (a weak strike) and leaves it (the strike) after crossing it: beyond
    the pulse's own width (1 sample), the force's autocorrelation peaks at that delay, 2.4 samples for 0.014 in
    and 3.6 for 0.021 in (0.007 in: 1.2 samples, within the pulse)."""
    rec = simulate_recording(label, 0, seed=0, snr_db=math.inf)
    force = rec.fields["force"]
    lags = np.arange(2, 9)
    correlation = [np.dot(force[:-lag], force[lag:]) for lag in lags]
    shaft_hz = rec.params["shaft_hz"]
    delay = int(label[-3:]) / 1000 / rolling_speed(SKF_6205_DE, shaft_hz) * rec.sample_rate
    assert abs(lags[np.argmax(correlation)] - delay) <= 1


def test_what_the_sensor_adds_is_not_white_noise():
    """Besides the mode the sensor reads other modes, the machine's coloured background and white noise, in
    proportions drawn per recording: the share of the added power below 2 kHz varies between recordings, where
    white noise would hold a third of it every time."""

    def low_share(seed):
        rec = simulate_recording("ball_021", 3, seed, snr_db=10.0, harmonics=False)
        added = np.abs(np.fft.rfft(rec.signal - rec.fields["acceleration"])) ** 2
        return added[np.fft.rfftfreq(rec.signal.size, 1 / rec.sample_rate) < 2000].sum() / added.sum()

    shares = [low_share(seed) for seed in range(8)]
    assert min(shares) < 0.2 and max(shares) > 0.5


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
