"""The synthetic population matches published figures (see docs/synthetic-data.md)."""

from __future__ import annotations

from datetime import date

import pytest

from riskstrat.ingest.synthetic import calibration as cal

AS_OF = date(2023, 12, 31)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def figures(calibration_population):
    return cal.summary(calibration_population.tables, calibration_population.truth["risk"], AS_OF)


def test_emergency_admission_or_death_overall_and_by_age(figures):
    assert 0.075 <= figures["emergency_admission_or_death"] <= 0.105
    by_age = figures["by_age"]
    assert 0.03 <= by_age["0-19"] <= 0.07
    assert 0.27 <= by_age["80+"] <= 0.40
    assert list(by_age.values()) == sorted(by_age.values())


def test_deprivation_gradient(figures):
    assert 1.3 <= figures["deprivation_ratio"] <= 2.3


def test_admissions_per_person_65plus(figures):
    assert 0.20 <= figures["admissions_per_person_65plus"] <= 0.30


def test_ae_conversion(figures):
    assert 0.14 <= figures["ae_conversion"] <= 0.20


def test_readmission_30d_65plus(figures):
    assert 0.13 <= figures["readmission_30d_65plus"] <= 0.22


def test_frequent_attenders(figures):
    assert 0.004 <= figures["frequent_attender_people"] <= 0.012
    assert 0.10 <= figures["frequent_attender_attendances"] <= 0.22


def test_care_home(figures):
    assert 0.003 <= figures["care_home_people"] <= 0.008
    assert 0.025 <= figures["care_home_admissions"] <= 0.08


def test_efi_among_65plus(figures):
    efi = figures["efi_65plus"]
    assert 0.42 <= efi["fit"] <= 0.60
    assert 0.27 <= efi["mild"] <= 0.42
    assert 0.07 <= efi["moderate"] <= 0.17
    assert 0.01 <= efi["severe"] <= 0.06


def test_past_use_predicts_future_use_but_oracle_is_realistic(figures):
    assert figures["prior_use_ratio"] >= 2.0
    assert 0.72 <= figures["oracle_auroc"] <= 0.88
    assert abs(figures["mean_true_risk"] - figures["emergency_admission_or_death"]) < 0.01
