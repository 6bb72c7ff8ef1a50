"""One definition of an emergency admission: the label, need, acute features and list context follow it.

The ADMISSION METHOD codes live once, in the data contract; editing them (here,
monkeypatched to ADMIMETH 21 alone) changes every use together, and the settings
fingerprints that key cached feature matrices.
"""

from __future__ import annotations

from datetime import date

import pytest
from feature_fixtures import AS_OF, arrow_table, extract, hand_worked_rows, memtables

from riskstrat.features.matrix import build_feature_matrix
from riskstrat.features.need import realised_need
from riskstrat.features.point_in_time import cohort_at
from riskstrat.features.settings import CohortSettings, FeatureSettings, OutcomeSettings
from riskstrat.features.status import listed_context_at
from riskstrat.ingest import contract


def _uses() -> dict[str, object]:
    """Every use of the definition on the hand-worked extract, for person p1."""
    frames = extract(hand_worked_rows())
    frames["caseload"] = arrow_table("caseload", [])
    tables = memtables(frames)
    matrix = build_feature_matrix(tables, AS_OF, FeatureSettings(), OutcomeSettings()).set_index("person_id")
    need = realised_need(cohort_at(tables, AS_OF, CohortSettings()), tables, AS_OF, OutcomeSettings())
    need = need.to_pandas().set_index("person_id")
    people = tables["patients"].filter(tables["patients"].person_id == "p1").select("person_id")
    context = listed_context_at(tables, people, AS_OF).to_pyarrow().to_pandas().set_index("person_id")
    return {
        "acute_30d": matrix.loc["p1", "emergency_admissions_30d"],  # s2, ADMIMETH 2A, 20 Dec
        "acute_90d": matrix.loc["p1", "emergency_admissions_90d"],  # s1 (21) and s2 (2A)
        "readmissions": matrix.loc["p1", "readmissions_30d_30d"],  # s2, 10 days after s1
        "label": matrix.loc["p1", "emergency_admission"],  # s4, ADMIMETH 22, June 2025
        "label_p9": matrix.loc["p9", "emergency_admission"],  # s7, ADMIMETH 24
        "need": need.loc["p1", "emergency_admissions_next_year"],  # s4
        "last_emergency": context.loc["p1", "last_emergency_admission"],  # s2 on 20 Dec 2024
        "feature_fingerprint": FeatureSettings().fingerprint(),
        "outcome_fingerprint": OutcomeSettings().fingerprint(),
    }


def test_editing_the_emergency_methods_changes_every_use_together(monkeypatch):
    before = _uses()
    assert {k: v for k, v in before.items() if "fingerprint" not in k} == {
        "acute_30d": 1,
        "acute_90d": 2,
        "readmissions": 1,
        "label": 1,
        "label_p9": 1,
        "need": 1,
        "last_emergency": date(2024, 12, 20),
    }
    monkeypatch.setattr(contract, "EMERGENCY_ADMISSION_METHODS", ("21",))
    after = _uses()
    assert {k: v for k, v in after.items() if "fingerprint" not in k} == {
        "acute_30d": 0,
        "acute_90d": 1,
        "readmissions": 0,
        "label": 0,
        "label_p9": 0,
        "need": 0,
        "last_emergency": date(2024, 12, 1),
    }
    assert after["feature_fingerprint"] != before["feature_fingerprint"]
    assert after["outcome_fingerprint"] != before["outcome_fingerprint"]


def test_the_emergency_methods_are_not_a_second_setting():
    with pytest.raises(ValueError, match="admission_methods"):
        OutcomeSettings.model_validate({"emergency_admission": {"admission_methods": ["21"]}})
