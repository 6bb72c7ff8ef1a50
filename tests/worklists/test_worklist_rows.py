from datetime import date

import pandas as pd
import pytest
from worklist_fixtures import context_of

from riskstrat.errors import RiskstratError
from riskstrat.ingest.contract import COMMUNITY_SERVICE_CODES
from riskstrat.worklists.rows import (
    COLUMN_NOTES,
    LAST_DECISION,
    WORKLIST_ROWS,
    build_rows,
    frailty_label,
    worklist_rows_schema,
)


def test_rows_show_context_in_plain_words():
    listed = pd.DataFrame(
        {
            "rank": [1, 2],
            "person_id": ["A", "B"],
            "practice_code": ["P1", "P1"],
            "probability": [0.4567, 0.2],
            "risk_band": ["Very high", "High"],
            "caseload_team": ["VW North", pd.NA],
        }
    )
    features = pd.DataFrame(
        {
            "person_id": ["B", "A"],
            "age_band": ["65-74", "85+"],
            "sex": ["1", "2"],
            "efi_category": [0, 3],
            "efi_score": [0.05, 0.42],
            "ltc_count": [0, 6],
            "ltc_diabetes": [0, 1],
            "ltc_copd": [0, 1],
            "ltc_heart_failure": [0, 1],
            "ltc_dementia": [0, 1],
            "ltc_hypertension": [0, 1],
            "ltc_asthma": [0, 1],
            "care_home": [0, 1],
            "ae_attendances_365d": [0, 4],
            "community_district_nursing_90d": [0, 3],
            "community_falls_90d": [0, 1],
            "days_since_last_ae": [None, 10],
        }
    )
    reasons = pd.DataFrame(
        {"reason_1": ["Aged 90", ""], "reason_2": ["", ""], "reason_3": ["", ""]}, index=["A", "B"]
    )
    change = pd.DataFrame({"change": ["up", "new"], "weeks_on_list": [3, 1]}, index=["A", "B"])
    spells = pd.DataFrame(
        {
            "person_id": ["A", "A", "A"],
            "admission_date": ["2025-03-01", "2025-11-20", "2025-12-01"],
            "admission_method": ["21", "2A", "11"],
        }
    )
    context = context_of({"apc_spells": spells}, date(2025, 12, 31))(listed["person_id"])
    rows = build_rows(listed, features, reasons, change, context, date(2025, 12, 31), 3, flag_caseload=True)
    a = rows.iloc[0]
    assert a["Risk (%)"] == 45.7 and a["Sex"] == "Female" and a["Frailty"] == "Severe (eFI 0.420)"
    assert a["Long-term conditions"] == 6
    assert a["Main long-term conditions"] == "Hypertension, Diabetes, COPD, Asthma +2 more"
    assert a["Care home"] == "Yes" and a["A&E attendances (12 months)"] == 4
    assert a["Last emergency admission"] == date(2025, 11, 20)  # the elective spell on 1 Dec does not count
    # The rows are the frame the export reads: the schema with three reason columns, nothing else.
    assert worklist_rows_schema(3).check(rows) is rows
    with pytest.raises(RiskstratError, match="unexpected column"):
        WORKLIST_ROWS.check(rows)
    with pytest.raises(
        RiskstratError, match=r"worklist rows.Rank: 1 row\(s\) are not whole numbers"
    ) as caught:
        worklist_rows_schema(3).check(rows.assign(Rank=[1, 1.5]))
    assert caught.value.details == "e.g. Person ID B"
    assert a["Community services (90 days)"] == "District nursing (3), Falls (1)"
    assert a["On caseload"] == "VW North" and a["Change since last week"] == "up" and a["Weeks on list"] == 3
    b = rows.iloc[1]
    assert b["Main long-term conditions"] == "" and b["Last emergency admission"] is None
    assert b["Sex"] == "Male" and b["Frailty"] == "Fit (eFI 0.050)"


def test_frailty_label_at_the_severe_boundary_reads_above_the_moderate_cut_off():
    # 13 of 36 deficits (0.361) is severe; two decimals would show 0.36, moderate's upper bound.
    labels = frailty_label(pd.Series([3, 2]), pd.Series([13 / 36, 12 / 36]))
    assert labels.tolist() == ["Severe (eFI 0.361)", "Moderate (eFI 0.333)"]


def test_community_services_come_from_the_extract_for_every_service_over_90_days():
    listed = pd.DataFrame(
        {
            "rank": [1, 2],
            "person_id": ["A", "B"],
            "practice_code": ["P1", "P1"],
            "probability": [0.5, 0.4],
            "risk_band": ["High", "High"],
        }
    )
    # The features count district nursing only; virtual ward and therapy are in the extract.
    features = pd.DataFrame({"person_id": ["A", "B"], "community_district_nursing_90d": [3, 0]})
    contacts = pd.DataFrame(
        {
            "person_id": ["A"] * 7 + ["B", "B", "C"],
            "contact_date": [
                *["2025-12-01", "2025-12-08", "2025-12-15", "2025-12-22"],  # virtual ward x4
                "2025-10-03",  # district nursing, first day of the window (T-89)
                "2025-10-02",  # therapy on T-90: outside (T-90, T]
                "2026-01-01",  # district nursing after the data date
                "2025-12-31",  # therapy on the data date
                "2025-11-11",  # urgent community response
                "2025-12-01",  # C is not listed
            ],
            "service": [
                *["virtual_ward"] * 4,
                "district_nursing",
                "therapy",
                "district_nursing",
                "therapy",
                "urgent_community_response",
                "virtual_ward",
            ],
        }
    )
    as_of = date(2025, 12, 31)
    context = context_of({"community_contacts": contacts}, as_of)(listed["person_id"])
    empty = pd.DataFrame({"change": [], "weeks_on_list": []})
    rows = build_rows(listed, features, pd.DataFrame(index=["A", "B"]), empty, context, as_of, 1)
    assert rows["Community services (90 days)"].tolist() == [
        "District nursing (1), Virtual ward (4)",  # contract order
        "Urgent community response (1), Therapy (1)",
    ]
    assert list(context.index) == ["A", "B"]


def test_column_notes_name_every_community_service_and_no_config_file():
    community = COLUMN_NOTES["Community services (90 days)"]
    assert all(s.replace("_", " ") in community for s in COMMUNITY_SERVICE_CODES)
    assert not any("configs/" in note or ".yaml" in note for note in COLUMN_NOTES.values())
    assert COLUMN_NOTES["Sex"].startswith("Sex or gender as recorded by the practice")


def test_frailty_label_names_a_practice_recorded_score_apart_from_the_computed_efi():
    labels = frailty_label(pd.Series([3, 1]), pd.Series([0.42, 0.15]), pd.Series([0.31, float("nan")]))
    assert labels.tolist() == ["Severe (eFI 0.420); practice score 0.31", "Mild (eFI 0.150)"]


def test_rows_show_the_last_mdt_decision_and_gp_appointments_when_known():
    listed = pd.DataFrame(
        {
            "rank": [1, 2],
            "person_id": ["A", "B"],
            "practice_code": ["P1", "P1"],
            "probability": [0.8, 0.7],
            "risk_band": ["Very high", "High"],
            "last_decision": pd.array(["Not appropriate now", pd.NA], dtype="string"),
            "last_decision_date": [date(2025, 12, 29), None],
        }
    )
    features = pd.DataFrame({"person_id": ["A", "B"], "gp_appointments_365d": [26, 3]})
    reasons = pd.DataFrame({"reason_1": ["", ""]}, index=["A", "B"])
    change = pd.DataFrame({"change": ["same", "new"], "weeks_on_list": [2, 1]}, index=["A", "B"])
    rows = build_rows(listed, features, reasons, change, None, date(2025, 12, 31), 1)
    assert rows[LAST_DECISION].tolist() == ["Not appropriate now (29/12/2025)", ""]
    assert rows["GP appointments (12 months)"].tolist() == [26, 3]
    worklist_rows_schema(1).check(rows)
    # Before any decision has come back (no such columns), and without the GP feature: blank, absent.
    bare = build_rows(
        listed.drop(columns=["last_decision", "last_decision_date"]),
        features.drop(columns="gp_appointments_365d"),
        reasons,
        change,
        None,
        date(2025, 12, 31),
        1,
    )
    assert bare[LAST_DECISION].tolist() == ["", ""] and "GP appointments (12 months)" not in bare
    worklist_rows_schema(1).check(bare)
