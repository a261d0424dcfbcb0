"""Hydra overrides for a pipeline that runs in seconds: short simulated recordings and a tiny AGT-NO."""

TINY_MODEL = ["model.hidden_dim=8", "model.n_layers=1", "model.n_modes=8", "model.n_heads=2", "model.patch_size=32"]
TINY = ["data.window=256", "data.hop=256", "data.duration_s=0.3", "data.recordings_per_load=3", *TINY_MODEL]
