"""How the pipelines wire social care: the gate's data date, the feature cache key, scoring without the table."""

from __future__ import annotations

import importlib.util
import sys
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from riskstrat.features.settings import FeatureSettings
from riskstrat.features.social_care import KNOWN, SOCIAL_CARE_FEATURES
from riskstrat.pipelines import weekly
from riskstrat.pipelines.features import data_date, feature_cache_key
from riskstrat.pipelines.validate import social_care_returns_date


def _ingest_fixtures():
    """The valid extract builder of tests/ingest/test_validation.py (one definition of the fixture)."""
    path = Path(__file__).parents[1] / "ingest" / "test_validation.py"
    name = "riskstrat_test_validation_fixtures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _config(extract_date: date | None) -> SimpleNamespace:
    return SimpleNamespace(data=SimpleNamespace(extract_date=extract_date), features=FeatureSettings())


def test_the_gate_counts_returns_by_the_weekly_runs_data_date(tmp_path):
    fixtures = _ingest_fixtures()
    tables = fixtures.valid_tables()
    without = fixtures.write_extract(tmp_path / "without", tables)
    assert social_care_returns_date(_config(None), without) is None  # no returns to check
    tables["social_care_events"] = pd.DataFrame(
        {
            "person_id": ["P001"],
            "la_code": ["E09000001"],
            "reporting_period_start": pd.to_datetime(["2025-07-01"]),
            "event_type": ["request"],
            "event_start_date": pd.to_datetime(["2025-08-01"]),
            "client_type": ["service_user"],
        }
    )
    extract = fixtures.write_extract(tmp_path / "with", tables)
    latest = data_date.fn(extract, FeatureSettings())
    assert latest < date.today()
    assert social_care_returns_date(_config(None), extract) == latest
    assert social_care_returns_date(_config(date(2025, 12, 31)), extract) == date(2025, 12, 31)


def test_social_care_settings_change_the_feature_cache_key():
    settings = FeatureSettings()
    plain = feature_cache_key(settings, None)
    assert feature_cache_key(settings, None, {}) == plain
    assert feature_cache_key(settings, None, {"E07000234": "E10000034"}) != plain


class _Model:
    """Reads the social care columns as a model trained with them would (NaN where not known)."""

    feature_names = ("age", KNOWN, "social_care_carer")

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        carer = features["social_care_carer"].fillna(0.5).to_numpy()
        return 0.1 + 0.1 * features[KNOWN].to_numpy() + 0.01 * carer


def test_a_champion_with_social_care_scores_an_extract_without_it_as_not_known(monkeypatch, caplog):
    features = pd.DataFrame(
        {"person_id": ["PID-481516", "PID-234200"], "practice_code": ["X"] * 2, "age": [80.0, 70.0]}
    )
    models = {"emergency_admission": _Model()}
    monkeypatch.setattr(weekly, "_champions", lambda *args: (models, {"emergency_admission": "m v1"}))
    monkeypatch.setattr(weekly, "run_logger", lambda name: __import__("logging").getLogger(name))
    with caplog.at_level("WARNING"):
        scored, _, _ = weekly.score_population_task.fn(features, None, "uri", set())
    assert (features[KNOWN] == 0).all() and features["social_care_carer"].isna().all()
    assert set(features.columns) & set(SOCIAL_CARE_FEATURES) == {KNOWN, "social_care_carer"}
    assert np.allclose(scored["p_emergency_admission"], 0.105)
    assert "scored as not known" in caplog.text and "PID-" not in caplog.text  # no patient data


def test_the_spark_path_adds_the_same_not_known_columns_as_the_local_one(monkeypatch):
    monkeypatch.setattr(weekly, "run_logger", lambda name: __import__("logging").getLogger(name))
    models = {"emergency_admission": _Model()}
    added = weekly.social_care_not_known(["person_id", "age"], models)
    assert added.keys() == {KNOWN, "social_care_carer"}
    assert added[KNOWN] == 0.0 and np.isnan(added["social_care_carer"])
    assert weekly.social_care_not_known(["person_id", "age", KNOWN, "social_care_carer"], models) == {}
