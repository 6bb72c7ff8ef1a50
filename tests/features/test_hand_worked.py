"""Hand-worked features and outcomes on a tiny extract (see conftest.hand_worked_rows), on every engine."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest
from feature_fixtures import AS_OF, extract, hand_worked_rows, memtables, patient

from riskstrat.errors import RiskstratError
from riskstrat.features.dictionary import feature_names
from riskstrat.features.matrix import PERSON_ATTRIBUTES, TRAINING_FEATURE_TYPE, build_feature_matrix
from riskstrat.features.settings import FeatureSettings, OutcomeSettings
from riskstrat.features.social_care import SOCIAL_CARE_FEATURES


@pytest.fixture(scope="module")
def matrix(on_engine) -> pd.DataFrame:
    frames = extract(hand_worked_rows())
    result = build_feature_matrix(on_engine(frames), AS_OF, FeatureSettings(), OutcomeSettings())
    return result.set_index("person_id")


def test_cohort_is_alive_registered_adults_at_t(matrix):
    # p3 died on T, p6 is 17, p7's registration ended on T, p8 registered after T.
    assert list(matrix.index) == ["p1", "p2", "p5", "p9"]


def test_age_in_completed_years_counts_a_birthday_on_t(matrix):
    assert matrix.loc["p1", "age"] == 74
    assert matrix.loc["p5", "age"] == 18  # born 2006-12-31: 18 on T exactly


def test_demographics_and_audit_columns(matrix):
    p1 = matrix.loc["p1"]
    assert p1["sex_female"] == 1 and p1["care_home"] == 1
    assert p1["imd_quintile"] == (p1["imd_decile"] + 1) // 2
    assert p1["ethnic_group"] == "White" and p1["age_band"] == "65-74"
    assert math.isnan(matrix.loc["p5", "imd_decile"])  # Welsh LSOA: not in IMD 2019
    assert matrix.loc["p5", "ethnic_group"] == "Not known / Not stated"
    assert matrix.loc["p9", "care_home"] == 0  # care-home code recorded after T


def test_conditions_recorded_on_t_count_and_after_t_do_not(matrix):
    p1 = matrix.loc["p1"]
    assert p1["ltc_hypertension"] == 1 and p1["ltc_diabetes"] == 1  # diabetes recorded on T
    assert p1["ltc_copd"] == 0  # recorded on T + 1
    assert p1["ltc_count"] == 2
    assert p1["new_conditions_365d"] == 1  # diabetes; hypertension first recorded in 2015


def test_efi_counts_distinct_deficits_and_polypharmacy(matrix):
    # p1: hypertension, diabetes, falls, requirement_for_care (care home), polypharmacy (5 sections).
    assert matrix.loc["p1", "bnf_sections_365d"] == 5
    assert matrix.loc["p1", "efi_score"] == pytest.approx(5 / 36)
    assert matrix.loc["p1", "efi_category"] == 1
    # p9: the fifth section was issued 366 days before T, so no polypharmacy deficit.
    assert matrix.loc["p9", "bnf_sections_365d"] == 4
    assert matrix.loc["p9", "efi_score"] == pytest.approx(1 / 36)


def test_gp_and_community_windows(matrix):
    p1 = matrix.loc["p1"]
    assert (p1["gp_appointments_30d"], p1["gp_home_visits_30d"], p1["gp_dna_30d"], p1["gp_dna_90d"]) == (
        2,
        1,
        0,
        1,
    )
    assert matrix.loc["p9", "gp_appointments_30d"] == 0 and matrix.loc["p9", "gp_appointments_90d"] == 1
    assert p1["community_district_nursing_30d"] == 1 and p1["community_district_nursing_365d"] == 2
    assert p1["community_falls_365d"] == 0 and p1["community_falls_730d"] == 1
    assert p1["community_contacts_365d"] == 3  # therapy counts in the total only
    assert p1["community_palliative_730d"] == 0  # on T + 1


def test_ae_window_starts_after_t_minus_w(matrix):
    p1 = matrix.loc["p1"]
    # Arrivals at 23:59 on T (counts) and on T - 30 (outside the 30-day window).
    assert (p1["ae_attendances_30d"], p1["ae_attendances_90d"]) == (1, 2)
    assert (p1["ae_ambulance_30d"], p1["ae_high_acuity_30d"], p1["ae_admitted_30d"]) == (1, 1, 1)
    assert p1["days_since_last_ae"] == 0
    assert math.isnan(matrix.loc["p2", "days_since_last_ae"])


def test_spells_are_clipped_at_t(matrix):
    p1 = matrix.loc["p1"]
    assert (p1["emergency_admissions_30d"], p1["emergency_admissions_90d"]) == (1, 2)
    assert p1["elective_admissions_365d"] == 1
    # s1 12-01..12-10 overlaps [T-30, T] by 9 days; s2 admitted 12-20, discharged after T -> 11 days.
    assert p1["bed_days_30d"] == 20 and p1["bed_days_365d"] == 21
    assert (p1["long_stays_30d"], p1["long_stays_90d"]) == (1, 2)
    assert p1["readmissions_30d_30d"] == 1
    assert p1["days_since_last_discharge"] == 21  # s2's discharge is after T, unknown at T
    assert matrix.loc["p5", "emergency_admissions_30d"] == 1  # admitted on T
    assert matrix.loc["p5", "days_since_last_discharge"] == 0


def test_outcomes_look_at_t_plus_one_to_t_plus_horizon(matrix):
    assert matrix.loc["p1", "emergency_admission"] == 1
    assert matrix.loc["p2", "emergency_admission"] == 1  # died on T + 365
    assert matrix.loc["p5", "emergency_admission"] == 0  # admitted on T and on T + 366
    assert matrix.loc["p9", "emergency_admission"] == 1  # deregistered in the window: row kept
    assert matrix.loc["p1", "frequent_attendance"] == 1
    assert matrix.loc["p9", "frequent_attendance"] == 0  # 4 in window; T and T + 366 do not count


def test_death_need_not_count_as_event(on_engine):
    settings = OutcomeSettings.model_validate({"emergency_admission": {"death_counts_as_event": False}})
    result = build_feature_matrix(on_engine(extract(hand_worked_rows())), AS_OF, FeatureSettings(), settings)
    assert result.set_index("person_id").loc["p2", "emergency_admission"] == 0


def test_additional_horizon_adds_a_column(on_engine):
    settings = OutcomeSettings.model_validate({"emergency_admission": {"additional_horizons_days": [90]}})
    result = build_feature_matrix(on_engine(extract(hand_worked_rows())), AS_OF, FeatureSettings(), settings)
    by_person = result.set_index("person_id")
    assert by_person.loc["p1", "emergency_admission_90d"] == 0  # admitted on T + 152
    assert by_person.loc["p2", "emergency_admission_90d"] == 0


def test_column_order_and_dtypes(matrix):
    frame = matrix.reset_index()
    # The fixture has no social_care_events table: no social care columns.
    features = [name for name in feature_names(FeatureSettings()) if name not in SOCIAL_CARE_FEATURES]
    expected = [
        "person_id",
        "as_of",
        *features,
        "emergency_admission",
        "frequent_attendance",
        *PERSON_ATTRIBUTES,
    ]
    assert list(frame.columns) == expected
    # A training matrix (outcomes asked for) holds its features as float32; the weekly one float64.
    assert all(frame[name].dtype == TRAINING_FEATURE_TYPE for name in features)
    assert frame["emergency_admission"].dtype == "int64"
    assert frame["as_of"].iloc[0] == AS_OF


def test_min_age_and_ethnicity_settings(on_engine):
    rows = {"patients": [patient("a", date(2010, 1, 1), ethnic_category="H")]}
    settings = FeatureSettings.model_validate({"cohort": {"min_age": 0}, "include_ethnicity": True})
    result = build_feature_matrix(on_engine(extract(rows)), AS_OF, settings)
    assert result.loc[0, "age"] == 14
    assert result.loc[0, "ethnicity_asian"] == 1 and result.loc[0, "ethnicity_white"] == 0
    assert "emergency_admission" not in result.columns


def test_outcome_window_past_the_extract_date_is_refused():
    with pytest.raises(RiskstratError, match="after the extract date"):
        build_feature_matrix(
            memtables(extract(hand_worked_rows())),
            AS_OF,
            FeatureSettings(),
            OutcomeSettings(),
            extract_date=date(2025, 6, 30),
        )
