"""Usage examples for AGTNOArchitecture, the model the training API documents.

Most tests use a tiny model (hidden 16, 2 layers) and short windows so the file stays fast on a shared CPU.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.config import ModelConfig
from pipeline.data.classes import CLASS_NAMES, FAULT_LOCATIONS, class_index, fault_location
from pipeline.physics.agt_no_architecture import INFERENCE_CHUNK, AGTNOArchitecture
from pipeline.physics.residuals import physics_residuals

FIELD_NAMES = {"displacement", "velocity", "force"}
OUTPUT_KEYS = {
    "predictions",
    "physics_residuals",
    "coupled_fields",
    "fields",
    "physical_params",
    "mean",
    "log_var",
    "uncertainties",
    "features",
}


def tiny_model(**overrides) -> AGTNOArchitecture:
    torch.manual_seed(0)
    kwargs = dict(hidden_dim=16, n_layers=2, n_heads=2, n_modes=8, patch_size=8, latent_dim=4) | overrides
    return AGTNOArchitecture(**kwargs)


def impact_windows(n: int, length: int, rate_hz: float, fs: float = 12000.0) -> torch.Tensor:
    """Windows of a 3 kHz resonance rung by impacts at `rate_hz` (random phase) plus noise, as [n, length]."""
    t = torch.arange(length) / fs
    ring = torch.exp(-t[:64] * 2 * math.pi * 3000 * 0.05) * torch.sin(2 * math.pi * 3000 * t[:64])
    impulses = torch.zeros(n, length)
    for i in range(n):
        start = torch.randint(0, int(fs / rate_hz), ()).item()
        impulses[i, start :: int(fs / rate_hz)] = 1.0
    response = F.conv1d(impulses[:, None], ring.flip(0).view(1, 1, -1), padding=63)[:, 0, 63:]  # causal ringing
    return response + 0.05 * torch.randn(n, length)


def physics_loss(outputs: dict) -> torch.Tensor:
    return sum(r.pow(2).mean() for r in outputs["physics_residuals"].values())


def test_seed_construction_runs_on_plain_windows():
    model = AGTNOArchitecture(input_dim=1, hidden_dim=128, output_dim=10)
    outputs = model(torch.randn(2, 1024), shaft_hz=torch.tensor([29.95, 28.8]))

    assert OUTPUT_KEYS <= outputs.keys()
    assert outputs["predictions"].shape == (2, 10)
    assert set(outputs["fields"]) == FIELD_NAMES
    assert all(f.shape == (2, 1024) for f in outputs["fields"].values())
    assert {"equation_of_motion", "measurement"} <= outputs["physics_residuals"].keys()
    assert {"kinetic_energy", "potential_energy", "input_work", "dissipated_work"} <= outputs["coupled_fields"].keys()
    assert outputs["mean"].shape == outputs["log_var"].shape == (2, 16)
    assert outputs["uncertainties"].shape == (2,)


def test_channel_last_input_matches_plain_input():
    model = tiny_model().eval()
    x = torch.randn(3, 256)
    torch.testing.assert_close(model(x)["predictions"], model(x[..., None])["predictions"])


def test_physical_params_stay_in_plausible_ranges():
    params = tiny_model().eval()(100 * torch.randn(4, 256))["physical_params"]
    assert ((params["resonance_hz"] >= 1500) & (params["resonance_hz"] <= 5000)).all()
    assert ((params["damping_ratio"] >= 0.005) & (params["damping_ratio"] <= 0.2)).all()


def test_natural_freq_is_prewarped_like_the_simulators():
    """The residuals' trapezoidal equation rings at (2/dt) atan(w_n dt / 2), which must be the resonance."""
    params = tiny_model().eval()(torch.randn(4, 256))["physical_params"]
    dt = 1 / 12000
    w_n = 2 * math.pi * params["natural_freq_hz"].double()
    rings_at_hz = 2 / dt * torch.atan(w_n * dt / 2) / (2 * math.pi)
    torch.testing.assert_close(rings_at_hz.float(), params["resonance_hz"])


def test_fields_follow_the_signal_units():
    """Scaling the signal scales every field by the same factor. The class decision may change: the spectrum is
    read in the signal's own units, so its level is a feature."""
    model = tiny_model().eval()
    x = torch.randn(2, 256)
    small, large = model(x), model(1000 * x)
    for name in FIELD_NAMES:
        expected, actual = 1000 * small["fields"][name], large["fields"][name]
        assert (expected - actual).abs().max() <= 1e-4 * actual.abs().max()


@pytest.mark.parametrize(
    "model_kwargs, shape",
    [
        ({}, (4,)),  # no batch dimension
        ({}, (2, 256, 2)),  # two channels for a one-channel model
        ({}, (2, 1, 256, 1)),
        ({}, (2, 8)),  # shorter than 16 samples
        ({"input_dim": 2}, (2, 256)),  # a two-channel model needs [B, L, 2]
    ],
)
def test_bad_shapes_raise_a_clear_error(model_kwargs, shape):
    with pytest.raises(ValueError, match=r"\[" + ", ".join(str(s) for s in shape) + r"\]"):
        tiny_model(**model_kwargs)(torch.randn(shape))


def test_multichannel_input_uses_first_channel_as_the_measurement():
    x = torch.randn(2, 256, 2)
    outputs = tiny_model(input_dim=2).eval()(x)
    params = outputs["physical_params"]
    recomputed = physics_residuals(
        outputs["fields"],
        x[..., 0],
        12000.0,
        natural_freq_hz=params["natural_freq_hz"],
        damping_ratio=params["damping_ratio"],
    )
    torch.testing.assert_close(outputs["physics_residuals"]["measurement"], recomputed["measurement"])


def shapes(outputs: dict) -> dict:
    """The nested output dict with every tensor replaced by its shape."""
    return {k: shapes(v) if isinstance(v, dict) else tuple(v.shape) for k, v in outputs.items()}


def test_any_window_length_gives_the_same_outputs_shapes():
    model = tiny_model().eval()
    reference = shapes(model(torch.randn(2, 256)))
    for length in (512, 1000, 2048):
        got = shapes(model(torch.randn(2, length)))
        assert got.keys() == reference.keys()
        assert got["predictions"] == reference["predictions"] == (2, 10)
        assert got["fields"] == {name: (2, length) for name in FIELD_NAMES}
        assert got["physical_params"] == reference["physical_params"]
        assert got["physics_residuals"].keys() == reference["physics_residuals"].keys()
        assert all(shape[0] == 2 for shape in got["physics_residuals"].values())  # one row per window


def test_samples_do_not_influence_each_other_in_eval():
    model = tiny_model().eval()
    x = torch.randn(3, 256)
    changed = x.clone()
    changed[1] = 50 * torch.randn(256)
    before, after = model(x), model(changed)
    for key in ("predictions", "mean", "log_var", "uncertainties", "features"):
        torch.testing.assert_close(before[key][0], after[key][0])
    for group in ("fields", "physical_params", "physics_residuals", "coupled_fields"):
        for name in before[group]:
            torch.testing.assert_close(before[group][name][0], after[group][name][0], msg=f"{group}/{name}")


SIZES = ("hidden_dim", "n_layers", "n_heads", "n_modes", "patch_size", "latent_dim")
SERVED_SIZE = {key: getattr(ModelConfig, key) for key in SIZES}  # the pipeline's model


@pytest.mark.parametrize("size, length", [({}, 256), (SERVED_SIZE, 1024)], ids=["tiny", "served"])
@pytest.mark.parametrize("shaft_hz", [29.95, 7.5, 700.0])  # 700 Hz puts the top orders past Nyquist (clamped)
def test_serving_path_gives_the_full_forwards_decisions(size, length, shaft_hz):
    """physics=False (what the pyfunc calls, with one speed per request) computes only the decision, in chunks
    for big batches: the same predictions as the full forward, which reads every window at its own speed."""
    model = tiny_model(**size).eval()
    x = torch.cat([impact_windows(INFERENCE_CHUNK, length, rate_hz=105.9), torch.randn(3, length)])
    with torch.inference_mode():
        full = model(x, shaft_hz=torch.full((len(x),), shaft_hz))
        served = model(x, physics=False, shaft_hz=shaft_hz)
    assert served.keys() == {"predictions", "mean", "log_var", "uncertainties", "features"}
    for key in served:
        torch.testing.assert_close(served[key], full[key], rtol=1e-5, atol=1e-5)
    assert torch.equal(served["predictions"].argmax(-1), full["predictions"].argmax(-1))


@pytest.mark.parametrize("size, length", [({}, 256), (SERVED_SIZE, 1024)], ids=["tiny", "served"])
def test_served_single_windows_get_the_full_forwards_probabilities(size, length):
    """One window per request, as the server mostly sees them, at several speeds: physics=False gives the full
    forward's class probabilities and uncertainties."""
    model = tiny_model(**size).eval()
    windows = torch.cat([impact_windows(2, length, rate_hz=105.9), 10 * torch.randn(2, length)])
    for shaft_hz in (29.95, 7.5, 24.3, 700.0):
        for window in windows:
            with torch.inference_mode():
                full = model(window[None], shaft_hz=torch.tensor([shaft_hz]))
                served = model(window[None], physics=False, shaft_hz=shaft_hz)
            torch.testing.assert_close(
                served["predictions"].softmax(-1), full["predictions"].softmax(-1), rtol=1e-5, atol=1e-5
            )
            torch.testing.assert_close(served["uncertainties"], full["uncertainties"], rtol=1e-5, atol=1e-5)


def test_training_after_inference_still_backpropagates():
    """The tables cached per window length (Fourier basis, envelope taper) are built outside inference mode: one
    first made while serving is saved for backward when training resumes. The length is one no other test uses,
    so the tables are first made here, under inference mode."""
    model, untouched, x = tiny_model(), tiny_model(), torch.randn(2, 222)
    with torch.inference_mode():
        model.eval()(torch.randn(2, 222), physics=False)
    for trained in (model, untouched):  # the same step, with the same latent sample, by a model that never served
        torch.manual_seed(1)
        physics_loss(trained.train()(x)).backward()
    assert model.lift.weight.grad.abs().sum() > 0
    for (name, p), q in zip(model.named_parameters(), untouched.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=lambda m: f"{name}: {m}")


def test_eval_is_deterministic_and_training_samples_the_latent():
    model = tiny_model()
    x = torch.randn(2, 256)
    model.eval()
    torch.testing.assert_close(model(x)["predictions"], model(x)["predictions"])
    model.train()
    assert not torch.equal(model(x)["predictions"], model(x)["predictions"])


def test_gradients_reach_every_parameter():
    model = tiny_model().train()
    outputs = model(torch.randn(4, 256))
    loss = F.cross_entropy(outputs["predictions"], torch.tensor([0, 1, 2, 3])) + physics_loss(outputs)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient in {name}"


def test_bf16_autocast_forward_on_cpu():
    model = tiny_model()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = model(torch.randn(2, 256))
        loss = F.cross_entropy(outputs["predictions"], torch.tensor([0, 1])) + physics_loss(outputs)
    loss.backward()
    assert torch.isfinite(loss)
    assert outputs["fields"]["displacement"].dtype == torch.float32


def test_torch_compile_matches_eager():
    model = tiny_model(n_layers=1).eval()
    x = torch.randn(2, 128)
    eager = model(x)
    compiled = torch.compile(model)(x)
    torch.testing.assert_close(compiled["predictions"], eager["predictions"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(
        compiled["fields"]["displacement"], eager["fields"]["displacement"], rtol=1e-4, atol=1e-12
    )


def test_overfits_twenty_windows_of_two_fault_classes():
    """A real learning check: outer- and inner-race impact rates (BPFO, BPFI at 1772 rpm) told apart."""
    torch.manual_seed(0)
    x = torch.cat([impact_windows(10, 1024, rate_hz=105.9), impact_windows(10, 1024, rate_hz=159.9)])
    y = torch.tensor([class_index("outer_014")] * 10 + [class_index("inner_014")] * 10)
    model = tiny_model(class_locations=[fault_location(name) for name in CLASS_NAMES])
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(50):
        optimiser.zero_grad()
        outputs = model(x)
        (F.cross_entropy(outputs["predictions"], y) + 0.1 * physics_loss(outputs)).backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        assert (model(x)["predictions"].argmax(dim=-1) == y).all()


def test_kinematics_residual_needs_the_classes_fault_locations():
    """The kinematics residual scores each class by its fault location, which only the data can say."""
    x = torch.randn(2, 1024)
    assert "kinematics" not in tiny_model(output_dim=3)(x)["physics_residuals"]
    located = tiny_model(output_dim=4, class_locations=list(FAULT_LOCATIONS))(x)
    assert located["physics_residuals"]["kinematics"].shape == (2,)
    with pytest.raises(ValueError, match="class_locations has 4 entries for output_dim=3"):
        tiny_model(output_dim=3, class_locations=list(FAULT_LOCATIONS))


def test_each_window_is_read_at_its_own_shaft_speed():
    """The envelope view reads fault lines in shaft orders, so the decision depends on the speed given."""
    model = tiny_model().eval()
    x = torch.randn(2, 1024)
    with torch.no_grad():
        nominal = model(x, physics=False)["predictions"]
        slow = model(x, physics=False, shaft_hz=torch.tensor([20.0, 20.0]))["predictions"]
        mixed = model(x, physics=False, shaft_hz=torch.tensor([20.0, 29.95]))["predictions"]
    assert not torch.allclose(nominal, slow)
    torch.testing.assert_close(mixed, torch.stack([slow[0], nominal[1]]))
    with pytest.raises(ValueError, match="shaft_hz must be positive"):
        model(x, shaft_hz=torch.tensor([29.0, 0.0]))


def test_without_the_spectrum_view_only_the_fault_orders_decide():
    model = tiny_model(spectrum_view=False).eval()
    assert not hasattr(model, "blocks")
    assert model(torch.randn(2, 256))["predictions"].shape == (2, 10)


def test_any_class_count_gets_plain_logits():
    model = tiny_model(output_dim=3).eval()
    outputs = model(torch.randn(2, 256))
    assert outputs["predictions"].shape == (2, 3)


def ten_tones(n_per_class: int, seed: int, length: int = 1024, fs: float = 12000.0) -> tuple[torch.Tensor, ...]:
    """One tone per class (250, 500, ..., 2500 Hz) at a random phase, in noise of the same power."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(10).repeat(n_per_class)
    t = torch.arange(length) / fs
    phase = 2 * math.pi * torch.rand(len(labels), 1, generator=generator)
    tones = torch.sin(2 * math.pi * 250.0 * (labels[:, None] + 1) * t + phase)
    return tones + 0.7 * torch.randn(len(labels), length, generator=generator), labels


def test_seed_model_learns_any_ten_labelled_windows():
    """The seed's own construction, three epochs on ten tones: nothing about the classes is built in."""
    torch.manual_seed(0)
    model = AGTNOArchitecture(input_dim=1, hidden_dim=128, output_dim=10)
    x, y = ten_tones(20, seed=0)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    epoch_losses = []
    for _ in range(3):
        total = 0.0
        for batch in torch.randperm(len(y)).split(20):
            optimiser.zero_grad()
            loss = F.cross_entropy(model(x[batch])["predictions"], y[batch])
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        epoch_losses.append(total / len(y))
    test_x, test_y = ten_tones(10, seed=1)
    with torch.no_grad():
        accuracy = (model.eval()(test_x, physics=False)["predictions"].argmax(-1) == test_y).float().mean()
    assert epoch_losses[-1] < epoch_losses[0]
    assert accuracy > 0.6  # chance is 0.1
