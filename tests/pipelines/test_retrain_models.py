"""The model tasks of the retrain flow, run through ``.fn`` on a small synthetic table."""

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models"))
from synthetic_training import FEATURES, fast_settings, make_training_table

from riskstrat.pipelines.retrain import promote_challenger, register_challenger, train_models


@pytest.mark.slow
def test_train_register_promote_tasks(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    table = make_training_table(6000)
    outcome = "emergency_admission"
    settings = fast_settings(
        outcomes=["emergency_admission"], promotion={"calibration_slope_bounds": [0.5, 2]}
    )
    dictionary = pd.DataFrame({"name": FEATURES})
    results = train_models.fn(table, dictionary, settings)
    registration = register_challenger.fn(results[outcome], table, dictionary, settings, tmp_path)
    assert (tmp_path / "mlflow.db").is_file() and (tmp_path / "mlartifacts").is_dir()
    decision = promote_challenger.fn(registration, results[outcome], table, settings, apply=False)
    assert not decision.promoted
    assert decision.status in {"eligible_not_promoted", "refused"}
