"""The worklists' status and context as the weekly run computes them: the Ibis point-in-time engine, shaped."""

from __future__ import annotations

from datetime import date

import pandas as pd
from worklist_fixtures import context_of, status_of

from riskstrat.features.backends import connect_duckdb
from riskstrat.io import write_parquet
from riskstrat.pipelines.weekly import listed_context_reader, point_in_time_tables, population_status_task

T = date(2025, 12, 31)


def test_population_status_sorted_by_person_with_types_and_absent_opt_outs():
    patients = pd.DataFrame(
        {
            "person_id": ["D", "A", "C", "B"],
            "practice_code": ["P1", "P1", None, "P2"],
            "registration_end": [None, "2025-06-01", "2026-03-01", None],
            "date_of_death": [None, None, None, pd.Timestamp("2025-12-31 10:00")],
        }
    )
    caseload = pd.DataFrame(
        {
            "person_id": ["C", "C", "A"],
            "team": ["VW", "PC", "DN"],
            "start_date": ["2025-11-01", "2025-01-01", "2026-01-02"],
            "end_date": [None, None, None],
        }
    )
    opt_outs = pd.DataFrame({"person_id": ["Z", "D", "Y", "Z"], "type": ["type1", "type1", "ndo", "type1"]})
    status = status_of(patients, caseload, opt_outs, T)
    expected = pd.DataFrame(
        {
            "person_id": ["A", "B", "C", "D", "Z"],
            "practice_code": ["P1", "P2", None, "P1", None],
            "deceased": [False, True, False, False, False],  # B died on T (the time of day is ignored)
            "deregistered": [True, False, False, False, False],
            "on_caseload": [False, False, True, False, False],
            "caseload_team": pd.array([pd.NA, pd.NA, "PC, VW", pd.NA, pd.NA], dtype="string"),
            "type1_opt_out": [False, False, False, True, True],
        }
    )
    pd.testing.assert_frame_equal(
        status.drop(columns="practice_code"),
        expected.drop(columns="practice_code"),
        check_dtype=False,  # person_id: any text dtype
    )
    assert status["practice_code"].iloc[[0, 1, 3]].tolist() == ["P1", "P2", "P1"]
    assert status["practice_code"].iloc[[2, 4]].isna().all()
    assert status["caseload_team"].dtype == "string"
    assert all(status[c].dtype == bool for c in ("deceased", "deregistered", "on_caseload", "type1_opt_out"))


def test_population_status_with_only_patients():
    patients = pd.DataFrame({"person_id": [2, 1], "practice_code": ["P1", "P1"]})
    status = status_of(patients, None, pd.DataFrame({"person_id": [], "type": []}, dtype=object), T)
    assert status["person_id"].tolist() == ["1", "2"]
    assert not status[["deceased", "deregistered", "on_caseload", "type1_opt_out"]].to_numpy().any()
    assert status["caseload_team"].isna().all()


def test_listed_context_by_listed_person_in_listed_order():
    spells = pd.DataFrame(
        {
            "person_id": ["A", "A", "B", "B"],
            "admission_date": ["2025-03-01", "2026-01-01", "2025-12-31", "2025-12-30"],
            "admission_method": ["21", "21", "11", "28"],
        }
    )
    attendances = pd.DataFrame(
        {
            "person_id": ["B", "A"],
            "arrival_datetime": pd.to_datetime(["2025-12-31 23:59", "2026-01-01 00:00"]).tz_localize(
                "Europe/London"
            ),
        }
    )
    contacts = pd.DataFrame(
        {
            "person_id": ["A", "A", "A", "B"],
            "contact_date": ["2025-12-31", "2025-12-30", "2025-10-02", "2025-11-01"],
            "service": ["virtual_ward", "district_nursing", "falls", "unknown_service"],
        }
    )
    read = context_of(
        {"apc_spells": spells, "ae_attendances": attendances, "community_contacts": contacts}, T
    )
    context = read(pd.Series(["B", "C", "A", "B"]))
    assert context.index.tolist() == ["B", "C", "A"]
    assert context.index.name == "person_id"
    assert context.loc["A", "last_emergency_admission"] == date(2025, 3, 1)
    assert context.loc["B", "last_emergency_admission"] == date(2025, 12, 30)  # ADMIMETH 28, an emergency
    assert pd.isna(context.loc["C", "last_emergency_admission"])
    assert context.loc["B", "last_ae_attendance"] == T and pd.isna(context.loc["A", "last_ae_attendance"])
    assert context["community_services"].tolist() == ["", "", "District nursing (1), Virtual ward (1)"]
    assert context["community_services"].dtype == object
    assert context_of({"apc_spells": None, "ae_attendances": None}, T) is None  # rows use the features
    without = context_of({"apc_spells": spells.iloc[0:0]}, T)(pd.Series(["A"]))
    assert list(without.columns) == ["last_emergency_admission", "last_ae_attendance"]
    assert without.isna().all().all()


def test_weekly_run_reads_status_from_the_extract_files_leaving_out_missing_tables(tmp_path):
    """The flow's own path: the extract's files on the feature backend, only the tables the gate found."""
    patients = pd.DataFrame(
        {
            "person_id": ["B", "A"],
            "birth_date": [date(1940, 1, 1)] * 2,
            "sex": ["1", "2"],
            "lsoa_code": ["E01000001"] * 2,
            "practice_code": ["P1", "P2"],
            "date_of_death": [None, date(2025, 12, 1)],
        }
    )
    write_parquet(patients, tmp_path / "patients.parquet")
    write_parquet(pd.DataFrame({"person_id": ["B"], "type": ["type1"]}), tmp_path / "opt_outs.parquet")
    tables = point_in_time_tables(
        connect_duckdb(), tmp_path, {"patients": 2, "opt_outs": 1, "gp_diagnoses": 0}
    )
    assert set(tables) == {"patients", "opt_outs"}
    status = population_status_task.fn(tables, T)
    assert status["person_id"].tolist() == ["A", "B"]
    assert status["deceased"].tolist() == [True, False]
    assert status["type1_opt_out"].tolist() == [False, True]
    assert listed_context_reader(tables, T) is None  # no event table: the rows use the features
