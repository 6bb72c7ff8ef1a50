"""Audits of synthetic predictions, computed once per session for the evaluation tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fairness_data import fast_settings, synthetic_predictions, synthetic_selections

from riskstrat.evaluation.fairness import run_audit
from riskstrat.evaluation.report import ModelInfo, render_report


@pytest.fixture(scope="session")
def null_predictions():
    return synthetic_predictions(n=8_000, seed=11)


@pytest.fixture(scope="session")
def null_audit(null_predictions):
    return run_audit(null_predictions, synthetic_selections(null_predictions), fast_settings())


@pytest.fixture(scope="session")
def scenario_predictions():
    return synthetic_predictions(n=8_000, seed=12, under_recorded="Black")


@pytest.fixture(scope="session")
def scenario_audit(scenario_predictions):
    return run_audit(scenario_predictions, synthetic_selections(scenario_predictions), fast_settings())


@pytest.fixture(scope="session")
def model_info():
    return ModelInfo(
        outcome="emergency_admission",
        model_name="riskstrat-emergency_admission",
        model_version="3",
        training_data="Synthetic population, as-of dates 2022-12-31 and 2023-06-30.",
        outcome_definition="An emergency admission (or death) in the 365 days after the as-of date.",
        metrics={"auroc": 0.75, "brier": 0.11},
        test_as_of="2024-12-31",
        synthetic=True,
        generated_at="2025-01-01 00:00 UTC",
    )


@pytest.fixture(scope="session")
def scenario_report(scenario_audit, model_info):
    return render_report(scenario_audit, model_info)
