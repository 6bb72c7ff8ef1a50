"""The audit's evaluation columns at the test as-of date: realised need and hospital-coded conditions."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "features"))

from feature_fixtures import AS_OF, arrow_table, extract, memtables, patient

from riskstrat.features.matrix import build_feature_matrix
from riskstrat.features.settings import FeatureSettings, OutcomeSettings
from riskstrat.pipelines.features import need_at


def _spell(spell_id: str, person_id: str, admitted: date, discharged: date, diagnoses: str) -> dict:
    return {
        "spell_id": spell_id,
        "person_id": person_id,
        "admission_date": admitted,
        "discharge_date": discharged,
        "admission_method": "21",
        "primary_diagnosis": diagnoses.split(";")[0],
        "diagnoses": diagnoses,
    }


def _rows() -> dict[str, list[dict]]:
    return {
        "patients": [patient(p, date(1945, 1, 1)) for p in ("c1", "c2", "c3")],
        "apc_spells": [
            # Heart failure and COPD coded in hospital in the look-back.
            _spell("c1a", "c1", date(2024, 5, 1), date(2024, 5, 9), "I500;J449"),
            _spell("c2a", "c2", date(2024, 8, 1), date(2024, 8, 3), "I500"),
            # Discharged after T: not known at T.
            _spell("c3a", "c3", date(2025, 2, 1), date(2025, 2, 3), "J449"),
        ],
        "gp_diagnoses": [
            {"person_id": "c1", "event_date": date(2019, 1, 1), "condition": "heart_failure"},
        ],
    }


def test_hospital_coded_conditions_are_counted_for_the_audit_and_agree_with_the_gp_comparison(tmp_path):
    tables = extract(_rows())
    for name in ("apc_spells", "caseload"):
        pq.write_table(tables.get(name, arrow_table(name, [])), tmp_path / f"{name}.parquet")
    need = need_at.fn(
        tmp_path, AS_OF, pd.Series(["c1", "c2", "c3"]), FeatureSettings(), OutcomeSettings()
    ).set_index("person_id")
    matrix = build_feature_matrix(memtables(tables), AS_OF, FeatureSettings()).set_index("person_id")

    assert need["hospital_ltc_count"].to_dict() == {"c1": 2, "c2": 1, "c3": 0}
    # c1's heart failure is on the GP record, COPD is not; c2 has no GP record of its heart failure.
    assert matrix.loc["c1", "hospital_ltc_not_on_gp_record"] == 1
    assert matrix.loc["c2", "hospital_ltc_not_on_gp_record"] == 1
    assert (need["hospital_ltc_count"] >= matrix.loc[need.index, "hospital_ltc_not_on_gp_record"]).all()
    # Realised need is still there, next to it: c3's admission falls in the outcome window.
    assert need.loc["c3", "emergency_admissions_next_year"] == 1
    assert "hospital_ltc_count" not in matrix.columns
