"""Optuna sweeps over (DDP) training jobs: search space, storage, trials, the sweep loop and its MLflow view."""
