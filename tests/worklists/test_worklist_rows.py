from datetime import date

import pandas as pd
import pytest
from worklist_fixtures import DUDLEY, WALSALL, context_of, lsoa_in, on_engine, social_care_frames

from riskstrat.errors import RiskstratError
from riskstrat.ingest.contract import COMMUNITY_SERVICE_CODES, SOCIAL_CARE_SERVICE_COMPONENTS
from riskstrat.ingest.social_care import known_local_authorities, social_care_returns
from riskstrat.ingest.sources.settings import SocialCareSettings
from riskstrat.pipelines import weekly
from riskstrat.worklists.rows import (
    COLUMN_NOTES,
    LAST_DECISION,
    SOCIAL_CARE,
    SUPPORT_WORDS,
    WORKLIST_ROWS,
    build_rows,
    frailty_label,
    returns_not_received,
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


SOCIAL_CARE_LISTED = ["A", "B", "C", "D", "F"]


def social_care_rows(frames, as_of=date(2025, 12, 31), settings=None):
    """The listed people's rows as the weekly run builds them from these tables (social care read on DuckDB)."""
    listed = pd.DataFrame(
        {
            "rank": range(1, len(SOCIAL_CARE_LISTED) + 1),
            "person_id": SOCIAL_CARE_LISTED,
            "practice_code": "P1",
            "probability": 0.5,
            "risk_band": "High",
        }
    )
    tables = on_engine(frames)
    returns = weekly.social_care_returns_at(tables, as_of, settings or SocialCareSettings())
    context = weekly.listed_context_reader(tables, as_of, returns)(listed["person_id"])
    features = pd.DataFrame({"person_id": SOCIAL_CARE_LISTED})
    change = pd.DataFrame({"change": [], "weeks_on_list": []})
    rows = build_rows(listed, features, pd.DataFrame(index=SOCIAL_CARE_LISTED), change, context, as_of, 1)
    return rows.set_index("Person ID"), returns


def test_social_care_shows_support_since_when_reablement_carer_and_missing_returns():
    rows, returns = social_care_rows(social_care_frames())
    worklist_rows_schema(1).check(rows.reset_index())
    care = rows[SOCIAL_CARE]
    # Two successive home care packages are one support, in place since the first began.
    assert care["A"] == "Long-term home care since Mar 2025; reablement ended 1 Dec"
    # The carer (client type carer) asked for support for themself 11 days ago.
    assert care["B"] == "Request for support 20 Dec; is an unpaid carer"
    # Dudley's Apr-Jun 2025 return is missing, but its Jul-Sep 2025 return (the latest due, 12 months)
    # covers it: known, as the features say; "About this list" still names the missing quarter.
    assert care["C"] == ""
    assert care["D"] == ""  # no social care record
    # The residential placement ended the day before; the assessment after the data date is not known.
    assert care["F"] == "Long-term nursing care since Dec 2025"
    # The expected authorities come from where people live (the setting was left empty).
    assert list(returns.latest) == [WALSALL, DUDLEY]
    assert returns.missing == [(DUDLEY, date(2025, 4, 1))]


def test_social_care_not_known_when_the_latest_return_due_is_missing_as_the_features_say():
    frames = social_care_frames()
    rows, returns = social_care_rows(frames, as_of=date(2026, 6, 29))
    # At 29 Jun 2026 the latest return due is Jan-Mar 2026 (due 30 May): Dudley's is missing, and
    # Oct-Dec 2025 was received; its older missing Apr-Jun 2025 is covered, so it is not named.
    assert rows.at["C", SOCIAL_CARE] == "Not known: Dudley's return for Jan-Mar 2026 not received"
    assert DUDLEY not in known_local_authorities(returns, date(2026, 6, 29))
    # At 31 Dec 2025 both authorities' Jul-Sep 2025 returns are in: known.
    assert known_local_authorities(returns, date(2025, 12, 31)) == {WALSALL, DUDLEY}
    # Walsall too is missing Jan-Mar 2026: what is known still follows the note.
    assert rows.at["A", SOCIAL_CARE] == (
        "Not known: Walsall's return for Jan-Mar 2026 not received; long-term home care since Mar 2025"
    )
    late = social_care_returns(frames["social_care_events"], [DUDLEY], date(2026, 12, 31))
    note = returns_not_received(DUDLEY, late, date(2026, 12, 31))
    assert note == "Not known: Dudley's returns for Jan-Mar 2026 to Jul-Sep 2026 not received"  # a run
    # An authority that sends no returns at all, and a person whose authority is not known.
    assert returns_not_received("E06000001", late, date(2026, 12, 31)) == (
        "Not known: no return from Hartlepool received"
    )
    assert returns_not_received(None, late, date(2026, 12, 31)) == ""


def test_social_care_for_people_living_outside_the_authorities_that_send_returns():
    # D lives in Hartlepool, from which the ICS receives no return: not known, not "no care".
    frames = social_care_frames(listed_lsoa={"D": lsoa_in("E06000001")})
    rows, returns = social_care_rows(frames, settings=SocialCareSettings(local_authorities=(WALSALL, DUDLEY)))
    assert "E06000001" not in returns.latest
    assert rows.at["D", SOCIAL_CARE] == "Not known: no return from Hartlepool received"
    assert rows.at["A", SOCIAL_CARE].startswith("Long-term home care")


def test_without_social_care_data_the_column_is_left_out():
    frames = {
        "patients": social_care_frames()["patients"],
        "apc_spells": pd.DataFrame(
            {"person_id": ["A"], "admission_date": ["2025-11-20"], "admission_method": ["21"]}
        ),
    }
    rows, returns = social_care_rows(frames)
    assert returns is None
    assert SOCIAL_CARE not in rows.columns
    worklist_rows_schema(1).check(rows.reset_index())


def test_only_the_listed_peoples_social_care_is_read(monkeypatch):
    seen = []

    def spy(events, *args, **kwargs):
        seen.append(events)
        return weekly_social_care_text(events, *args, **kwargs)

    weekly_social_care_text = weekly.social_care_text
    monkeypatch.setattr(weekly, "social_care_text", spy)
    rows, _ = social_care_rows(social_care_frames())
    (events,) = seen
    # Z's events fill every quarter but Z is not listed: none of them reaches the driver, nor later events.
    assert set(events["person_id"]) == {"A", "B", "C", "F"}
    assert (pd.to_datetime(events["event_start_date"]) <= pd.Timestamp(2025, 12, 31)).all()
    assert rows.at["F", SOCIAL_CARE] == "Long-term nursing care since Dec 2025"


def test_every_service_component_has_plain_words_and_the_note_says_where_care_comes_from():
    assert set(SUPPORT_WORDS) == set(SOCIAL_CARE_SERVICE_COMPONENTS)
    note = COLUMN_NOTES[SOCIAL_CARE]
    assert "Adult Social Care Client Level Data" in note and "Not known" in note
    assert "left out when the ICS supplies no social care data" in note
