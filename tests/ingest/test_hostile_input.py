"""Hostile and broken extracts (issue 16): each class of failure stops the gate clearly, or passes rightly.

Each test asserts the verdict, that the table and column are named, the row
count, and that no NHS number or date of birth appears in what the user sees
(the terminal message) or in the validation report.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_validation import EXTRACT_DATE, N_PEOPLE, SETTINGS, valid_tables, write_extract

from riskstrat.errors import ContractError
from riskstrat.ingest.readers import escape_text, nhs_number_like, read_table
from riskstrat.ingest.validation_settings import ValidationSettings
from riskstrat.pipelines.validate import run_validation, validation_gate

PERSON_TABLES = (
    "patients",
    "gp_diagnoses",
    "gp_appointments",
    "gp_medications",
    "community_contacts",
    "ae_attendances",
    "apc_spells",
    "caseload",
    "opt_outs",
)


@pytest.fixture(autouse=True)
def _skip_data_docs(skip_data_docs):
    """Data Docs are tested in test_validation.py; these tests are about the checks."""


@pytest.fixture
def skip_data_docs(monkeypatch):
    import riskstrat.ingest.validation as validation

    monkeypatch.setattr(
        validation, "build_data_docs", lambda context, docs_dir: Path(docs_dir) / "index.html"
    )


def nhs_numbers(n: int) -> list[str]:
    """``n`` distinct ten-digit numbers with a valid NHS number check digit."""
    found: list[str] = []
    base = 401_023_213
    while len(found) < n:
        digits = [int(c) for c in f"{base:09d}"]
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            found.append(f"{base:09d}{check}")
        base += 7919
    return found


def _rename_people(tables: dict[str, pd.DataFrame], names: dict[str, str]) -> None:
    for name in PERSON_TABLES:
        frame = tables[name].copy()
        frame["person_id"] = frame["person_id"].map(names)
        tables[name] = frame


def _gate_fails(folder: Path, output_dir: Path) -> tuple[ContractError, str]:
    """Run the gate expecting a stop; return the error and the saved report's text."""
    with pytest.raises(ContractError) as caught:
        validation_gate.fn(folder, output_dir, SETTINGS, EXTRACT_DATE)
    return caught.value, (output_dir / "validation" / "latest.json").read_text()


def _problem(error: ContractError, table: str, column: str):
    found = [p for p in error.problems if (p.table, p.column) == (table, column)]
    assert found, error.message
    where = f"{table}.{column}" if column else table
    assert where in error.message and where in str(error)  # named on the terminal and in the logs
    return found[0]


def _no_identifiers_or_births(
    error: ContractError, report_text: str, tables: dict[str, pd.DataFrame]
) -> None:
    """Neither the terminal message, the log text nor the report holds a date of birth or NHS number."""
    for text in (error.message, str(error), report_text):
        for birth in tables["patients"]["birth_date"].dropna().astype(str):
            assert birth[:10] not in text
        words = pd.Series(text.replace(",", " ").replace("=", " ").replace("'", " ").split())
        shapes = words.str.fullmatch(r"[9 ]+")  # a shape such as 9999999999 is shown, never a value
        assert not (nhs_number_like(words) & ~shapes).any(), text


def _failed_kinds(report_text: str) -> set[tuple[str, str, str]]:
    report = json.loads(report_text)
    return {
        (r["table"], r["column"], r["kind"])
        for r in report["results"]
        if not r["passed"] and r["severity"] == "critical"
    }


# ----------------------------------------------------------------------------- time zones


def _as_utc(values: pd.Series) -> pd.Series:
    """London wall-clock text as UTC instants, as Spark or Databricks store them."""
    return pd.to_datetime(values).dt.tz_localize("Europe/London").dt.tz_convert("UTC")


def test_utc_parquet_timestamps_read_as_london_wall_clock_in_gate_and_features(tmp_path):
    naive = valid_tables()
    aware = valid_tables()
    ae = aware["ae_attendances"].copy()
    for column in ("arrival_datetime", "departure_datetime"):
        ae[column] = _as_utc(ae[column])
    aware["ae_attendances"] = ae
    patients = aware["patients"].copy()
    # Births in British Summer Time: midnight in London is 23:00 UTC the day before.
    patients["birth_date"] = _as_utc(patients["birth_date"])
    aware["patients"] = patients
    naive_dir = write_extract(tmp_path / "naive", naive, csv=())
    aware_dir = write_extract(tmp_path / "aware", aware, csv=())

    expected = run_validation(naive_dir, tmp_path / "out1", SETTINGS, EXTRACT_DATE)
    report = run_validation(aware_dir, tmp_path / "out2", SETTINGS, EXTRACT_DATE)
    assert report.passed, [r.problem().describe() for r in report.critical_failures]
    for name in ("patients", "ae_attendances"):
        pd.testing.assert_frame_equal(report.tables[name], expected.tables[name])

    from riskstrat.features.backends import connect, read_extract
    from riskstrat.features.matrix import build_feature_matrix
    from riskstrat.features.settings import FeatureSettings

    as_of = date(2025, 1, 1)
    settings = FeatureSettings()
    read = {
        folder: read_extract(connect(settings), folder, ("patients", "ae_attendances"))
        for folder in (naive_dir, aware_dir)
    }
    for name in ("patients", "ae_attendances"):
        pd.testing.assert_frame_equal(
            read[aware_dir][name].to_pandas(), read[naive_dir][name].to_pandas(), check_dtype=False
        )
    pd.testing.assert_frame_equal(
        build_feature_matrix(read_extract(connect(settings), aware_dir), as_of, settings),
        build_feature_matrix(read_extract(connect(settings), naive_dir), as_of, settings),
    )


def test_csv_date_times_with_utc_offsets_are_london_wall_clock(tmp_path):
    tables = valid_tables()
    ae = tables["ae_attendances"].copy()
    ae.loc[6, "arrival_datetime"] = "2024-07-07T09:15:00Z"  # BST: 10:15 in London
    ae.loc[7, "arrival_datetime"] = "2024-08-08T10:15:00+01:00"
    ae.loc[8, "arrival_datetime"] = "2024-09-09 10:15:00+0100"
    tables["ae_attendances"] = ae
    folder = write_extract(tmp_path / "extract", tables)
    report = run_validation(folder, tmp_path / "out", SETTINGS, EXTRACT_DATE)
    assert report.passed, [r.problem().describe() for r in report.critical_failures]
    arrivals = report.tables["ae_attendances"]["arrival_datetime"]
    assert arrivals.iloc[6] == pd.Timestamp("2024-07-07 10:15")
    assert arrivals.iloc[7] == pd.Timestamp("2024-08-08 10:15")
    assert arrivals.iloc[8] == pd.Timestamp("2024-09-09 10:15")

    from riskstrat.features.backends import connect, read_extract

    features = read_extract(connect(), folder, ("ae_attendances",))["ae_attendances"].to_pandas()
    assert features["arrival_datetime"].iloc[6:9].tolist() == arrivals.iloc[6:9].tolist()


def test_python_date_times_in_mixed_zones_are_london_wall_clock():
    import datetime as dt
    from zoneinfo import ZoneInfo

    from riskstrat.ingest.contract import CONTRACT
    from riskstrat.ingest.readers import RawTable, coerce_chunk

    arrivals = [
        dt.datetime(2024, 7, 1, 9, 0, tzinfo=dt.UTC),
        dt.datetime(2024, 7, 1, 11, 0, tzinfo=ZoneInfo("Europe/Paris")),
        dt.datetime(2024, 7, 1, 10, 0),  # naive: London already
        None,
    ]
    frame = pd.DataFrame(
        {
            "attendance_id": ["A1", "A2", "A3", "A4"],
            "person_id": ["P1"] * 4,
            "arrival_datetime": pd.Series(arrivals, dtype=object),
            "disposal": ["left"] * 4,
        }
    )
    typed, failures = coerce_chunk(RawTable(CONTRACT["ae_attendances"], Path("ae.parquet"), frame))
    assert failures == []
    assert typed["arrival_datetime"].iloc[:3].tolist() == [pd.Timestamp("2024-07-01 10:00")] * 3
    assert pd.isna(typed["arrival_datetime"].iloc[3])


def test_a_date_time_that_cannot_be_normalised_names_table_column_rows_and_shape(tmp_path):
    tables = valid_tables()
    ae = tables["ae_attendances"].copy()
    ae.loc[[3, 4], "arrival_datetime"] = "2024-04-04T10:00:00+25:00"  # no such offset
    tables["ae_attendances"] = ae
    error, report_text = _gate_fails(write_extract(tmp_path / "extract", tables), tmp_path / "out")
    problem = _problem(error, "ae_attendances", "arrival_datetime")
    assert problem.n_rows == 2 and "9999-99-99A99:99:99+99:99" in problem.expected
    assert problem.examples == ("attendance_id=A0003", "attendance_id=A0004")
    assert ("ae_attendances", "arrival_datetime", "types_parse") in _failed_kinds(report_text)
    assert "2024-04-04" not in error.message


# ----------------------------------------------------------------------------- files


def test_two_files_for_one_table_is_an_error_naming_both(tmp_path):
    tables = valid_tables()
    folder = write_extract(tmp_path / "extract", tables)
    stale = tables["patients"].iloc[:10]
    stale.to_csv(folder / "patients.csv", index=False)  # a stale export left beside the Parquet
    error, report_text = _gate_fails(folder, tmp_path / "out")
    problem = _problem(error, "patients", "")
    assert "patients.parquet" in problem.expected and "patients.csv" in problem.expected
    assert ("patients", "", "table_present") in _failed_kinds(report_text)

    from riskstrat.features.backends import find_table_file

    with pytest.raises(ContractError, match=r"patients\.parquet and patients\.csv"):
        find_table_file(folder, "patients")


def test_a_csv_that_is_not_utf8_is_reported_as_such(tmp_path):
    folder = write_extract(tmp_path / "extract", valid_tables())
    path = folder / "gp_appointments.csv"
    path.write_bytes(path.read_text().replace("telephone", "t\u00e9l\u00e9phone", 1).encode("latin-1"))
    error, _ = _gate_fails(folder, tmp_path / "out")
    assert "UTF-8" in _problem(error, "gp_appointments", "").expected


def test_a_column_named_twice_is_an_error_not_a_silent_choice(tmp_path):
    folder = write_extract(tmp_path / "extract", valid_tables())
    path = folder / "gp_appointments.csv"
    lines = path.read_text().splitlines()
    # A second appointment_date column, as when two exports are pasted side by side.
    lines = [f"{line},appointment_date" if i == 0 else f"{line},1999-01-01" for i, line in enumerate(lines)]
    path.write_text("\n".join(lines) + "\n")
    error, report_text = _gate_fails(folder, tmp_path / "out")
    problem = _problem(error, "gp_appointments", "")
    assert "appointment_date more than once" in problem.expected
    assert ("gp_appointments", "", "table_present") in _failed_kinds(report_text)


# ----------------------------------------------------------------------------- IDs


def test_person_ids_shaped_like_nhs_numbers_fail_without_being_shown(tmp_path):
    tables = valid_tables()
    people = tables["patients"]["person_id"].tolist()
    numbers = nhs_numbers(N_PEOPLE)
    _rename_people(tables, dict(zip(people, numbers, strict=True)))
    spaced = tables["gp_medications"].copy()  # one source writes them 3-3-4 with spaces
    spaced["person_id"] = spaced["person_id"].str.replace(r"^(\d{3})(\d{3})(\d{4})$", r"\1 \2 \3", regex=True)
    tables["gp_medications"] = spaced
    error, report_text = _gate_fails(write_extract(tmp_path / "extract", tables), tmp_path / "out")
    problem = _problem(error, "patients", "person_id")
    assert problem.n_rows == N_PEOPLE and problem.examples == ("person_id=9999999999",)
    assert "NHS number" in problem.expected
    medications = _problem(error, "gp_medications", "person_id")
    assert "person_id=999 999 9999" in medications.examples
    assert _problem(error, "apc_spells", "person_id").examples[0] == "spell_id=S0000"
    assert {("patients", "person_id", "id_not_nhs_number")} <= _failed_kinds(report_text)
    _no_identifiers_or_births(error, report_text, tables)
    for number in numbers:
        assert number not in report_text and number not in error.message


def test_random_ten_digit_pseudonyms_pass(tmp_path):
    tables = valid_tables()
    rng = np.random.default_rng(16)
    pseudonyms = [f"{x:010d}" for x in rng.integers(10**9, 10**10, N_PEOPLE)]
    assert nhs_number_like(pd.Series(pseudonyms)).sum() < N_PEOPLE / 2  # about 1 in 11 by chance
    _rename_people(tables, dict(zip(tables["patients"]["person_id"], pseudonyms, strict=True)))
    report = run_validation(
        write_extract(tmp_path / "extract", tables), tmp_path / "out", SETTINGS, EXTRACT_DATE
    )
    assert report.passed, [r.problem().describe() for r in report.critical_failures]


def test_spaces_around_ids_fail_rather_than_being_trimmed(tmp_path):
    tables = valid_tables()
    medications = tables["gp_medications"].copy()
    medications.loc[3, "person_id"] = "P003 "  # trimming would silently match P003
    medications.loc[4, "person_id"] = " P004"
    tables["gp_medications"] = medications
    error, report_text = _gate_fails(write_extract(tmp_path / "extract", tables), tmp_path / "out")
    problem = _problem(error, "gp_medications", "person_id")
    assert problem.n_rows == 2
    assert problem.examples == ("person_id='P003 '", "person_id=' P004'")
    assert ("gp_medications", "person_id", "text_trimmed") in _failed_kinds(report_text)
    _no_identifiers_or_births(error, report_text, tables)


# ----------------------------------------------------------------------------- codes


def test_codes_stored_as_numbers_in_parquet_fail(tmp_path):
    tables = valid_tables()
    medications = tables["gp_medications"].copy()
    medications["bnf_code"] = medications["bnf_code"].astype(int)  # 0205 -> 205
    tables["gp_medications"] = medications
    error, report_text = _gate_fails(write_extract(tmp_path / "extract", tables), tmp_path / "out")
    problem = _problem(error, "gp_medications", "bnf_code")
    assert problem.n_rows == N_PEOPLE
    assert "stored as a number: leading zeros lost; store as text" in problem.expected
    assert ("gp_medications", "bnf_code", "types_parse") in _failed_kinds(report_text)


def test_csv_codes_keep_their_leading_zeros_in_gate_and_features(tmp_path):
    folder = write_extract(tmp_path / "extract", valid_tables(), csv=("gp_medications", "ae_attendances"))
    assert read_table(folder, "gp_medications")["bnf_code"].unique().tolist() == ["0205"]

    from riskstrat.features.backends import connect, read_extract

    tables = read_extract(connect(), folder, ("gp_medications", "ae_attendances"))
    assert tables["gp_medications"]["bnf_code"].to_pandas().unique().tolist() == ["0205"]
    assert set(tables["ae_attendances"]["department_type"].to_pandas()) == {"01", "02", "03"}


# ----------------------------------------------------------------------------- dates


def test_events_before_birth_fail_on_the_event_table_at_month_level(tmp_path):
    tables = valid_tables()
    patients = tables["patients"].copy()
    patients.loc[1, "birth_date"] = "2024-02-20"  # P001's events are on 2024-02-02: same month, allowed
    patients.loc[2, "birth_date"] = "2024-04-01"  # P002's events are on 2024-03-03: a month before
    tables["patients"] = patients
    error, report_text = _gate_fails(write_extract(tmp_path / "extract", tables), tmp_path / "out")
    problem = _problem(error, "apc_spells", "admission_date")
    assert problem.n_rows == 1 and problem.examples == ("spell_id=S0002",)
    assert "before the person's birth" in problem.expected
    failed = _failed_kinds(report_text)
    assert ("gp_appointments", "appointment_date", "not_before_birth") in failed
    assert not [f for f in failed if f[0] == "patients"]
    _no_identifiers_or_births(error, report_text, tables)


def test_a_placeholder_date_of_death_is_blamed_on_patients_only(tmp_path):
    tables = valid_tables()
    patients = tables["patients"].copy()
    patients.loc[5, "date_of_death"] = "1900-01-01"
    patients.loc[6, "date_of_death"] = "1900-01-01"
    tables["patients"] = patients
    error, report_text = _gate_fails(write_extract(tmp_path / "extract", tables), tmp_path / "out")
    problem = _problem(error, "patients", "date_of_death")
    assert problem.n_rows == 2 and problem.examples == ("person_id=P005", "person_id=P006")
    assert _failed_kinds(report_text) == {("patients", "date_of_death", "death_not_before_birth")}
    _no_identifiers_or_births(error, report_text, tables)


def test_excel_serial_dates_are_reported_by_shape(tmp_path):
    tables = valid_tables()
    tables["gp_appointments"].loc[[3, 4, 5], "appointment_date"] = "45123"
    error, _ = _gate_fails(write_extract(tmp_path / "extract", tables), tmp_path / "out")
    problem = _problem(error, "gp_appointments", "appointment_date")
    assert problem.n_rows == 3 and "99999" in problem.expected


# ----------------------------------------------------------------------------- row-count baseline


def test_checking_a_folder_never_moves_the_pipelines_row_count_baseline(tmp_path):
    output_dir = tmp_path / "outputs"
    weekly = write_extract(tmp_path / "week1", valid_tables())
    assert validation_gate.fn(weekly, output_dir, SETTINGS, EXTRACT_DATE).passed

    small = valid_tables()
    small["gp_medications"] = small["gp_medications"].iloc[:10]
    checked = run_validation(
        write_extract(tmp_path / "other", small), output_dir, SETTINGS, EXTRACT_DATE, record_baseline=False
    )
    # A check compares with the pipeline's baseline (and warns) but does not become it.
    assert [(r.table, r.kind) for r in checked.warnings] == [("gp_medications", "row_count_change")]

    truncated = valid_tables()
    truncated["gp_medications"] = truncated["gp_medications"].iloc[:15]
    # Next week's extract arrives in a folder of its own, half missing: still compared with week 1.
    report = validation_gate.fn(
        write_extract(tmp_path / "week2", truncated), output_dir, SETTINGS, EXTRACT_DATE
    )
    assert [(r.table, r.kind) for r in report.warnings] == [("gp_medications", "row_count_change")]
    assert "previous extract: 30" in report.warnings[0].expected


def test_chunked_gate_gives_the_same_verdicts_for_the_new_checks(tmp_path):
    tables = valid_tables()
    _rename_people(tables, dict(zip(tables["patients"]["person_id"], nhs_numbers(N_PEOPLE), strict=True)))
    tables["gp_medications"].loc[3, "person_id"] = tables["gp_medications"].loc[3, "person_id"] + " "
    tables["patients"].loc[7, "date_of_death"] = "1900-01-01"
    folder = write_extract(tmp_path / "extract", tables)
    whole = run_validation(folder, tmp_path / "a", SETTINGS, EXTRACT_DATE, keep_tables=False)
    chunked = run_validation(
        folder, tmp_path / "b", ValidationSettings(chunk_size=7), EXTRACT_DATE, keep_tables=False
    )
    rows = [(r.table, r.column, r.kind, r.n_rows, r.examples, r.passed) for r in whole.results]
    assert rows == [(r.table, r.column, r.kind, r.n_rows, r.examples, r.passed) for r in chunked.results]
    assert {(r.table, r.kind) for r in whole.critical_failures} >= {
        ("patients", "id_not_nhs_number"),
        ("gp_medications", "text_trimmed"),
        ("patients", "death_not_before_birth"),
    }


@pytest.mark.slow
@pytest.mark.spark
def test_utc_parquet_timestamps_read_as_london_wall_clock_on_pyspark(tmp_path):
    pytest.importorskip("pyspark")
    from riskstrat.features.backends import connect_pyspark, read_extract, spark_session

    naive = valid_tables()
    for name, column in (
        ("ae_attendances", "arrival_datetime"),
        ("ae_attendances", "departure_datetime"),
        ("patients", "birth_date"),
    ):
        naive[name][column] = pd.to_datetime(naive[name][column])
    aware = {name: frame.copy() for name, frame in naive.items()}
    for name, column in (
        ("ae_attendances", "arrival_datetime"),
        ("ae_attendances", "departure_datetime"),
        ("patients", "birth_date"),
    ):
        aware[name][column] = _as_utc(aware[name][column])
    con = connect_pyspark(spark_session("local[2]", "riskstrat-tests"))
    read = {}
    for label, tables in (("naive", naive), ("aware", aware)):
        folder = write_extract(tmp_path / label, tables, csv=())
        # Collected before the next folder is read: Spark views are named by table.
        read[label] = {
            name: table.to_pandas().sort_values(table.columns[0]).reset_index(drop=True)
            for name, table in read_extract(con, folder, ("patients", "ae_attendances")).items()
        }
    for name in ("patients", "ae_attendances"):
        pd.testing.assert_frame_equal(read["aware"][name], read["naive"][name])
    assert read["aware"]["patients"]["birth_date"].iloc[1] == pd.Timestamp("1941-02-01")  # BST birth


# ----------------------------------------------------------------------------- whitespace and odd characters

EDGE_SPACES = {
    "space": " ",
    "tab": "\t",
    "no-break space": "\u00a0",
    "em space": "\u2003",
    "zero-width space": "\u200b",
    "ideographic space": "\u3000",
    "byte order mark": "\ufeff",
}


@pytest.mark.parametrize("space", EDGE_SPACES.values(), ids=EDGE_SPACES.keys())
def test_whitespace_around_csv_dates_and_numbers_stops_the_gate_showing_shapes(tmp_path, space):
    tables = valid_tables()
    tables["patients"].loc[3, "birth_date"] = "2012-10-01" + space  # P003, read as text from CSV
    tables["ae_attendances"].loc[4, "acuity"] = space + "2"
    folder = write_extract(tmp_path / "extract", tables, csv=("patients", "ae_attendances"))
    error, report_text = _gate_fails(folder, tmp_path / "out")
    birth = _problem(error, "patients", "birth_date")
    assert birth.n_rows == 1 and birth.examples == ("person_id=P003",)
    shown = "9999-99-99" + escape_text(space)  # escaped: \xa0, \u3000, ...
    assert shown in birth.expected and "whitespace" in birth.expected
    acuity = _problem(error, "ae_attendances", "acuity")
    assert acuity.n_rows == 1 and acuity.examples == ("attendance_id=A0004",)
    failed = _failed_kinds(report_text)
    assert {
        ("patients", "birth_date", "text_trimmed"),
        ("ae_attendances", "acuity", "text_trimmed"),
    } <= failed
    assert "2012-10-01" not in error.message and "2012-10-01" not in report_text
    _no_identifiers_or_births(error, report_text, tables)


ODD_NUMBERS = ["inf", "-inf", "NaN", "1_000", "\uff13", "3\u200b", "0x3", "3 4", "3,0"]


@pytest.mark.parametrize("value", ODD_NUMBERS)
def test_csv_numbers_in_anything_but_plain_ascii_fail_at_the_gate(tmp_path, value):
    tables = valid_tables()
    tables["ae_attendances"].loc[5, "acuity"] = value
    error, _ = _gate_fails(write_extract(tmp_path / "extract", tables), tmp_path / "out")
    problem = _problem(error, "ae_attendances", "acuity")
    assert problem.n_rows == 1 and problem.examples == ("attendance_id=A0005",)


def test_odd_characters_inside_csv_dates_fail_at_the_gate(tmp_path):
    tables = valid_tables()
    appointments = tables["gp_appointments"]
    appointments.loc[2, "appointment_date"] = "2024-0\uff13-03"  # a full-width digit
    appointments.loc[4, "appointment_date"] = "2024-05\u200b-05"
    appointments.loc[6, "appointment_date"] = "2024-07-07\x00"
    error, report_text = _gate_fails(write_extract(tmp_path / "extract", tables), tmp_path / "out")
    problem = _problem(error, "gp_appointments", "appointment_date")
    assert problem.n_rows == 3 and problem.examples == ("person_id=P002", "person_id=P004", "person_id=P006")
    assert "9999-9\uff19-99" in problem.expected and "9999-99\\u200b-99" in problem.expected
    assert "\x00" not in error.message and "\u200b" not in report_text


@pytest.mark.parametrize("infinite", [np.inf, -np.inf])
def test_infinite_numbers_in_parquet_are_a_parse_failure_naming_the_rows(tmp_path, infinite):
    tables = valid_tables()
    ae = tables["ae_attendances"]
    ae["acuity"] = ae["acuity"].astype(float)
    ae.loc[[3, 8], "acuity"] = infinite
    ae.loc[9, "acuity"] = np.nan  # NaN is a missing acuity (allowed)
    error, report_text = _gate_fails(write_extract(tmp_path / "extract", tables, csv=()), tmp_path / "out")
    problem = _problem(error, "ae_attendances", "acuity")
    assert problem.n_rows == 2 and problem.examples == ("attendance_id=A0003", "attendance_id=A0008")
    assert "finite numbers" in problem.expected and "inf" in problem.expected
    assert _failed_kinds(report_text) == {("ae_attendances", "acuity", "types_parse")}


def test_nan_in_parquet_numbers_is_missing_and_required_ness_applies(tmp_path):
    tables = valid_tables()
    ae = tables["ae_attendances"]
    ae["acuity"] = ae["acuity"].astype(float)
    ae.loc[3, "acuity"] = np.nan
    spells = tables["apc_spells"]
    spells["spell_id"] = np.arange(N_PEOPLE, dtype=float)  # IDs stored as numbers: allowed
    spells.loc[4, "spell_id"] = np.nan  # a required ID that is missing
    folder = write_extract(tmp_path / "extract", tables, csv=())
    _, report_text = _gate_fails(folder, tmp_path / "out")
    assert _failed_kinds(report_text) == {("apc_spells", "spell_id", "not_null")}
    typed = read_table(folder, "ae_attendances")["acuity"]
    assert typed.isna().sum() == 1 and pd.isna(typed.iloc[3]) and typed.dtype == "Int64"


INVISIBLE = {
    "zero-width space": ("\u200b", "\\u200b"),
    "nul": ("\x00", "\\x00"),
    "escape": ("\x1b", "\\x1b"),
    "right-to-left override": ("\u202e", "\\u202e"),
    "word joiner": ("\u2060", "\\u2060"),
    "byte order mark": ("\ufeff", "\\ufeff"),
    "line separator": ("\u2028", "\\u2028"),
    "no-break space": ("\u00a0", "\\xa0"),
    "full-width digit": ("\uff10", "\uff10"),
    "cyrillic capital er": ("\u0420", "\u0420"),
}


@pytest.mark.parametrize(("character", "escaped"), INVISIBLE.values(), ids=INVISIBLE.keys())
def test_invisible_or_look_alike_characters_in_ids_fail_shown_escaped(tmp_path, character, escaped):
    tables = valid_tables()
    # The same odd ID in patients and in its events: nothing else fails, so only this check stops it.
    _rename_people(tables, {p: p for p in tables["patients"]["person_id"]} | {"P003": f"P0{character}3"})
    error, report_text = _gate_fails(write_extract(tmp_path / "extract", tables), tmp_path / "out")
    problem = _problem(error, "patients", "person_id")
    assert problem.n_rows == 1 and problem.examples == (f"person_id='P0{escaped}3'",)
    assert "printable ASCII" in problem.expected
    failed = _failed_kinds(report_text)
    holding = {t for t in PERSON_TABLES if f"P0{character}3" in set(tables[t]["person_id"])}
    assert {(t, "person_id", "text_printable") for t in holding} <= failed and len(holding) >= 8
    assert {kind for _, _, kind in failed} == {"text_printable"}
    if not character.isprintable():
        assert character not in error.message and character not in report_text


def test_invisible_characters_in_codes_fail_and_plain_spaces_inside_text_pass(tmp_path):
    tables = valid_tables()
    tables["caseload"].loc[2, "team"] = "VW\u00a0North"  # looks like "VW North", groups apart
    tables["gp_diagnoses"].loc[4, "snomed_code"] = "4405\u20604006"
    tables["caseload"].loc[3, "team"] = "VW  North East"  # plain spaces inside are text
    error, report_text = _gate_fails(write_extract(tmp_path / "extract", tables), tmp_path / "out")
    team = _problem(error, "caseload", "team")
    assert team.n_rows == 1 and team.examples == ("person_id=P002 (team=VW\\xa0North)",)
    snomed = _problem(error, "gp_diagnoses", "snomed_code")
    assert snomed.examples == ("person_id=P004 (snomed_code=4405\\u20604006)",)
    assert _failed_kinds(report_text) == {
        ("caseload", "team", "text_printable"),
        ("gp_diagnoses", "snomed_code", "text_printable"),
    }


@pytest.mark.parametrize(
    "stale",
    ["patients.xlsx", "patients.xls", "patients.json", "patients.txt", "patients.csv.gz", "Patients.CSV"],
)
@pytest.mark.parametrize("beside", [True, False], ids=["beside the parquet", "alone"])
def test_a_table_file_in_a_format_that_is_not_read_is_never_ignored(tmp_path, stale, beside):
    folder = write_extract(tmp_path / "extract", valid_tables())
    (folder / stale).write_bytes(b"stale")
    if not beside:
        (folder / "patients.parquet").unlink()
    error, report_text = _gate_fails(folder, tmp_path / "out")
    problem = _problem(error, "patients", "")
    assert stale in problem.expected
    if beside:
        assert f"found patients.parquet and {stale}" in problem.expected
    else:
        assert "patients.parquet or patients.csv" in problem.expected
        assert f"found only {stale}, which is not read" in problem.expected
    assert ("patients", "", "table_present") in _failed_kinds(report_text)

    from riskstrat.features.backends import find_table_file

    with pytest.raises(ContractError, match=stale.replace(".", r"\.")):
        find_table_file(folder, "patients")
