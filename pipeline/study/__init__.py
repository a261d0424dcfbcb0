"""The ablation study: does the physics help? Arms x training sets x seeds, scored and logged to MLflow.

`python -m pipeline.study` (or `mlflow run . -e study --env-manager local`) runs it; `run_study(config)` in
`pipeline.study.runner` is the same as a function; `pipeline.study.report` rebuilds its tables from the MLflow runs.
"""
