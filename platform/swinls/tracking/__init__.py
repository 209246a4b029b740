"""What a team looks at: each run's learning curves as a picture (`curves.py`), and optional MLflow
tracking (`mlflow_run.py`; `pip install -e '.[tracking]'`, on with --mlflow or MLFLOW_TRACKING_URI)
that holds parameters, per-epoch metrics and references to what the platform stored."""
