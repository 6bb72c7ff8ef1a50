"""Hand-worked hospital-diagnosis, ECDS complaint, resolved-code and recorded-eFI features, on every engine.

T = 2024-12-31. The expected values are worked out by hand in the comments.
"""

from __future__ import annotations

import math
from datetime import date, datetime

import pandas as pd
import pytest
from feature_fixtures import AS_OF, extract, patient

from riskstrat.features import hospital
from riskstrat.features.dictionary import reason_text
from riskstrat.features.matrix import build_feature_matrix
from riskstrat.features.settings import FeatureSettings

CONDITION_PREFIXES = pd.DataFrame(
    {
        "code": ["I50", "E11", "F00", "C78", "E112", "I11", "I110"],
        "value": [
            "heart_failure",
            "diabetes",
            "dementia",
            "cancer",
            "chronic_kidney_disease",
            "hypertension",
            "heart_failure",
        ],
    }
)
"""A stand-in for the icd10_conditions list (ICD-10 prefix -> condition), with one 4-character entry."""


def _spell(spell_id, person_id, admitted, discharged, diagnoses=None, primary=None):
    return {
        "spell_id": spell_id,
        "person_id": person_id,
        "admission_date": admitted,
        "discharge_date": discharged,
        "admission_method": "21",
        "diagnoses": diagnoses,
        "primary_diagnosis": primary,
    }


def _ae(attendance_id, person_id, arrival, complaint):
    return {
        "attendance_id": attendance_id,
        "person_id": person_id,
        "arrival_datetime": arrival,
        "department_type": "01",
        "arrival_mode": "other",
        "acuity": 3,
        "disposal": "discharged",
        "complaint_group": complaint,
    }


def _dx(person_id, day, condition, status=None, value=None):
    return {
        "person_id": person_id,
        "event_date": day,
        "condition": condition,
        "status": status,
        "value": value,
    }


def rows():
    d = date
    return {
        "patients": [
            patient("h1", d(1940, 1, 1)),
            patient("h2", d(1950, 1, 1)),
            patient("h3", d(1960, 1, 1)),
        ],
        "apc_spells": [
            # Known at T and in the 2-year look-back. HFRS: F00 7.1 + N39 3.2 (I50, E11, C78 carry no weight).
            # Charlson: F00 dementia 1, I50 chf 1, E112 diabwc 2 (E119 diab dropped), C787 metacanc 6 = 10.
            _spell("hs1", "h1", d(2024, 3, 1), d(2024, 3, 10), "F001;I500;E112;E119;n39.0;C787;I110"),
            # Discharged after T: its diagnoses are not known at T.
            _spell("hs2", "h1", d(2024, 12, 20), d(2025, 1, 5), "R54;S720"),
            # Discharged on T - 731 days: outside the 730-day look-back.
            _spell("hs3", "h1", d(2022, 6, 1), d(2022, 12, 31), "G20"),
            # No diagnoses column value: the primary diagnosis counts (R54 frailty, 2.2).
            _spell("hs4", "h1", d(2023, 1, 1), d(2023, 1, 2), None, "R54"),
        ],
        "gp_diagnoses": [
            # h1: heart failure current; diabetes resolved before T.
            _dx("h1", d(2020, 1, 1), "heart_failure"),
            _dx("h1", d(2015, 1, 1), "diabetes"),
            _dx("h1", d(2023, 1, 1), "diabetes", "resolved"),
            _dx("h1", d(2022, 12, 1), "recorded_efi", value=0.4),  # outside the 2-year look-back
            # h2: the register rule.
            _dx("h2", d(2015, 1, 1), "hypertension"),
            _dx("h2", d(2020, 1, 1), "hypertension", "resolved"),  # resolved: not current
            _dx("h2", d(2015, 1, 1), "asthma", "diagnosed"),
            _dx("h2", d(2018, 1, 1), "asthma", "resolved"),
            _dx("h2", d(2024, 6, 1), "asthma"),  # diagnosed again: current, but not new
            _dx("h2", d(2020, 1, 1), "copd"),
            _dx("h2", AS_OF, "copd", "resolved"),  # resolved on T: not current
            _dx("h2", d(2020, 1, 1), "depression"),
            _dx("h2", d(2025, 1, 1), "depression", "resolved"),  # resolved after T: current
            _dx("h2", d(2021, 5, 5), "diabetes"),
            _dx("h2", d(2021, 5, 5), "diabetes", "resolved"),  # same day: not current
            _dx("h2", d(2023, 6, 1), "recorded_efi", value=0.19),
            _dx("h2", d(2024, 6, 1), "recorded_efi", value=0.27),
            _dx("h2", d(2024, 6, 1), "recorded_efi", value=0.31),  # same day: the highest
            _dx("h2", d(2025, 1, 1), "recorded_efi", value=0.5),  # after T
        ],
        "ae_attendances": [
            _ae("e1", "h1", datetime(2024, 12, 1, 10), "mental_health"),  # T - 30: outside 30d
            _ae("e2", "h1", datetime(2024, 11, 15, 10), "self_harm"),
            _ae("e3", "h1", datetime(2024, 6, 1, 10), "alcohol_drugs"),
            _ae("e4", "h1", datetime(2024, 10, 1, 10), "injury"),  # before the 90d window (T - 90 = 10-02)
            _ae("e5", "h1", datetime(2024, 12, 30, 10), "falls_collapse"),
            _ae("e6", "h1", datetime(2024, 2, 1, 10), "chest_pain"),
            _ae("e7", "h1", datetime(2025, 1, 2, 10), "mental_health"),  # after T
            _ae("e8", "h1", datetime(2024, 12, 15, 10), None),
        ],
    }


@pytest.fixture(scope="module")
def matrix(on_engine) -> pd.DataFrame:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hospital, "condition_prefix_list", lambda: CONDITION_PREFIXES)
        result = build_feature_matrix(on_engine(extract(rows())), AS_OF, FeatureSettings())
    return result.set_index("person_id")


def test_hospital_frailty_score_sums_distinct_categories_known_at_t(matrix):
    assert matrix.loc["h1", "hospital_frailty_score"] == pytest.approx(7.1 + 3.2 + 2.2)
    assert matrix.loc["h3", "hospital_frailty_score"] == 0


def test_charlson_index_drops_the_milder_form(matrix):
    assert matrix.loc["h1", "charlson_index"] == 10
    assert matrix.loc["h2", "charlson_index"] == 0


def test_hospital_conditions_not_on_the_gp_record(matrix):
    # Hospital: dementia, heart failure, diabetes (E119), cancer, CKD (E112: the longest prefix wins);
    # I110 is heart failure only (not hypertension by I11). GP current: heart failure only.
    assert matrix.loc["h1", "hospital_ltc_not_on_gp_record"] == 4
    assert matrix.loc["h1", "ltc_diabetes"] == 0 and matrix.loc["h1", "ltc_heart_failure"] == 1


def test_resolved_codes_end_a_condition_as_the_register_rules_count_it(matrix):
    h2 = matrix.loc["h2"]
    assert (h2["ltc_hypertension"], h2["ltc_copd"], h2["ltc_diabetes"]) == (0, 0, 0)
    assert (h2["ltc_asthma"], h2["ltc_depression"]) == (1, 1)
    assert h2["ltc_count"] == 2
    assert h2["new_conditions_365d"] == 0  # asthma first diagnosed in 2015
    assert h2["efi_score"] == pytest.approx(1 / 36)  # respiratory disease (asthma) only


def test_recorded_efi_is_the_latest_score_in_two_years(matrix):
    assert matrix.loc["h2", "recorded_efi"] == pytest.approx(0.31)
    assert math.isnan(matrix.loc["h1", "recorded_efi"])
    assert math.isnan(matrix.loc["h3", "recorded_efi"])


def test_recorded_efi_is_not_a_condition_or_deficit(matrix):
    # h1: heart failure only; the recorded_efi row adds no condition and no deficit.
    assert matrix.loc["h1", "ltc_count"] == 1
    assert matrix.loc["h1", "efi_score"] == pytest.approx(1 / 36)


def test_ae_complaint_groups_and_trend(matrix):
    h1 = matrix.loc["h1"]
    assert (h1["ae_mental_health_30d"], h1["ae_mental_health_90d"], h1["ae_mental_health_365d"]) == (0, 2, 3)
    # 4 attendances in the 90 days to T, 3 in the 275 days before.
    assert h1["ae_trend_90d"] == pytest.approx(4 - 3 * 90 / 275)
    assert matrix.loc["h3", "ae_trend_90d"] == 0


def test_reasons_read_well():
    assert reason_text("hospital_frailty_score", 7.4) == (
        "Hospital Frailty Risk Score 7.4 (intermediate risk) from hospital diagnoses in the last 2 years"
    )
    assert reason_text("hospital_frailty_score", 16).startswith(
        "Hospital Frailty Risk Score 16.0 (high risk)"
    )
    assert reason_text("recorded_efi", 0.31) == "Moderate frailty (recorded eFI 0.31)"
    assert reason_text("recorded_efi", math.nan) == "No eFI score recorded"
    assert reason_text("hospital_ltc_not_on_gp_record", 1) == (
        "1 long-term condition coded in hospital in the last 2 years but not on the GP record"
    )
    assert reason_text("ae_trend_90d", -1.25) == (
        "A&E attendances down by 1.2 in the last 3 months against the 9 months before"
    )


def test_shipped_lists_have_the_published_sizes():
    from riskstrat.ingest.codelists import codelist

    hfrs = codelist("icd10_hfrs")
    assert len(hfrs) == 109 and hfrs["code"].str.len().eq(3).all()
    assert hfrs.set_index("code").loc["F00", "value"] == "7.1"
    charlson = codelist("icd10_charlson")
    assert charlson["value"].nunique() == 17
    assert set(charlson["code"].str.len()) <= set(hospital.PREFIX_LENGTHS)


def test_an_extract_without_the_new_columns_still_builds():
    from riskstrat.features.backends import connect_duckdb, register_frames

    dropped = {
        "apc_spells": "diagnoses",
        "ae_attendances": "complaint_group",
        "gp_diagnoses": ["status", "value"],
    }
    frames = extract(rows())
    for name, columns in dropped.items():
        frames[name] = frames[name].drop_columns(columns if isinstance(columns, list) else [columns])
    built = build_feature_matrix(register_frames(connect_duckdb(), frames), AS_OF, FeatureSettings())
    h1 = built.set_index("person_id").loc["h1"]
    assert h1["hospital_frailty_score"] == pytest.approx(2.2)  # only hs4's primary diagnosis R54
    assert h1["ltc_diabetes"] == 1  # without a status column the resolved code reads as a diagnosis
    assert h1["ae_mental_health_365d"] == 0
    assert math.isnan(h1["recorded_efi"])
