"""Fixtures of the model tests: a synthetic training table, fast settings, trained models."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from synthetic_training import FEATURES, fast_settings, make_training_table

from riskstrat.models.settings import ModelSettings

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


@pytest.fixture(scope="session")
def training_table() -> pd.DataFrame:
    return make_training_table()


@pytest.fixture(scope="session")
def truth(training_table: pd.DataFrame) -> pd.DataFrame:
    return training_table[["person_id", "as_of", "p_emergency_admission", "p_frequent_attendance"]]


@pytest.fixture(scope="session")
def settings() -> ModelSettings:
    return fast_settings()


@pytest.fixture(scope="session")
def trained(training_table, truth, settings):
    """Both outcomes trained once for the session."""
    from riskstrat.models.training import train_outcome

    return {
        outcome: train_outcome(training_table, FEATURES, outcome, settings, truth=truth)
        for outcome in ("emergency_admission", "frequent_attendance")
    }
