from pathlib import Path

import pytest

from riskstrat.errors import SettingsError
from riskstrat.models.settings import ModelSettings
from riskstrat.settings import REPO_CONFIG_DIR, load_settings


def test_shipped_model_yaml_loads_with_documented_defaults():
    settings = load_settings(REPO_CONFIG_DIR / "model.yaml", ModelSettings)
    assert settings.caseload.treatment == "flag"
    assert settings.promotion.calibration_slope_bounds == (0.9, 1.1)
    # The shipped trees are small and well regularised (see the comment in configs/model.yaml).
    emergency = settings.params_for("emergency_admission")
    assert (emergency.num_leaves, emergency.early_stopping_rounds) == (7, 100)
    assert settings.mlflow.registered_models["frequent_attendance"] == "frequent_attendance"
    assert settings.calibration.min_events == 100
    # Frequent attendance is rare: its rounds are judged by cross-validation on the training persons
    # unless the validation rows hold enough events.
    frequent = settings.params_for("frequent_attendance")
    assert (frequent.early_stopping_on, frequent.min_validation_events) == ("auto", 100)
    # A budget on model size keeps training and scoring linear in the population.
    assert emergency.n_estimators == frequent.n_estimators == 500
    assert emergency.early_stopping_on == "validation"


def test_default_tracking_uri_is_sqlite_under_output_dir(tmp_path: Path):
    settings = ModelSettings()
    assert settings.mlflow.resolved_tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert settings.mlflow.resolved_artifact_dir(tmp_path) == tmp_path.resolve() / "mlartifacts"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("caseload:\n  treatment: ignore\n", "caseload.treatment"),
        ("promotion:\n  auroc_tolerence: 0.01\n", "promotion.auroc_tolerence"),
        ("split:\n  train: 0.7\n", "split"),
        (
            "lightgbm:\n  emergency_admission:\n    num_leaves: many\n",
            "lightgbm.emergency_admission.num_leaves",
        ),
        ("as_of:\n  validation: 2021-01-01\n", "as_of"),
        ("calibration:\n  min_events: -1\n", "calibration.min_events"),
    ],
)
def test_invalid_settings_name_the_key(tmp_path: Path, text: str, key: str):
    path = tmp_path / "model.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError) as error:
        load_settings(path, ModelSettings)
    assert key in str(error.value)
