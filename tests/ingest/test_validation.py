"""The validation gate: a valid extract passes; a malformed one fails (or warns) naming table and column."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from riskstrat.errors import ContractError
from riskstrat.ingest.validation_settings import ValidationSettings
from riskstrat.pipelines.validate import run_validation, summary_table, validation_gate

EXTRACT_DATE = date(2025, 12, 31)
N_PEOPLE = 30
LSOAS = ("E01000001", "E01000002", "E01000003", "E01000005")  # all in the IMD 2019 lookup
CSV_TABLES = ("ae_attendances", "gp_appointments")  # the rest are written as Parquet


def valid_tables() -> dict[str, pd.DataFrame]:
    """A small extract that meets the whole contract: 30 people, events in every table."""
    people = [f"P{i:03d}" for i in range(N_PEOPLE)]
    births = [f"{1940 + i}-0{1 + i % 9}-01" for i in range(N_PEOPLE)]
    deaths = [""] * N_PEOPLE
    deaths[0] = "2025-06-30"  # P000 died; their events end on or before that date
    ethnic = ["A", "B", "J", "R", "S", "Z"] + ["A"] * (N_PEOPLE - 6)  # 1 of 30 not known
    patients = pd.DataFrame(
        {
            "person_id": people,
            "birth_date": births,
            "sex": ["1", "2", "9", "X"] + ["2"] * (N_PEOPLE - 4),
            "ethnic_category": ethnic,
            "lsoa_code": [LSOAS[i % len(LSOAS)] for i in range(N_PEOPLE)],
            "practice_code": ["M85001"] * N_PEOPLE,
            "registration_start": ["2015-01-01"] * N_PEOPLE,
            "registration_end": [""] * N_PEOPLE,
            "date_of_death": deaths,
        }
    )
    days = [f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(N_PEOPLE)]
    gp_diagnoses = pd.DataFrame(
        {
            "person_id": people,
            "event_date": days,
            "condition": ["diabetes"] * N_PEOPLE,
            "snomed_code": "44054006",
        }
    )
    gp_appointments = pd.DataFrame(
        {
            "person_id": people * 2,
            "appointment_date": days * 2,
            "mode": ["face_to_face", "telephone", "home_visit", "online"] * 15,
            "status": ["attended", "dna"] * 30,
        }
    )
    gp_medications = pd.DataFrame({"person_id": people, "issue_date": days, "bnf_code": ["0205"] * N_PEOPLE})
    community = pd.DataFrame(
        {
            "person_id": people,
            "contact_date": days,
            "service": ["district_nursing", "community_matron", "falls"] * 10,
            "mode": ["home_visit"] * N_PEOPLE,
        }
    )
    ae = pd.DataFrame(
        {
            "attendance_id": [f"A{i:04d}" for i in range(N_PEOPLE)],
            "person_id": people,
            "arrival_datetime": [f"{d} 10:15:00" for d in days],
            "departure_datetime": [f"{d} 14:00:00" for d in days],
            "department_type": ["01", "02", "03"] * 10,
            "arrival_mode": ["ambulance", "other"] * 15,
            "acuity": ["1", "2", "3", "4", "5"] * 6,
            "disposal": ["admitted", "discharged", "referred", "left", "discharged"] * 6,
        }
    )
    apc = pd.DataFrame(
        {
            "spell_id": [f"S{i:04d}" for i in range(N_PEOPLE)],
            "person_id": people,
            "admission_date": days,
            "discharge_date": days,
            "admission_method": ["21", "11", "2A", "31", "81"] * 6,
            "primary_diagnosis": ["I10"] * N_PEOPLE,
            "discharge_destination": ["usual_residence"] * N_PEOPLE,
            "discharge_method": ["1"] * N_PEOPLE,
        }
    )
    caseload = pd.DataFrame(
        {"person_id": people[:10], "team": ["VW North"] * 10, "start_date": days[:10], "end_date": [""] * 10}
    )
    opt_outs = pd.DataFrame({"person_id": people[:3], "type": ["type1", "ndo", "type1"]})
    return {
        "patients": patients,
        "gp_diagnoses": gp_diagnoses,
        "gp_appointments": gp_appointments,
        "gp_medications": gp_medications,
        "community_contacts": community,
        "ae_attendances": ae,
        "apc_spells": apc,
        "caseload": caseload,
        "opt_outs": opt_outs,
    }


def write_extract(folder: Path, tables: dict[str, pd.DataFrame], csv: tuple[str, ...] = CSV_TABLES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if name in csv:
            frame.to_csv(folder / f"{name}.csv", index=False)
        else:
            frame.replace("", None).to_parquet(folder / f"{name}.parquet", index=False)
    return folder


@pytest.fixture
def extract(tmp_path) -> Path:
    return write_extract(tmp_path / "extract", valid_tables())


@pytest.fixture
def earlier_outputs(tmp_path) -> tuple[Path, Path, bytes]:
    """An output folder holding last week's worklist, which a failed run must leave as it was."""
    output_dir = tmp_path / "outputs"
    earlier = output_dir / "worklists" / "2025-W52" / "worklist.csv"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"person_id,risk\nP001,0.5\n")
    return output_dir, earlier, earlier.read_bytes()


SETTINGS = ValidationSettings()


@pytest.fixture
def skip_data_docs(monkeypatch):
    """Skip rendering Data Docs where a test is about the checks (Data Docs are tested separately)."""
    import riskstrat.ingest.validation as validation

    monkeypatch.setattr(
        validation, "build_data_docs", lambda context, docs_dir, **_: Path(docs_dir) / "index.html"
    )


def test_valid_extract_passes_with_data_docs_and_report(extract, tmp_path):
    output_dir = tmp_path / "outputs"
    report = run_validation(extract, output_dir, SETTINGS, EXTRACT_DATE)
    assert report.critical_failures == [], [r.problem().describe() for r in report.critical_failures]
    assert report.warnings == []
    assert report.row_counts["patients"] == N_PEOPLE and report.row_counts["gp_appointments"] == 60
    assert set(report.tables) == set(report.row_counts)
    assert report.tables["patients"]["birth_date"].dtype.kind == "M"
    assert (
        report.data_docs_index
        == (output_dir / "data_docs" / report.snapshot_hash[:16] / "index.html").resolve()
    )
    assert report.data_docs_index.is_file() and (output_dir / "data_docs" / "index.html").is_file()
    saved = json.loads((output_dir / "validation" / f"{report.snapshot_hash}.json").read_text())
    assert saved == json.loads((output_dir / "validation" / "latest.json").read_text())
    assert saved["passed"] is True and saved["row_counts"]["ae_attendances"] == N_PEOPLE
    # Every contract table got its suites and checks of each kind ran.
    kinds = {r.kind for r in report.results}
    assert {
        "id_unique",
        "codes_in_set",
        "person_in_patients",
        "not_after_death",
        "date_order",
        "age_plausible",
        "lsoa_well_formed",
        "lsoa_in_imd_lookup",
        "ethnicity_known",
        "required_columns",
    } <= kinds


def _mutate(name: str, column: str, values) -> Callable[[dict], None]:
    def mutate(tables: dict[str, pd.DataFrame]) -> None:
        frame = tables[name].copy()
        frame[column] = values(frame) if callable(values) else values
        tables[name] = frame

    return mutate


def _set_row(name: str, column: str, row: int, value) -> Callable[[dict], None]:
    def mutate(tables: dict[str, pd.DataFrame]) -> None:
        frame = tables[name].copy()
        frame.loc[row, column] = value
        tables[name] = frame

    return mutate


def _drop_table(name: str) -> Callable[[dict], None]:
    return lambda tables: tables.pop(name)


def _drop_column(name: str, column: str) -> Callable[[dict], None]:
    def mutate(tables):
        tables[name] = tables[name].drop(columns=[column])

    return mutate


def _duplicate_row(name: str, row: int) -> Callable[[dict], None]:
    def mutate(tables):
        tables[name] = pd.concat([tables[name], tables[name].iloc[[row]]], ignore_index=True)

    return mutate


def _empty(name: str) -> Callable[[dict], None]:
    def mutate(tables):
        tables[name] = tables[name].iloc[0:0]

    return mutate


def _add_newborn(birth_date: str) -> Callable[[dict], None]:
    """A person born on ``birth_date``, with no events yet."""

    def mutate(tables):
        baby = tables["patients"].iloc[[2]].assign(person_id="P900", birth_date=birth_date)
        tables["patients"] = pd.concat([tables["patients"], baby], ignore_index=True)

    return mutate


def _many(*mutations: Callable[[dict], None]) -> Callable[[dict], None]:
    def mutate(tables):
        for mutation in mutations:
            mutation(tables)

    return mutate


def _after_write_corrupt_parquet(folder: Path) -> None:
    (folder / "gp_diagnoses.parquet").write_bytes(b"PAR1 this is not a parquet file, it was cut short")


def _after_write_stray_header(folder: Path) -> None:
    path = folder / "ae_attendances.csv"
    lines = path.read_text().splitlines()
    lines.insert(12, lines[0])  # the header again, as when two exports are concatenated
    path.write_text("\n".join(lines) + "\n")


def _after_write_ae_as_parquet_with_infinite_acuity(folder: Path) -> None:
    """ae_attendances as Parquet with acuity stored as floats, one of them inf."""
    path = folder / "ae_attendances.csv"
    ae = pd.read_csv(path, dtype=str, keep_default_na=False)
    acuity = ae["acuity"].astype(float)
    acuity.iloc[3] = float("inf")
    ae.assign(acuity=acuity).replace("", None).to_parquet(folder / "ae_attendances.parquet", index=False)
    path.unlink()


def _after_write_file(name: str, data: bytes = b"stale", remove: str | None = None) -> Callable[[Path], None]:
    """Write ``name`` beside the extract (a stale spreadsheet, a compressed export), removing ``remove``."""

    def after_write(folder: Path) -> None:
        (folder / name).write_bytes(data)
        if remove:
            (folder / remove).unlink()

    return after_write


# (id, mutation of the tables, action on the written folder, severity, table, column, kind)
CORPUS = [
    ("missing table", _drop_table("apc_spells"), None, "critical", "apc_spells", "", "table_present"),
    (
        "missing column",
        _drop_column("patients", "sex"),
        None,
        "critical",
        "patients",
        "sex",
        "required_columns",
    ),
    (
        "wrong type",
        _set_row("ae_attendances", "acuity", 3, "high"),
        None,
        "critical",
        "ae_attendances",
        "acuity",
        "types_parse",
    ),
    (
        "unknown sex code",
        _set_row("patients", "sex", 4, "M"),
        None,
        "critical",
        "patients",
        "sex",
        "codes_in_set",
    ),
    (
        "unknown admission method",
        _set_row("apc_spells", "admission_method", 2, "99"),
        None,
        "critical",
        "apc_spells",
        "admission_method",
        "codes_in_set",
    ),
    (
        "unknown disposal",
        _set_row("ae_attendances", "disposal", 2, "home"),
        None,
        "critical",
        "ae_attendances",
        "disposal",
        "codes_in_set",
    ),
    (
        "duplicate attendance_id",
        _duplicate_row("ae_attendances", 5),
        None,
        "critical",
        "ae_attendances",
        "attendance_id",
        "id_unique",
    ),
    (
        "duplicate person in patients",
        _duplicate_row("patients", 7),
        None,
        "critical",
        "patients",
        "person_id",
        "id_unique",
    ),
    (
        "missing spell_id",
        _set_row("apc_spells", "spell_id", 1, None),
        None,
        "critical",
        "apc_spells",
        "spell_id",
        "not_null",
    ),
    (
        "orphan events",
        _set_row("gp_medications", "person_id", 3, "P999"),
        None,
        "critical",
        "gp_medications",
        "person_id",
        "person_in_patients",
    ),
    (
        "future dates",
        _set_row("gp_appointments", "appointment_date", 0, "2026-03-01"),
        None,
        "critical",
        "gp_appointments",
        "appointment_date",
        "date_not_after_extract_date",
    ),
    (
        "dates before 1900",
        _set_row("gp_diagnoses", "event_date", 0, "1899-12-31"),
        None,
        "critical",
        "gp_diagnoses",
        "event_date",
        "date_not_before_min_date",
    ),
    (
        "discharge before admission",
        _set_row("apc_spells", "discharge_date", 4, "2020-01-01"),
        None,
        "critical",
        "apc_spells",
        "discharge_date",
        "date_order",
    ),
    (
        "departure before arrival",
        _set_row("ae_attendances", "departure_datetime", 4, "2020-01-01 00:00:00"),
        None,
        "critical",
        "ae_attendances",
        "departure_datetime",
        "date_order",
    ),
    ("empty patients", _empty("patients"), None, "critical", "patients", "", "patients_not_empty"),
    ("corrupt parquet", None, _after_write_corrupt_parquet, "critical", "gp_diagnoses", "", "table_present"),
    (
        "csv with a stray header row",
        None,
        _after_write_stray_header,
        "critical",
        "ae_attendances",
        "arrival_datetime",
        "types_parse",
    ),
    (
        "mixed date formats",
        _set_row("gp_appointments", "appointment_date", 2, "03/04/2024"),
        None,
        "critical",
        "gp_appointments",
        "appointment_date",
        "types_parse",
    ),
    (
        "events after death",
        _set_row("community_contacts", "contact_date", 0, "2025-07-01"),
        None,
        "critical",
        "community_contacts",
        "contact_date",
        "not_after_death",
    ),
    (
        "implausible age 120",
        _set_row("patients", "birth_date", 1, "1905-01-01"),
        None,
        "critical",
        "patients",
        "birth_date",
        "age_plausible",
    ),
    (
        "born on the extract date",
        _add_newborn("2025-12-31"),
        None,
        None,
        None,
        None,
        None,
    ),  # age 0 on the extract date is plausible: this one passes
    (
        "events before birth",
        _set_row("patients", "birth_date", 1, "2025-12-01"),  # P001's events are in 2024
        None,
        "critical",
        "gp_diagnoses",
        "event_date",
        "not_before_birth",
    ),
    (
        "welsh lsoa",
        _set_row("patients", "lsoa_code", 2, "W01000001"),
        None,
        "critical",
        "patients",
        "lsoa_code",
        "lsoa_well_formed",
    ),
    (
        "scottish data zone",
        _set_row("patients", "lsoa_code", 2, "S01006506"),
        None,
        "critical",
        "patients",
        "lsoa_code",
        "lsoa_well_formed",
    ),
    (
        "many lsoas not in imd lookup",
        _mutate("patients", "lsoa_code", lambda f: ["E01999999"] * 5 + list(f["lsoa_code"][5:])),
        None,
        "critical",
        "patients",
        "lsoa_code",
        "lsoa_in_imd_lookup_high",
    ),
    (
        "ethnicity mostly unknown",
        _mutate(
            "patients", "ethnic_category", lambda f: ["99"] * 12 + [""] * 3 + list(f["ethnic_category"][15:])
        ),
        None,
        "warning",
        "patients",
        "ethnic_category",
        "ethnicity_known",
    ),
    ("empty event table", _empty("caseload"), None, "warning", "caseload", "", "events_not_empty"),
    # Whitespace around dates and numbers read from text: the feature engine would fail on them.
    (
        "no-break space after a csv date",
        _set_row("gp_appointments", "appointment_date", 2, "2024-03-03\u00a0"),
        None,
        "critical",
        "gp_appointments",
        "appointment_date",
        "text_trimmed",
    ),
    (
        "ideographic space before a birth date",
        _set_row("patients", "birth_date", 3, "\u30001943-04-01"),
        None,
        "critical",
        "patients",
        "birth_date",
        "text_trimmed",
    ),
    (
        "tab after a csv number",
        _set_row("ae_attendances", "acuity", 3, "3\t"),
        None,
        "critical",
        "ae_attendances",
        "acuity",
        "text_trimmed",
    ),
    (
        "zero-width space inside a csv number",
        _set_row("ae_attendances", "acuity", 3, "3\u200b5"),
        None,
        "critical",
        "ae_attendances",
        "acuity",
        "types_parse",
    ),
    (
        "infinite number as csv text",
        _set_row("ae_attendances", "acuity", 3, "inf"),
        None,
        "critical",
        "ae_attendances",
        "acuity",
        "types_parse",
    ),
    (
        "infinite float in parquet",
        None,
        _after_write_ae_as_parquet_with_infinite_acuity,
        "critical",
        "ae_attendances",
        "acuity",
        "types_parse",
    ),
    # Invisible and control characters in IDs and codes: two values that look the same.
    (
        "zero-width space inside a person_id",
        _set_row("gp_medications", "person_id", 3, "P0\u200b03"),
        None,
        "critical",
        "gp_medications",
        "person_id",
        "text_printable",
    ),
    (
        "right-to-left override in an attendance_id",
        _set_row("ae_attendances", "attendance_id", 3, "A\u202e0003"),
        None,
        "critical",
        "ae_attendances",
        "attendance_id",
        "text_printable",
    ),
    (
        "escape and nul in a code",
        _set_row("apc_spells", "primary_diagnosis", 3, "I1\x000\x1b[31m"),
        None,
        "critical",
        "apc_spells",
        "primary_diagnosis",
        "text_printable",
    ),
    # A file named for a table in a format that is not read is never ignored.
    (
        "stale patients.xlsx beside the parquet",
        None,
        _after_write_file("patients.xlsx"),
        "critical",
        "patients",
        "",
        "table_present",
    ),
    (
        "gp_diagnoses only as csv.gz",
        None,
        _after_write_file("gp_diagnoses.csv.gz", remove="gp_diagnoses.parquet"),
        "critical",
        "gp_diagnoses",
        "",
        "table_present",
    ),
    (
        "unknown condition",
        _set_row("gp_diagnoses", "condition", 0, "gout_typo"),
        None,
        "warning",
        "gp_diagnoses",
        "condition",
        "condition_in_vocabulary",
    ),
]


@pytest.mark.parametrize(
    ("mutation", "after_write", "severity", "table", "column", "kind"),
    [case[1:] for case in CORPUS],
    ids=[case[0] for case in CORPUS],
)
def test_malformed_extract_is_stopped_or_warned(
    tmp_path, earlier_outputs, skip_data_docs, mutation, after_write, severity, table, column, kind
):
    tables = valid_tables()
    if mutation:
        mutation(tables)
    folder = write_extract(tmp_path / "extract", tables)
    if after_write:
        after_write(folder)
    output_dir, earlier, earlier_bytes = earlier_outputs

    if severity == "critical":
        with pytest.raises(ContractError) as caught:
            validation_gate.fn(folder, output_dir, SETTINGS, EXTRACT_DATE)
        problems = [(p.table, p.column) for p in caught.value.problems]
        assert (table, column) in problems, caught.value.message
        where = f"{table}.{column}" if column else table
        assert where in caught.value.message
        report = json.loads((output_dir / "validation" / "latest.json").read_text())
        failed = [r for r in report["results"] if not r["passed"] and r["severity"] == "critical"]
        assert any(r["kind"] == kind and r["table"] == table and r["column"] == column for r in failed), (
            failed
        )
        # A failed extract never becomes the baseline for the row-count check.
        assert not (output_dir / "validation" / "row_counts.json").exists()
    else:
        report = validation_gate.fn(folder, output_dir, SETTINGS, EXTRACT_DATE)
        assert report.critical_failures == [], [r.problem().describe() for r in report.critical_failures]
        if severity == "warning":
            assert [(r.table, r.column, r.kind) for r in report.warnings] == [(table, column, kind)]
    assert not (output_dir / "features").exists()
    assert earlier.read_bytes() == earlier_bytes


def test_failure_message_counts_rows_and_gives_pseudonymised_examples_only(tmp_path):
    tables = valid_tables()
    _set_row("patients", "birth_date", 1, "1890-05-01")(tables)
    for row in (3, 4, 5, 6, 8, 9, 10):
        _set_row("gp_medications", "person_id", row, f"X{row}")(tables)
    folder = write_extract(tmp_path / "extract", tables)
    with pytest.raises(ContractError) as caught:
        validation_gate.fn(folder, tmp_path / "outputs", SETTINGS, EXTRACT_DATE)
    by_place = {(p.table, p.column): p for p in caught.value.problems}
    orphans = by_place[("gp_medications", "person_id")]
    assert orphans.n_rows == 7
    assert len(orphans.examples) == 5 and all(e.startswith("person_id=X") for e in orphans.examples)
    ages = by_place[("patients", "birth_date")]
    assert ages.examples == ("person_id=P001",)
    # No date of birth anywhere: not in the message, the report or the Data Docs.
    assert "1890" not in caught.value.message
    assert "1890" not in (tmp_path / "outputs" / "validation" / "latest.json").read_text()
    docs = tmp_path / "outputs" / "data_docs"
    assert not [p for p in docs.rglob("*.html") if "1890-05-01" in p.read_text(errors="ignore")]
    for line in caught.value.message.splitlines()[1:]:
        assert line.strip().split(":")[0].count(".") <= 1  # "table.column: expected ..."


def test_row_count_drop_against_previous_extract_warns(tmp_path):
    output_dir = tmp_path / "outputs"
    first = write_extract(tmp_path / "extract", valid_tables())
    assert validation_gate.fn(first, output_dir, SETTINGS, EXTRACT_DATE).passed
    tables = valid_tables()
    tables["gp_medications"] = tables["gp_medications"].iloc[:15]  # half the rows went missing
    second = write_extract(tmp_path / "extract", tables)  # next week's extract, same folder
    report = validation_gate.fn(second, output_dir, SETTINGS, EXTRACT_DATE)
    assert [(r.table, r.kind) for r in report.warnings] == [("gp_medications", "row_count_change")]
    assert "previous extract: 30" in report.warnings[0].expected
    history = json.loads((output_dir / "validation" / "row_counts.json").read_text())
    assert [h["row_counts"]["gp_medications"] for h in history] == [30, 15]


def test_severity_setting_turns_a_warning_into_a_stop(tmp_path):
    tables = valid_tables()
    _mutate("patients", "ethnic_category", lambda f: ["99"] * 20 + list(f["ethnic_category"][20:]))(tables)
    folder = write_extract(tmp_path / "extract", tables)
    strict = ValidationSettings.model_validate({"severity": {"ethnicity_known": "critical"}})
    with pytest.raises(ContractError, match=r"patients\.ethnic_category"):
        validation_gate.fn(folder, tmp_path / "outputs", strict, EXTRACT_DATE)


def test_chunked_validation_sums_counts_and_sees_duplicates_across_chunks(tmp_path):
    tables = valid_tables()
    ae = tables["ae_attendances"].copy()
    ae.loc[29, "attendance_id"] = ae.loc[0, "attendance_id"]  # duplicate in the first and last chunk
    ae.loc[[2, 12, 22], "department_type"] = "07"  # one bad code in each chunk
    tables["ae_attendances"] = ae
    folder = write_extract(tmp_path / "extract", tables)
    report = run_validation(folder, tmp_path / "outputs", ValidationSettings(chunk_size=10), EXTRACT_DATE)
    failed = {(r.column, r.kind): r for r in report.critical_failures}
    assert failed[("attendance_id", "id_unique")].n_rows == 2
    codes = failed[("department_type", "codes_in_set")]
    assert codes.n_rows == 3 and codes.n_checked == 30
    assert codes.examples == (
        "attendance_id=A0002 (department_type=07)",
        "attendance_id=A0012 (department_type=07)",
        "attendance_id=A0022 (department_type=07)",
    )


def test_missing_extract_folder_is_a_critical_failure(tmp_path):
    with pytest.raises(ContractError, match="patients"):
        validation_gate.fn(tmp_path / "nowhere", tmp_path / "outputs", SETTINGS, EXTRACT_DATE)


def test_summary_table_lists_failures_for_the_cli(tmp_path):
    tables = valid_tables()
    _set_row("patients", "sex", 4, "M")(tables)
    report = run_validation(
        write_extract(tmp_path / "extract", tables), tmp_path / "outputs", SETTINGS, EXTRACT_DATE
    )
    rendered = summary_table(report)
    assert rendered.row_count == 1
    assert "FAILED" in str(rendered.title)


def test_patients_without_person_id_is_reported_once_not_as_orphan_events(tmp_path, skip_data_docs):
    tables = valid_tables()
    _drop_column("patients", "person_id")(tables)
    report = run_validation(
        write_extract(tmp_path / "extract", tables), tmp_path / "outputs", SETTINGS, EXTRACT_DATE
    )
    failed = {(r.table, r.column, r.kind) for r in report.critical_failures}
    assert failed == {("patients", "person_id", "required_columns")}


def test_arrow_lookup_matches_pandas_isin():
    from riskstrat.ingest.expectations import is_in

    values = pd.Series(["P1", None, "P3", "P1", "X"], index=[10, 11, 12, 13, 14], dtype="str")
    allowed = pd.Series(["P1", "P3", None], dtype="str")
    assert is_in(values, allowed).tolist() == [True, False, True, True, False]
    assert is_in(values, allowed).index.tolist() == [10, 11, 12, 13, 14]


def test_suites_are_generated_from_the_contract():
    from riskstrat.ingest.contract import CONTRACT
    from riskstrat.ingest.expectations import build_checks

    for table in CONTRACT.values():
        checks = build_checks(table, set(table.column_names), SETTINGS, EXTRACT_DATE)
        coded = {c.name: list(c.codes) for c in table.columns if c.codes is not None}
        generated = {c.column: c.expectation.value_set for c in checks if c.kind == "codes_in_set"}
        assert generated == coded, table.name
        required = {c.column for c in checks if c.kind == "required_columns"}
        assert required == set(table.required_columns)
        assert all(c.expectation.meta["severity"] == c.severity for c in checks)
        if table.key:
            assert any(c.kind == "id_unique" and c.column == table.key for c in checks)


def _result_rows(report) -> list[tuple]:
    return [
        (r.table, r.column, r.kind, r.severity, r.expected, r.n_rows, r.n_checked, r.examples, r.passed)
        for r in report.results
    ]


def test_streamed_chunks_give_the_same_report_and_tables_as_one_batch(tmp_path, skip_data_docs):
    tables = valid_tables()
    _set_row("gp_appointments", "appointment_date", 2, "03/04/2024")(tables)  # CSV: parse failures
    _set_row("gp_appointments", "appointment_date", 41, "2024-13-45")(tables)
    _set_row("gp_appointments", "appointment_date", 55, "4 May 24")(tables)
    for row in (3, 11, 25):
        _set_row("gp_medications", "person_id", row, f"X{row}")(tables)  # orphans in three chunks
    _set_row("community_contacts", "contact_date", 0, "2025-07-01")(tables)  # after P000's death
    _duplicate_row("ae_attendances", 2)(tables)  # duplicate in the first and the last chunk
    _set_row("apc_spells", "discharge_date", 20, "2020-01-01")(tables)
    _mutate("patients", "ethnic_category", lambda f: ["99"] * 8 + list(f["ethnic_category"][8:]))(tables)
    folder = write_extract(tmp_path / "extract", tables)
    whole = run_validation(folder, tmp_path / "whole", SETTINGS, EXTRACT_DATE)
    streamed = run_validation(folder, tmp_path / "streamed", ValidationSettings(chunk_size=7), EXTRACT_DATE)
    assert not whole.passed and len(whole.critical_failures) >= 6
    assert _result_rows(streamed) == _result_rows(whole)
    assert streamed.row_counts == whole.row_counts
    for name, frame in whole.tables.items():
        pd.testing.assert_frame_equal(streamed.tables[name], frame, check_index_type=False)


def test_examples_are_the_first_failing_rows_of_a_large_chunk(tmp_path, skip_data_docs):
    tables = valid_tables()
    n = 3000
    medications = pd.DataFrame(
        {
            "person_id": [f"P{i % N_PEOPLE:03d}" for i in range(n)],
            "issue_date": ["2024-05-01"] * n,
            "bnf_code": ["0205"] * n,
        }
    )
    medications.loc[2700:, "person_id"] = [f"X{i}" for i in range(2700, n)]  # orphans only at the end
    tables["gp_medications"] = medications
    report = run_validation(
        write_extract(tmp_path / "extract", tables), tmp_path / "out", SETTINGS, EXTRACT_DATE
    )
    orphans = {(r.table, r.kind): r for r in report.critical_failures}[
        ("gp_medications", "person_in_patients")
    ]
    assert orphans.n_rows == 300 and orphans.n_checked == n
    assert orphans.examples == tuple(f"person_id=X{i}" for i in range(2700, 2705))


def test_a_file_unreadable_after_its_first_chunks_is_reported_as_unreadable(tmp_path, skip_data_docs):
    folder = write_extract(tmp_path / "extract", valid_tables())
    path = folder / "gp_appointments.csv"
    lines = path.read_text().splitlines()
    lines.insert(45, "P001,2024-01-01,telephone,attended,an extra field")
    path.write_text("\n".join(lines) + "\n")
    report = run_validation(folder, tmp_path / "out", ValidationSettings(chunk_size=10), EXTRACT_DATE)
    results = [r for r in report.results if r.table == "gp_appointments"]
    assert [(r.kind, r.passed) for r in results] == [("table_present", False)]
    assert results[0].expected.startswith("a readable csv file (ParserError")
    assert "gp_appointments" not in report.row_counts and "gp_appointments" not in report.tables


# ----------------------------------------------------------------------------- mapping coverage


def _coverage_payload(acuity_mapped: int, wrong_rows: int = 0) -> dict:
    """A coverage file as `riskstrat adapt` writes it: ECDS acuity (100 rows) and a GP SNOMED field."""
    unmapped = [{"code": "999999999", "rows": 100 - acuity_mapped - wrong_rows, "system": ""}]
    if wrong_rows:
        unmapped.insert(0, {"code": "XaIyz", "rows": wrong_rows, "system": "read"})
    return {
        "files": {"ecds": "ecds.parquet"},
        "notes": ["3 resubmitted contacts removed"],
        "fields": [
            {
                "source": "ecds",
                "field": "EC_Acuity_SNOMED_CT",
                "codelist": "ecds_acuity",
                "rows": 100,
                "mapped": acuity_mapped,
                "share": acuity_mapped / 100,
                "wrong_system": wrong_rows,
                "unmapped": [u for u in unmapped if u["rows"]],
            },
            {
                "source": "gp_events",
                "field": "SNOMED_Code",
                "codelist": "snomed_conditions",
                "rows": 1000,
                "mapped": 995,
                "share": 0.995,
                "wrong_system": 0,
                "unmapped": [{"code": "1234567", "rows": 5, "system": ""}],
            },
        ],
    }


def _with_coverage(extract: Path, payload: dict) -> Path:
    (extract / "mapping_coverage.json").write_text(json.dumps(payload), encoding="utf-8")
    return extract


def _coverage_results(report) -> dict[tuple[str, str, str], object]:
    return {
        (r.table, r.column, r.kind): r
        for r in report.results
        if r.kind in ("mapping_coverage", "wrong_system_codes")
    }


def test_low_acuity_coverage_fails_critical_naming_the_threshold(extract, tmp_path, skip_data_docs):
    _with_coverage(extract, _coverage_payload(acuity_mapped=92))  # 92%: under the 95% set for acuity
    report = run_validation(extract, tmp_path / "outputs", SETTINGS, EXTRACT_DATE)
    found = _coverage_results(report)
    acuity = found[("ecds", "EC_Acuity_SNOMED_CT", "mapping_coverage")]
    assert not acuity.passed and acuity.severity == "critical"
    assert acuity.n_rows == 8 and acuity.n_checked == 100
    assert "critical below 95%" in acuity.expected and "ecds.EC_Acuity_SNOMED_CT" in acuity.expected
    assert "found 92.0% of 100 rows" in acuity.expected
    assert acuity.examples == ("999999999 (8 rows)",)
    assert not report.passed
    line = report.contract_error().problems[0].describe()
    assert line.startswith(
        "ecds.EC_Acuity_SNOMED_CT: expected at least 95.0% of codes recognised by ecds_acuity"
    )
    # GP at 99.5% passes the 99% default warning level.
    assert found[("gp_events", "SNOMED_Code", "mapping_coverage")].passed
    shown = {(c["source"], c["field"]): c for c in report.mapping_coverage}
    assert shown[("ecds", "EC_Acuity_SNOMED_CT")]["status"] == "critical"
    assert shown[("ecds", "EC_Acuity_SNOMED_CT")]["unmapped"] == [
        {"code": "999999999", "rows": 8, "system": ""}
    ]
    saved = json.loads((tmp_path / "outputs" / "validation" / "latest.json").read_text())
    assert saved["mapping_coverage"] == report.mapping_coverage


def test_coverage_between_the_levels_warns_and_the_default_limits_apply(extract, tmp_path, skip_data_docs):
    payload = _coverage_payload(acuity_mapped=97)  # 97%: above acuity's 95% critical, below the 99% warning
    payload["fields"][1].update(mapped=850, share=0.85)  # GP 85%: under the default 90% critical level
    report = run_validation(_with_coverage(extract, payload), tmp_path / "outputs", SETTINGS, EXTRACT_DATE)
    found = _coverage_results(report)
    acuity = found[("ecds", "EC_Acuity_SNOMED_CT", "mapping_coverage")]
    assert not acuity.passed and acuity.severity == "warning" and "warning below 99%" in acuity.expected
    gp = found[("gp_events", "SNOMED_Code", "mapping_coverage")]
    assert not gp.passed and gp.severity == "critical" and "critical below 90%" in gp.expected


def _with_settings(**coverage) -> ValidationSettings:
    return ValidationSettings(mapping_coverage=coverage) if coverage else SETTINGS


def test_per_field_override_and_wrong_system_codes_are_named(extract, tmp_path, skip_data_docs):
    settings = _with_settings(
        fields={"ecds.EC_Acuity_SNOMED_CT": {"critical_below": 0.5, "warning_below": 0.6}}
    )
    _with_coverage(extract, _coverage_payload(acuity_mapped=88, wrong_rows=12))
    report = run_validation(extract, tmp_path / "outputs", settings, EXTRACT_DATE)
    found = _coverage_results(report)
    assert found[("ecds", "EC_Acuity_SNOMED_CT", "mapping_coverage")].passed  # 88% >= 60%
    wrong = found[("ecds", "EC_Acuity_SNOMED_CT", "wrong_system_codes")]
    assert not wrong.passed and wrong.severity == "warning" and wrong.n_rows == 12
    assert "12 rows look like Read v2 / CTV3 codes" in wrong.expected
    assert wrong.examples == ("XaIyz (12 rows, Read v2 / CTV3)",)
    assert report.passed


def test_an_extract_without_coverage_file_is_judged_as_before(extract, tmp_path, skip_data_docs):
    before = run_validation(extract, tmp_path / "a", SETTINGS, EXTRACT_DATE)
    assert before.mapping_coverage == [] and not _coverage_results(before)
    _with_coverage(extract, _coverage_payload(acuity_mapped=100))
    after = run_validation(extract, tmp_path / "b", SETTINGS, EXTRACT_DATE)
    # The extra file is neither an unreadable table nor a stale one: the table checks are unchanged.
    assert [r for r in after.results if r.kind not in ("mapping_coverage",)] == before.results
    assert after.row_counts == before.row_counts and after.passed


def test_a_damaged_coverage_file_fails_the_gate(extract, tmp_path, skip_data_docs):
    (extract / "mapping_coverage.json").write_text("{not json", encoding="utf-8")
    report = run_validation(extract, tmp_path / "outputs", SETTINGS, EXTRACT_DATE)
    assert not report.passed
    assert report.critical_failures[0].table == "mapping_coverage.json"


def test_coverage_limits_in_the_wrong_order_are_refused():
    with pytest.raises(ValueError, match="critical_below must be at most"):
        ValidationSettings(mapping_coverage={"warning_below": 0.8, "critical_below": 0.9})
    with pytest.raises(ValueError, match=r"is not <source>\.<field>"):
        ValidationSettings(mapping_coverage={"fields": {"EC_Acuity_SNOMED_CT": {"critical_below": 0.9}}})


def test_data_docs_show_a_mapping_coverage_page_linked_from_the_index(extract, tmp_path):
    _with_coverage(extract, _coverage_payload(acuity_mapped=92, wrong_rows=2))
    report = run_validation(extract, tmp_path / "outputs", SETTINGS, EXTRACT_DATE)
    index = report.data_docs_index.read_text(encoding="utf-8")
    assert "mapping_coverage.html" in index
    page = (report.data_docs_index.parent / "mapping_coverage.html").read_text(encoding="utf-8")
    assert "Mapping coverage" in page and "EC_Acuity_SNOMED_CT" in page and "92.0%" in page
    assert "999999999 (6 rows)" in page and "XaIyz (2 rows, Read v2 / CTV3)" in page
    assert "3 resubmitted contacts removed" in page


def _printed_text(page: Path, folder: Path) -> str:
    """The text headless Chromium prints from ``page`` (no network needed for it to show)."""
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None or shutil.which("pdftotext") is None:
        pytest.skip("needs chromium and poppler-utils (pdftotext): .ci/run installs them")
    pdf = folder / f"{page.parent.name}.pdf"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={folder / 'profile'}",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout


def test_data_docs_are_kept_per_extract_with_an_index_that_opens_offline(extract, tmp_path):
    output_dir = tmp_path / "outputs"
    first = run_validation(extract, output_dir, SETTINGS, EXTRACT_DATE)
    tables = valid_tables()
    tables["apc_spells"].loc[3, "discharge_date"] = "2019-01-01"
    second = run_validation(write_extract(tmp_path / "next", tables), output_dir, SETTINGS, EXTRACT_DATE)
    assert first.snapshot_hash != second.snapshot_hash and not second.passed

    docs = output_dir / "data_docs"
    # Each extract keeps its own page: the second validation did not overwrite the first.
    assert first.data_docs_index.is_file() and second.data_docs_index.is_file()
    assert first.data_docs_index.parent != second.data_docs_index.parent
    index = (docs / "index.html").read_text(encoding="utf-8")
    for report in (first, second):
        assert f"{report.snapshot_hash[:16]}/index.html" in index
    assert index.index(second.snapshot_hash[:16]) < index.index(first.snapshot_hash[:16])  # newest first
    page = second.data_docs_index.read_text(encoding="utf-8")
    assert "apc_spells" in page and "critical" in page and "../index.html" in page
    # Nothing loads from the internet: no script, no stylesheet link, no http(s) address.
    for text in (index, page, first.data_docs_index.read_text(encoding="utf-8")):
        assert "<script" not in text and "<link" not in text
        assert "http://" not in text and "https://" not in text
    # Validating the same extract again replaces only its own page.
    run_validation(extract, output_dir, SETTINGS, EXTRACT_DATE)
    assert second.data_docs_index.read_text(encoding="utf-8") == page
    assert len([p for p in docs.iterdir() if (p / "summary.json").is_file()]) == 2
    # Opened offline, both pages show their text.
    printed_index = _printed_text(docs / "index.html", tmp_path)
    assert "validations of extracts" in printed_index and second.snapshot_hash[:16] in printed_index
    printed_page = _printed_text(second.data_docs_index, tmp_path)
    assert "extract validation" in printed_page and "apc_spells" in printed_page
