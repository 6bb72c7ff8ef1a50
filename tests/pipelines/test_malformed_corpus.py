"""The malformed-input corpus, met as a user meets it: through the ``riskstrat`` command line.

Every case of the gate's corpus (``CORPUS`` in tests/ingest/test_validation.py, which
grows with each new class of bad extract) runs here through ``riskstrat validate``,
together with the cases that never reach the gate: hostile text in failing values,
broken settings files and unusable folders. Each asserts what a user relies on:

- the verdict (exit 1 for a critical failure or a settings error, 0 for a pass or a warning);
- the table and column (or the settings file and key) named in the output;
- no traceback and no raw control characters on the terminal;
- nothing written downstream, and last week's outputs left as they were.

The slow cases at the end run whole flows in a subprocess, as an operator would, and
also check that no person ID from a failing extract reaches the Prefect database.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from riskstrat.pipelines.cli import app
from riskstrat.pipelines.config import write_relocated_config

runner = CliRunner()
RISKSTRAT = Path(sys.executable).with_name("riskstrat")


def _ingest_fixtures():
    """The valid-extract builder and gate corpus of tests/ingest/test_validation.py (one definition)."""
    path = Path(__file__).parents[1] / "ingest" / "test_validation.py"
    name = "riskstrat_test_validation_fixtures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


fixtures = _ingest_fixtures()


def _config(tmp_path: Path, changes: dict | None = None) -> tuple[Path, Path]:
    """A settings folder whose outputs go under tmp_path/outputs, dated like the fixtures."""
    output_dir = tmp_path / "outputs"
    merged = {"data.yaml": {"extract_date": fixtures.EXTRACT_DATE.isoformat()}}
    for name, values in (changes or {}).items():
        merged.setdefault(name, {}).update(values)
    config_dir = write_relocated_config(tmp_path / "configs", output_dir, merged)
    return config_dir, output_dir


def _last_week(output_dir: Path) -> tuple[Path, bytes]:
    """A week published last week (list and history), which no failed run may touch."""
    from riskstrat.io import write_parquet
    from riskstrat.worklists.history import HISTORY_COLUMNS, WEEK_HISTORY

    folder = output_dir / "worklists" / "2025-12-22"
    folder.mkdir(parents=True)
    earlier = folder / "north.csv"
    earlier.write_bytes(b"Rank,Person ID\n1,P001\n")
    row = {"week": "2025-12-22", "mdt": "North", "person_id": "P001", "practice_code": "M85001"}
    history = pd.DataFrame([{**row, "rank": 1, "probability": 0.5, "risk_band": "Very high"}])
    write_parquet(history[list(HISTORY_COLUMNS)], folder / WEEK_HISTORY)
    return earlier, earlier.read_bytes()


def _assert_user_facing(output: str) -> None:
    assert "Traceback" not in output, output
    assert "\x1b" not in output, repr(output)  # no raw escape codes from the data or from rich


# ----------------------------------------------------------------------------- the gate's corpus


@pytest.mark.parametrize(
    ("mutation", "after_write", "severity", "table", "column", "kind"),
    [case[1:] for case in fixtures.CORPUS],
    ids=[case[0] for case in fixtures.CORPUS],
)
def test_gate_corpus_through_the_command_line(
    tmp_path, skip_data_docs, mutation, after_write, severity, table, column, kind
):
    config_dir, output_dir = _config(tmp_path)
    earlier, earlier_bytes = _last_week(output_dir)
    tables = fixtures.valid_tables()
    if mutation:
        mutation(tables)
    folder = fixtures.write_extract(tmp_path / "extract", tables)
    if after_write:
        after_write(folder)

    result = runner.invoke(app, ["--config-dir", str(config_dir), "validate", str(folder)])

    _assert_user_facing(result.output)
    assert result.exit_code == (1 if severity == "critical" else 0), result.output
    if severity:
        where = f"{table}.{column}" if column else table
        assert where in result.output, result.output
        assert severity in result.output
    assert not (output_dir / "features").exists()
    assert earlier.read_bytes() == earlier_bytes


@pytest.fixture
def skip_data_docs(monkeypatch):
    """Data Docs are rendered and tested elsewhere; the corpus is about verdicts and messages."""
    import riskstrat.ingest.validation as validation

    monkeypatch.setattr(
        validation, "build_data_docs", lambda context, docs_dir, **_: Path(docs_dir) / "index.html"
    )


# ----------------------------------------------------------------------------- hostile text in data

HOSTILE_VALUES = {
    "rich markup close tag": "[/]",
    "rich link markup": "[link=https://example.org]1[/link]",
    "ansi escape codes": "\x1b[2J\x1b[31mX",
    "formula": '=HYPERLINK("https://example.org","1")',
    "carriage return": "1\rZZ",
    "forged hint line": "7\nhint: all fine, nothing to fix",
    "bidi override": "\u202e7",
}


@pytest.mark.parametrize("value", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
def test_hostile_failing_value_prints_as_inert_text(tmp_path, skip_data_docs, value):
    config_dir, _ = _config(tmp_path)
    tables = fixtures.valid_tables()
    fixtures._set_row("patients", "sex", 4, value)(tables)
    folder = fixtures.write_extract(tmp_path / "extract", tables)

    result = runner.invoke(app, ["--config-dir", str(config_dir), "validate", str(folder)])

    _assert_user_facing(result.output)
    assert result.exit_code == 1, result.output
    assert "patients.sex" in result.output
    assert "\r" not in result.output
    assert "\u202e" not in result.output
    assert not [line for line in result.output.splitlines() if line.startswith("hint: all fine")]
    if value.startswith("["):
        # Shown as written: markup in data neither crashes the terminal nor changes what it shows.
        assert value in result.output.replace("\n", ""), result.output


# ----------------------------------------------------------------------------- broken settings


def _write(path: Path, text: str) -> Callable[[Path], None]:
    return lambda config_dir: (config_dir / path).write_text(text, encoding="utf-8")


def _set_setting(file: str, key: str, value) -> Callable[[Path], None]:
    def change(config_dir: Path) -> None:
        settings = yaml.safe_load((config_dir / file).read_text(encoding="utf-8"))
        settings[key] = value
        (config_dir / file).write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")

    return change


def _duplicate_key(config_dir: Path) -> None:
    path = config_dir / "features.yaml"
    text = path.read_text(encoding="utf-8")
    first = next(line for line in text.splitlines() if line and not line[0].isspace() and ":" in line)
    path.write_text(text + first + "\n", encoding="utf-8")


SETTINGS_CASES = {
    "not yaml": (_write(Path("model.yaml"), "seed: [1, 2\n"), "model.yaml"),
    "unknown key": (_set_setting("fairness.yaml", "tolerence", 0.1), "tolerence"),
    "wrong type": (_set_setting("synthetic.yaml", "people", "many"), "people"),
    "top level is a list": (_write(Path("schedules.yaml"), "- a\n- b\n"), "schedules.yaml"),
    "empty file": (_write(Path("outcomes.yaml"), ""), "outcomes.yaml"),
    "duplicate key": (_duplicate_key, "features.yaml"),
    "missing file": (lambda config_dir: (config_dir / "mdts.yaml").unlink(), "mdts.yaml"),
}


@pytest.mark.parametrize(("change", "named"), SETTINGS_CASES.values(), ids=SETTINGS_CASES.keys())
def test_broken_settings_fail_at_start_up_naming_file_and_key(tmp_path, change, named):
    config_dir, output_dir = _config(tmp_path)
    earlier, earlier_bytes = _last_week(output_dir)
    change(config_dir)
    folder = fixtures.write_extract(tmp_path / "extract", fixtures.valid_tables())

    result = runner.invoke(app, ["--config-dir", str(config_dir), "validate", str(folder)])

    _assert_user_facing(result.output)
    assert result.exit_code == 1, result.output
    assert named in result.output
    assert not (output_dir / "validation").exists()  # stopped before any work
    assert earlier.read_bytes() == earlier_bytes


def test_unusable_output_folder_is_a_settings_error(tmp_path):
    config_dir, output_dir = _config(tmp_path)
    if os.geteuid() == 0:
        output_dir.write_text("")  # root may write anywhere: a file where the folder should be
    else:
        output_dir.mkdir()
        output_dir.chmod(0o555)
    try:
        folder = fixtures.write_extract(tmp_path / "extract", fixtures.valid_tables())
        result = runner.invoke(app, ["--config-dir", str(config_dir), "validate", str(folder)])
    finally:
        if output_dir.is_dir():
            output_dir.chmod(0o755)
    _assert_user_facing(result.output)
    assert result.exit_code == 1, result.output
    assert "data.output_dir" in result.output


# ----------------------------------------------------------------------------- whole flows, as operators run them

INJECTED_ID = "ZZQ7PERSON"
"""A person ID that occurs nowhere else, to find it wherever it leaks."""


def _run(config_dir: Path, *args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PREFECT_HOME": str(home), "COLUMNS": "80"}
    env.pop("PREFECT_API_URL", None)
    return subprocess.run(
        [str(RISKSTRAT), "--config-dir", str(config_dir), *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )


def _prefect_text(home: Path) -> str:
    """Every text value in the Prefect database (flow runs, task runs, states, logs, events)."""
    database = home / "prefect.db"
    if not database.is_file():
        return ""
    chunks = []
    with sqlite3.connect(database) as connection:
        tables = [row[0] for row in connection.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for row in connection.execute(f'select * from "{table}"'):
                chunks.extend(str(v) for v in row if isinstance(v, str | bytes))
    return "\n".join(chunks)


@pytest.mark.slow
@pytest.mark.parametrize("command", [["features"], ["worklists", "--week", "2026-01-05"]])
def test_failing_flow_prints_one_error_writes_nothing_and_keeps_ids_out_of_prefect(tmp_path, command):
    config_dir, output_dir = _config(tmp_path)
    earlier, earlier_bytes = _last_week(output_dir)
    tables = fixtures.valid_tables()
    # An orphan event whose person ID the gate gives as an example of the failure.
    fixtures._set_row("gp_medications", "person_id", 3, INJECTED_ID)(tables)
    folder = fixtures.write_extract(tmp_path / "extract", tables)
    home = tmp_path / "prefect"
    # The weekly run checks mdts.practices_file at start-up, before the gate: supply one.
    practices = output_dir / "reference" / "practices.csv"
    practices.parent.mkdir(parents=True, exist_ok=True)
    practices.write_text(
        "practice_code,practice_name,neighbourhood,lad_code,list_size\nM85001,A,North,E08000027,100\n"
    )

    result = _run(config_dir, *command, "--extract", str(folder), home=home)

    _assert_user_facing(result.stdout + result.stderr)
    assert result.returncode == 1, result.stderr
    assert "gp_medications.person_id" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 12, result.stderr
    assert not (output_dir / "features").exists()
    assert earlier.read_bytes() == earlier_bytes
    assert not list((output_dir / "worklists").glob("2026-*"))
    # The ID may appear in the validation report (documented) and on the user's terminal,
    # never in Prefect's database of runs, states, logs and events.
    assert INJECTED_ID not in _prefect_text(home)
    allowed = {output_dir / "validation", output_dir / "data_docs"}
    for path in output_dir.rglob("*"):
        if path.is_file() and not any(a in path.parents for a in allowed):
            assert INJECTED_ID.encode() not in path.read_bytes(), path
