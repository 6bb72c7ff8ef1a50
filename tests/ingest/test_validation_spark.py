"""The validation gate on Spark gives the pandas gate's report, on local[2] and on a local cluster.

The pandas gate is the reference. One extract carries a fault of most kinds the
gate knows (hostile IDs, codes, dates that do not parse, orphans, events after
death or before birth, duplicates, a corrupt file), in Parquet and in CSV; both
gates must give the same results, row for row: pass or fail, rows failing,
rows checked and the pseudonymised examples.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_social_care_returns import _social_care
from test_validation import EXTRACT_DATE, SETTINGS, valid_tables, write_extract

from riskstrat.ingest.validation import validate_extract
from riskstrat.ingest.validation_settings import ValidationSettings
from riskstrat.ingest.validation_spark import Piece, table_pieces

SPARK = [pytest.mark.slow, pytest.mark.spark]
NHS_SHAPED = ["4010232137", "4010311284", "4010390425"]  # valid check digits, not in patients


def hostile_tables() -> dict[str, pd.DataFrame]:
    """The valid extract with faults of most kinds the gate checks, in several tables."""
    tables = valid_tables()
    patients = tables["patients"].copy()
    patients.loc[1, "person_id"] = "P001\u200b"  # invisible character in an ID
    patients.loc[2, "person_id"] = " P002"  # space before an ID
    patients.loc[3, "sex"] = "M"
    patients.loc[4, "lsoa_code"] = "W01000001"
    patients.loc[5:12, "ethnic_category"] = "99"
    patients.loc[6, "date_of_death"] = "1900-01-01"  # a placeholder death
    patients.loc[7, "birth_date"] = "1890-01-01"  # too old
    tables["patients"] = patients
    appointments = tables["gp_appointments"].copy()  # CSV
    appointments.loc[2, "appointment_date"] = "03/04/2024"
    appointments.loc[41, "appointment_date"] = " 2024-05-01"
    appointments.loc[55, "appointment_date"] = "2026-05-04"  # after the extract date
    appointments.loc[9, "mode"] = "video"
    tables["gp_appointments"] = appointments
    medications = tables["gp_medications"].copy()
    medications.loc[[3, 11, 25], "person_id"] = ["X3", "X11", "X25"]  # orphans
    tables["gp_medications"] = medications
    diagnoses = tables["gp_diagnoses"].copy()
    diagnoses.loc[[4, 5, 6], "person_id"] = NHS_SHAPED  # NHS-number-shaped IDs, orphans too
    diagnoses.loc[8, "condition"] = "gout_typo"
    diagnoses.loc[9, "event_date"] = "1938-01-01"  # before P009's birth
    tables["gp_diagnoses"] = diagnoses
    community = tables["community_contacts"].copy()
    community.loc[0, "contact_date"] = "2025-07-01"  # after P000's death
    tables["community_contacts"] = community
    ae = tables["ae_attendances"].copy()  # CSV
    ae = pd.concat([ae, ae.iloc[[2]]], ignore_index=True)  # a duplicated attendance
    ae.loc[3, "acuity"] = "high"
    ae.loc[4, "arrival_datetime"] = "2024-05-05T10:15:00+01:00"
    tables["ae_attendances"] = ae
    apc = tables["apc_spells"].copy()
    apc.loc[20, "discharge_date"] = "2020-01-01"  # before admission
    apc.loc[21, "admission_method"] = "99"
    tables["apc_spells"] = apc
    # Social care with a missing return (Jan-Mar 2025 of the patients' City of London) and an orphan:
    # the returns check counts the events per return and the people per LSOA on Spark.
    care = _social_care(
        list(patients["person_id"][13:33]), ["2024-10-01", "2025-04-01", "2025-07-01"], "E09000001"
    )
    care.loc[3, "person_id"] = "X7"
    tables["social_care_events"] = care
    return tables


def hostile_extract(folder: Path) -> Path:
    """The hostile extract written to ``folder``, opt-outs as a corrupt Parquet file."""
    write_extract(folder, hostile_tables())
    (folder / "opt_outs.parquet").write_bytes(b"PAR1 cut short")
    return folder


def result_rows(report) -> list[tuple]:
    return [
        (r.table, r.column, r.kind, r.severity, r.expected, r.n_rows, r.n_checked, r.examples, r.passed)
        for r in report.results
    ]


@pytest.fixture(autouse=True)
def _skip_data_docs(monkeypatch):
    """Data Docs are built from the report either way (tested in test_validation.py)."""
    import riskstrat.ingest.validation as validation

    monkeypatch.setattr(
        validation, "build_data_docs", lambda context, docs_dir, **_: Path(docs_dir) / "index.html"
    )


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    from riskstrat.features.backends import spark_session

    session = spark_session("local[2]", "riskstrat-tests")
    session.conf.set("spark.sql.shuffle.partitions", "2")
    return session


def test_parquet_row_groups_are_cut_into_chunks_in_file_order(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": list(range(25))}), path, row_group_size=10)
    assert table_pieces(path, 4) == [
        Piece(0, 0),
        Piece(0, 1),
        Piece(0, 2),
        Piece(1, 0),
        Piece(1, 1),
        Piece(1, 2),
        Piece(2, 0),
        Piece(2, 1),
    ]
    assert table_pieces(path, 100) == [Piece(0, 0), Piece(1, 0), Piece(2, 0)]
    (tmp_path / "t.csv").write_text("x\n1\n")
    assert table_pieces(tmp_path / "t.csv", 4) == [Piece(-1, 0)]


def test_the_gate_runs_on_spark_only_with_the_pyspark_backend(monkeypatch):
    import riskstrat.pipelines.spark as spark_flow
    import riskstrat.pipelines.validate as validate

    session = object()
    monkeypatch.setattr(spark_flow, "weekly_session", lambda settings: session)
    seen = {}
    monkeypatch.setattr(validate, "validation_gate", lambda *args, **kwargs: seen.update(kwargs))

    def config(backend: str) -> SimpleNamespace:
        return SimpleNamespace(
            features=SimpleNamespace(backend=backend, spark_master="local[2]"),
            data=SimpleNamespace(output_dir=Path("out"), extract_date=EXTRACT_DATE),
            validation=SETTINGS,
            sources=SimpleNamespace(social_care=None),
        )

    validate.run_gate(config("pyspark"), Path("extract"))
    assert seen["spark"] is session and seen["keep_tables"] is False
    validate.run_gate(config("duckdb"), Path("extract"))
    assert seen["spark"] is None


@pytest.mark.parametrize("chunk_size", [SETTINGS.chunk_size, 7], ids=["one-chunk", "pieces-of-7"])
@pytest.mark.slow
@pytest.mark.spark
def test_spark_gate_gives_the_pandas_gates_results_on_a_hostile_extract(tmp_path, spark, chunk_size):
    folder = hostile_extract(tmp_path / "extract")
    previous = {"patients": 300}  # a row-count drop to a tenth: a whole-table check fails too
    pandas_report = validate_extract(
        folder, tmp_path / "pandas", SETTINGS, EXTRACT_DATE, previous, keep_tables=False
    )
    spark_report = validate_extract(
        folder,
        tmp_path / "spark",
        ValidationSettings(chunk_size=chunk_size),
        EXTRACT_DATE,
        previous,
        keep_tables=False,
        spark=spark,
    )
    failed = {(r.table, r.kind) for r in pandas_report.results if not r.passed}
    # The fixture exercises what it claims (so equal reports are not equal by being empty).
    assert {
        ("patients", "text_printable"),
        ("patients", "text_trimmed"),
        ("patients", "codes_in_set"),
        ("patients", "lsoa_well_formed"),
        ("patients", "ethnicity_known"),
        ("patients", "age_plausible"),
        ("patients", "row_count_change"),
        ("gp_appointments", "types_parse"),
        ("gp_appointments", "date_not_after_extract_date"),
        ("gp_medications", "person_in_patients"),
        ("gp_diagnoses", "id_not_nhs_number"),
        ("gp_diagnoses", "condition_in_vocabulary"),
        ("gp_diagnoses", "not_before_birth"),
        ("community_contacts", "not_after_death"),
        ("ae_attendances", "id_unique"),
        ("apc_spells", "date_order"),
        ("opt_outs", "table_present"),
        ("social_care_events", "person_in_patients"),
        ("social_care_events", "social_care_returns"),
    } <= failed
    assert result_rows(spark_report) == result_rows(pandas_report)
    assert spark_report.row_counts == pandas_report.row_counts
    orphans = {(r.table, r.kind): r for r in spark_report.results}[("gp_medications", "person_in_patients")]
    # P001 and P002 are orphans too: their IDs in patients carry an invisible character or a space.
    assert orphans.n_rows == 5
    assert orphans.examples == tuple(f"person_id={p}" for p in ("P001", "P002", "X3", "X11", "X25"))


@pytest.mark.slow
@pytest.mark.spark
def test_spark_gate_keeps_typed_tables_only_when_asked(tmp_path, spark):
    folder = write_extract(tmp_path / "extract", valid_tables())
    report = validate_extract(
        folder, tmp_path / "out", SETTINGS, EXTRACT_DATE, keep_tables=("patients",), spark=spark
    )
    assert report.passed, [r.problem().describe() for r in report.critical_failures]
    assert set(report.tables) == {"patients"}
    reference = validate_extract(folder, tmp_path / "ref", SETTINGS, EXTRACT_DATE, keep_tables=("patients",))
    pd.testing.assert_frame_equal(report.tables["patients"], reference.tables["patients"])


LOCAL_CLUSTER_SCRIPT = """
import json, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import riskstrat.ingest.validation as validation
validation.build_data_docs = lambda context, docs_dir, **_: Path(docs_dir) / "index.html"
from test_validation_spark import EXTRACT_DATE, SETTINGS, hostile_extract, result_rows
from riskstrat.features.backends import spark_session
from riskstrat.ingest.validation import validate_extract
from riskstrat.ingest.validation_settings import ValidationSettings

session = spark_session("local-cluster[2,1,1024]", "riskstrat-tests-cluster")
folder = hostile_extract(Path({tmp!r}) / "extract")
spark_report = validate_extract(folder, Path({tmp!r}) / "spark", ValidationSettings(chunk_size=7),
                                EXTRACT_DATE, keep_tables=False, spark=session)
executors = session.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1
pandas_report = validate_extract(folder, Path({tmp!r}) / "pandas", SETTINGS, EXTRACT_DATE, keep_tables=False)
print(json.dumps({{"executors": executors, "same": result_rows(spark_report) == result_rows(pandas_report),
                   "failed": len([r for r in spark_report.results if not r.passed])}}))
session.stop()
"""


@pytest.mark.slow
@pytest.mark.spark
def test_spark_gate_on_a_local_cluster_of_two_executor_jvms(tmp_path):
    """Two executor JVMs on this machine: the tasks, the broadcast lookup and the results cross processes.

    ``local-cluster`` starts its executors with Spark's launcher scripts and jars, which
    the pip-installed PySpark carries (``SPARK_HOME`` is the package folder).
    """
    pyspark = pytest.importorskip("pyspark")
    # SPARK_HOME mirrors the installed package, so the executors' work folders (their logs,
    # under SPARK_HOME/work in local-cluster mode) land in tmp_path, not in the package.
    home = tmp_path / "spark_home"
    home.mkdir()
    for entry in Path(pyspark.__file__).parent.iterdir():
        if entry.name != "work":
            (home / entry.name).symlink_to(entry)
    env = {**os.environ, "SPARK_HOME": str(home)}
    script = LOCAL_CLUSTER_SCRIPT.format(tests=str(Path(__file__).parent), tmp=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["executors"] == 2
    assert found["same"] and found["failed"] > 10
