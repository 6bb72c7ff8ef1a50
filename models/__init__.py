"""Models: training, calibration, baselines, MLflow logging and registry, scoring and explanations."""
