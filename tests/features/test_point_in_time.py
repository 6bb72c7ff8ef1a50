"""Hand-worked status, list context and realised need at T, on every engine."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest
from feature_fixtures import AS_OF, arrow_table, extract, hand_worked_rows, memtables, patient

from riskstrat.features.need import realised_need
from riskstrat.features.point_in_time import cohort_at
from riskstrat.features.settings import CohortSettings, OutcomeSettings
from riskstrat.features.status import POPULATION_STATUS_COLUMNS, listed_context_at, population_status_at

T = date(2025, 12, 31)


def _status_rows() -> dict[str, list[dict]]:
    return {
        "patients": [
            patient("A", date(1950, 1, 1), practice_code="P1", date_of_death=date(2025, 12, 1)),
            patient("B", date(1950, 1, 1), practice_code="P1", registration_end=date(2025, 6, 1)),
            patient("C", date(1950, 1, 1), practice_code="P2", registration_end=date(2026, 3, 1)),
            patient("D", date(1950, 1, 1), practice_code="P1", date_of_death=T),
        ],
        "caseload": [
            {"person_id": "C", "team": "VW", "start_date": date(2025, 11, 1)},
            {"person_id": "C", "team": "PC", "start_date": date(2025, 1, 1), "end_date": date(2026, 2, 1)},
            {"person_id": "D", "team": "PC", "start_date": date(2025, 1, 1), "end_date": T},  # ended on T
            {"person_id": "B", "team": "DN", "start_date": date(2026, 1, 5)},  # starts after T
        ],
        "opt_outs": [
            {"person_id": "D", "type": "type1"},
            {"person_id": "C", "type": "ndo"},  # the National Data Opt-out does not count
            {"person_id": "E", "type": "type1"},  # not in patients
            {"person_id": "E", "type": "type1"},
        ],
    }


def _frames(rows: dict[str, list[dict]], names: tuple[str, ...]) -> dict:
    return {name: arrow_table(name, rows.get(name, [])) for name in names}


def _sorted(table) -> pd.DataFrame:
    return table.to_pandas().sort_values("person_id").reset_index(drop=True)


def test_population_status_at_t(on_engine):
    tables = on_engine(_frames(_status_rows(), ("patients", "caseload", "opt_outs")))
    status = _sorted(population_status_at(tables, T))
    assert list(status.columns) == list(POPULATION_STATUS_COLUMNS)
    assert status["person_id"].tolist() == ["A", "B", "C", "D", "E"]
    assert status["practice_code"].tolist()[:4] == ["P1", "P1", "P2", "P1"]
    assert pd.isna(status.loc[4, "practice_code"])
    assert status["deceased"].tolist() == [True, False, False, True, False]  # D died on T
    assert status["deregistered"].tolist() == [False, True, False, False, False]
    assert status["on_caseload"].tolist() == [False, False, True, False, False]
    assert status.loc[2, "caseload_team"] == "PC, VW"  # every team, sorted
    assert status["caseload_team"].isna().tolist() == [True, True, False, True, True]
    assert status["type1_opt_out"].tolist() == [False, False, False, True, True]
    assert all(status[c].dtype == bool for c in ("deceased", "deregistered", "on_caseload", "type1_opt_out"))


def test_population_status_without_caseload_or_opt_outs(on_engine):
    tables = on_engine(_frames(_status_rows(), ("patients",)))
    status = _sorted(population_status_at(tables, T))
    assert status["person_id"].tolist() == ["A", "B", "C", "D"]
    assert not status["on_caseload"].any() and not status["type1_opt_out"].any()
    assert status["caseload_team"].isna().all()


def _context_rows() -> dict[str, list[dict]]:
    def spell(spell_id, person_id, admitted, method):
        return {
            "spell_id": spell_id,
            "person_id": person_id,
            "admission_date": admitted,
            "admission_method": method,
        }

    def attendance(attendance_id, person_id, arrival):
        return {
            "attendance_id": attendance_id,
            "person_id": person_id,
            "arrival_datetime": arrival,
            "disposal": "left",
        }

    def contact(person_id, day, service):
        return {"person_id": person_id, "contact_date": day, "service": service}

    return {
        "apc_spells": [
            spell("s1", "A", date(2025, 3, 1), "21"),
            spell("s2", "A", date(2025, 11, 20), "2A"),
            spell("s3", "A", date(2025, 12, 1), "11"),  # elective: not an emergency admission
            spell("s4", "A", date(2026, 1, 2), "21"),  # after T
            spell("s5", "C", T, "28"),  # on T: counts
        ],
        "ae_attendances": [
            attendance("a1", "A", datetime(2025, 12, 31, 23, 59)),
            attendance("a2", "A", datetime(2026, 1, 1, 0, 1)),  # after T
            attendance("a3", "C", datetime(2025, 10, 1, 10, 0)),
        ],
        "community_contacts": [
            contact("A", T, "district_nursing"),
            contact("A", date(2025, 10, 2), "district_nursing"),  # T - 90: outside the window
            contact("A", date(2025, 10, 3), "falls"),
            contact("A", date(2025, 12, 1), "virtual_ward"),
            contact("A", date(2025, 12, 2), "virtual_ward"),
            contact("A", date(2026, 1, 1), "therapy"),  # after T
            contact("C", date(2025, 1, 1), "therapy"),  # long ago
        ],
    }


def _people(on_engine, ids: list[str]):
    return on_engine({"patients": arrow_table("patients", [patient(p, date(1950, 1, 1)) for p in ids])})[
        "patients"
    ]


def test_listed_context_at_t(on_engine):
    tables = on_engine(_frames(_context_rows(), ("apc_spells", "ae_attendances", "community_contacts")))
    context = _sorted(listed_context_at(tables, _people(on_engine, ["A", "C", "F"]), T)).set_index(
        "person_id"
    )
    for column in ("last_emergency_admission", "last_ae_attendance"):
        context[column] = pd.to_datetime(context[column]).dt.date
    assert context.loc["A", "last_emergency_admission"] == date(2025, 11, 20)
    assert context.loc["C", "last_emergency_admission"] == T
    assert pd.isna(context.loc["F", "last_emergency_admission"])
    assert context.loc["A", "last_ae_attendance"] == T  # 23:59 on T
    assert context.loc["C", "last_ae_attendance"] == date(2025, 10, 1)
    assert pd.isna(context.loc["F", "last_ae_attendance"])
    assert context["community_services"].to_dict() == {
        "A": "District nursing (1), Falls (1), Virtual ward (2)",
        "C": "",
        "F": "",
    }


def test_listed_context_without_event_tables(on_engine):
    context = _sorted(listed_context_at({}, _people(on_engine, ["A", "C"]), T))
    assert list(context.columns) == ["person_id", "last_emergency_admission", "last_ae_attendance"]
    assert context["last_emergency_admission"].isna().all() and context["last_ae_attendance"].isna().all()


def test_realised_need_in_the_outcome_window(on_engine):
    rows = hand_worked_rows()
    rows["caseload"] = [
        {
            "person_id": "p1",
            "team": "VW",
            "start_date": date(2025, 12, 31),
        },  # starts on the window's last day
        {"person_id": "p9", "team": "VW", "start_date": date(2024, 1, 1), "end_date": AS_OF},  # ended on T
        {"person_id": "p2", "team": "VW", "start_date": date(2026, 1, 1)},  # after the window
    ]
    tables = on_engine({**extract(rows), "caseload": arrow_table("caseload", rows["caseload"])})
    people = cohort_at(tables, AS_OF, CohortSettings())
    need = _sorted(realised_need(people, tables, AS_OF, OutcomeSettings())).set_index("person_id")
    # p1: s4 (22) in the window; bed days s2 clipped to (T, 5 Jan] = 5 plus s4's 2.
    assert need.loc["p1"].tolist() == [1, 7, 1]
    assert need.loc["p2"].tolist() == [0, 0, 0]
    assert need.loc["p5"].tolist() == [0, 0, 0]  # admitted and discharged on T; s6 on T + 366
    assert need.loc["p9"].tolist() == [1, 1, 0]


@pytest.mark.parametrize(
    ("birth", "alive_registered", "expected"),
    [(date(2007, 1, 1), True, False), (date(2006, 12, 31), True, True), (date(1950, 1, 1), False, False)],
)
def test_cohort_is_alive_registered_and_old_enough(birth, alive_registered, expected):
    extra = {} if alive_registered else {"registration_end": AS_OF}
    frames = extract({"patients": [patient("x", birth, **extra)]})
    people = cohort_at(memtables(frames), AS_OF, CohortSettings()).to_pandas()
    assert (len(people) == 1) is expected
