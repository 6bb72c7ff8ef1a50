"""The shipped settings load; a wrong key or value fails naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskstrat.errors import SettingsError
from riskstrat.features.settings import FeatureSettings, OutcomeSettings
from riskstrat.settings import REPO_CONFIG_DIR, load_settings


def test_shipped_feature_settings_load_with_the_documented_defaults():
    settings = load_settings(REPO_CONFIG_DIR / "features.yaml", FeatureSettings)
    assert settings == FeatureSettings()
    assert settings.windows == (30, 90, 365, 730) and settings.backend == "duckdb"
    assert settings.include_ethnicity is False and settings.cohort.min_age == 18


def test_shipped_outcome_settings_load_with_the_documented_defaults():
    settings = load_settings(REPO_CONFIG_DIR / "outcomes.yaml", OutcomeSettings)
    assert settings == OutcomeSettings()
    assert settings.emergency_admission.horizon_days == 365
    assert settings.emergency_admission.death_counts_as_event is True
    assert settings.frequent_attendance.min_attendances == 5


@pytest.mark.parametrize(
    ("text", "model", "key"),
    [
        ("windowz: [30]\n", FeatureSettings, "windowz"),
        ("windows: [30, -5]\n", FeatureSettings, "windows"),
        ("backend: spark\n", FeatureSettings, "backend"),
        ("cohort:\n  min_age: adult\n", FeatureSettings, "cohort.min_age"),
        ("emergency_admission:\n  horizon_days: 0\n", OutcomeSettings, "emergency_admission.horizon_days"),
        ("frequent_attendance:\n  threshold: 5\n", OutcomeSettings, "frequent_attendance.threshold"),
    ],
)
def test_invalid_settings_fail_naming_the_key(tmp_path: Path, text, model, key):
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError) as error:
        load_settings(path, model)
    assert key in str(error.value) and "settings.yaml" in str(error.value)


def test_every_field_is_described():
    for model in (FeatureSettings, OutcomeSettings):
        assert all(field.description for field in model.model_fields.values())
