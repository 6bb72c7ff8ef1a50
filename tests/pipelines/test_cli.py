"""The command line: help for every command, and one clear line plus a hint on bad input."""

import pytest
from typer.testing import CliRunner

from riskstrat.pipelines.cli import app
from riskstrat.pipelines.config import write_relocated_config

COMMANDS = [
    "demo",
    "generate",
    "adapt",
    "validate",
    "features",
    "train",
    "promote",
    "worklists",
    "monitor",
    "decisions",
    "audit",
    "evaluate-impact",
    "serve",
    "docs",
]

runner = CliRunner()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_top_level_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


def test_bad_week_is_one_line_with_hint_and_no_traceback():
    result = runner.invoke(app, ["worklists", "--week", "2025-13-01"])
    assert result.exit_code == 1
    assert "error: --week '2025-13-01' is not a date" in result.output
    assert "hint: Use YYYY-MM-DD" in result.output
    assert "Traceback" not in result.output


def test_invalid_settings_fail_before_any_work(tmp_path):
    write_relocated_config(tmp_path, tmp_path / "out")
    (tmp_path / "features.yaml").write_text("windows: [30, -5]\n")
    result = runner.invoke(app, ["--config-dir", str(tmp_path), "features"])
    assert result.exit_code == 1
    assert "features.yaml" in result.output and "windows" in result.output


def test_validate_missing_extract_exits_non_zero(tmp_path):
    write_relocated_config(tmp_path, tmp_path / "out")
    result = runner.invoke(app, ["--config-dir", str(tmp_path), "validate", str(tmp_path / "no-extract")])
    assert result.exit_code != 0
    assert "patients" in result.output


def test_data_in_an_error_is_plain_text_with_control_characters_shown(tmp_path):
    # A value that is rich markup ([/] crashed the CLI; [link=...] changed the text) and an ANSI escape.
    folder = tmp_path / "x\x1b[31m[/]y[link=https:evil]z"
    result = runner.invoke(app, ["--config-dir", str(folder), "features"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "MarkupError" not in result.output
    assert "x\\x1b[31m[/]y[link=https:evil]z" in result.output
    assert "\x1b" not in result.output


def test_printable_escapes_every_control_character_but_newline():
    from riskstrat.pipelines.terminal import printable

    assert printable("a\x1b[2Jb\x07c\x9bd\u202ee\nf\tg") == "a\\x1b[2Jb\\x07c\\x9bd\\u202ee\nf\\x09g"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\u2028b\u2029c\x85d", "a\\u2028b\\u2029c\\x85d"),  # line and paragraph separators, NEL
        ("P\u200bI\u200cD\u200d1", "P\\u200bI\\u200cD\\u200d1"),  # zero-width space, non-joiner, joiner
        ("a\u2060b\u2064c\ufeffd\u00ade", "a\\u2060b\\u2064c\\ufeffd\\xade"),  # word joiner, BOM, soft hyphen
        ("\u061c\u2066x\u2069", "\\u061c\\u2066x\\u2069"),  # bidirectional mark and isolates
        ("North\U000e0041", "North\\U000e0041"),  # a tag character (hidden text)
        ("bad\udcff", "bad\\udcff"),  # a lone surrogate (an undecodable file name) cannot be encoded
        ("caf\u00e9 \u0645 \U0001f600 \u00a0", "caf\u00e9 \u0645 \U0001f600 \u00a0"),  # visible text stays
    ],
)
def test_printable_escapes_invisible_and_line_separating_characters(text, shown):
    from riskstrat.pipelines.terminal import printable

    assert printable(text) == shown
    assert len(printable(text).splitlines()) == 1


def test_a_settings_path_that_is_not_a_file_is_named_for_what_it_is(tmp_path):
    write_relocated_config(tmp_path, tmp_path / "out")
    (tmp_path / "features.yaml").unlink()
    (tmp_path / "features.yaml").mkdir()
    result = runner.invoke(app, ["--config-dir", str(tmp_path), "features"])
    assert result.exit_code == 1, result.output
    assert f"error: {tmp_path / 'features.yaml'} is a folder, not a file" in result.output
    assert "Traceback" not in result.output


def test_deeply_nested_settings_are_a_settings_error_not_a_crash(tmp_path):
    write_relocated_config(tmp_path, tmp_path / "out")
    (tmp_path / "features.yaml").write_text("windows: " + "[" * 20000 + "]" * 20000 + "\n")
    result = runner.invoke(app, ["--config-dir", str(tmp_path), "features"])
    assert result.exit_code == 1, result.output
    assert f"error: {tmp_path / 'features.yaml'}: lists or mappings nested more than" in result.output
    assert "RecursionError" not in result.output and "Traceback" not in result.output


def test_validation_table_is_never_cut_short_outside_a_terminal(tmp_path):
    import io
    from datetime import date

    from riskstrat.ingest.validation import ExpectationResult, ValidationReport
    from riskstrat.pipelines.terminal import make_console
    from riskstrat.pipelines.validate import summary_table

    examples = ("person_id=ZZ[/]1", "person_id=ZZ\x1b[31m2", "person_id=[link=http://x]3")
    result = ExpectationResult(
        "community_contacts",
        "contact_date",
        "dates",
        "expect_column_values_to_be_between",
        "critical",
        "every contact_date on or before the extract date and after the birth date [bold]",
        3,
        100,
        examples,
        False,
    )
    report = ValidationReport("abc", tmp_path, date(2025, 12, 31), [result], {"community_contacts": 100})
    buffer = io.StringIO()
    make_console(file=buffer).print(summary_table(report))
    text = buffer.getvalue()
    assert "community_contacts.contact_date" in text and "…" not in text
    assert "after the birth date [bold]" in text
    assert "person_id=ZZ[/]1, person_id=ZZ\\x1b[31m2, person_id=[link=http://x]3" in text
    assert "\x1b" not in text


def test_duplicate_key_and_empty_file_fail_at_start_up(tmp_path):
    write_relocated_config(tmp_path, tmp_path / "out")
    (tmp_path / "features.yaml").write_text("windows: [30]\nbackend: duckdb\nwindows: [90]\n")
    result = runner.invoke(app, ["--config-dir", str(tmp_path), "features"])
    assert result.exit_code == 1
    assert (
        f"error: {tmp_path / 'features.yaml'}: key 'windows' appears twice, on lines 1 and 3" in result.output
    )
    (tmp_path / "features.yaml").write_text("")
    result = runner.invoke(app, ["--config-dir", str(tmp_path), "features"])
    assert result.exit_code == 1
    assert f"error: {tmp_path / 'features.yaml'} is empty" in result.output
    assert "Traceback" not in result.output


def test_unwritable_output_dir_is_a_configuration_error(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    write_relocated_config(tmp_path / "cfg", blocker / "outputs")
    result = runner.invoke(app, ["--config-dir", str(tmp_path / "cfg"), "features"])
    assert result.exit_code == 1, result.output
    assert f"error: data.output_dir = {blocker / 'outputs'}: cannot write there" in result.output
    assert "hint: Set data.output_dir" in result.output


# ----------------------------------------------------------------------------- whole commands in a subprocess


def _validation_fixtures():
    """valid_tables() and write_extract() of tests/ingest/test_validation.py (one definition)."""
    import importlib.util
    import sys
    from pathlib import Path

    name = "riskstrat_test_validation_fixtures"
    if name not in sys.modules:
        path = Path(__file__).parents[1] / "ingest" / "test_validation.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _riskstrat(config_dir, *args, home, wait=True):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PREFECT_HOME": str(home), "COLUMNS": "80"}
    env.pop("PREFECT_API_URL", None)
    command = [str(Path(sys.executable).with_name("riskstrat")), "--config-dir", str(config_dir), *args]
    if not wait:
        return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return subprocess.run(
        command, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600, check=False
    )


def _prefect_database_text(home) -> str:
    import sqlite3

    chunks = []
    with sqlite3.connect(home / "prefect.db") as connection:
        names = [row[0] for row in connection.execute("select name from sqlite_master where type='table'")]
        for name in names:
            for row in connection.execute(f'select * from "{name}"'):
                chunks.extend(
                    v if isinstance(v, str) else v.decode("utf-8", "replace")
                    for v in row
                    if isinstance(v, str | bytes)
                )
    return "\n".join(chunks)


PRACTICES_CSV = "practice_code,practice_name,neighbourhood,lad_code,list_size\nM85001,A,North,E08000027,100\n"


@pytest.mark.slow
def test_failed_gate_keeps_person_ids_out_of_prefect_and_logs(tmp_path):
    fixtures = _validation_fixtures()
    person = "ZZPERSON123"
    tables = fixtures.valid_tables()
    fixtures._set_row("gp_medications", "person_id", 3, person)(tables)
    output_dir = tmp_path / "out"
    fixtures.write_extract(output_dir / "extract", tables)
    (output_dir / "reference").mkdir(parents=True)
    (output_dir / "reference" / "practices.csv").write_text(PRACTICES_CSV)
    config_dir = write_relocated_config(
        tmp_path / "cfg", output_dir, {"data.yaml": {"extract_date": fixtures.EXTRACT_DATE.isoformat()}}
    )
    home = tmp_path / "prefect"

    validate = _riskstrat(config_dir, "validate", home=home)
    weekly = _riskstrat(config_dir, "worklists", "--week", "2026-01-05", home=home)

    assert validate.returncode == 1 and person in validate.stdout  # the user's own terminal
    assert weekly.returncode == 1, weekly.stderr
    errors = [line for line in weekly.stderr.splitlines() if line.startswith(("error:", "hint:"))]
    assert errors[0].startswith("error: gp_medications.person_id: expected every person_id to be in patients")
    assert person in errors[0] and errors[1].startswith("hint: ")
    # One line and a hint: no Prefect traceback or failure lines before it.
    assert "Traceback" not in weekly.stderr and "ContractError" not in weekly.stderr
    database = _prefect_database_text(home)
    assert "gp_medications.person_id: expected every person_id to be in patients; 1 row fail" in database
    assert "examples are not logged" in database
    assert person not in database
    # Only the validation report (documented) and the extract itself hold the ID.
    allowed = {output_dir / "extract", output_dir / "validation"}
    leaks = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file() and not any(a in p.parents for a in allowed) and person.encode() in p.read_bytes()
    ]
    assert leaks == []


@pytest.mark.slow
def test_weekly_run_checks_its_files_before_any_work(tmp_path):
    output_dir = tmp_path / "out"
    (output_dir / "reference").mkdir(parents=True)
    (output_dir / "reference" / "practices.csv").write_text(PRACTICES_CSV)
    key = tmp_path / "no-such-key.csv"
    config_dir = write_relocated_config(
        tmp_path / "cfg", output_dir, {"mdts.yaml": {"reidentification_key": str(key)}}
    )

    result = _riskstrat(config_dir, "worklists", home=tmp_path / "prefect")

    assert result.returncode == 1
    assert f"error: mdts.reidentification_key = {key}: file not found" in result.stderr
    assert not (output_dir / "validation").exists()  # the gate never ran
    (output_dir / "reference" / "practices.csv").unlink()
    result = _riskstrat(config_dir, "worklists", home=tmp_path / "prefect")
    assert result.returncode == 1
    assert (
        f"error: mdts.practices_file = {output_dir / 'reference' / 'practices.csv'}: file not found"
        in result.stderr
    )


@pytest.mark.slow
def test_prefect_server_does_not_outlive_a_killed_command(tmp_path):
    import os
    import signal
    import time
    from pathlib import Path

    home = tmp_path / "prefect"

    def servers() -> list[int]:
        mark = f"PREFECT_HOME={home}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if not entry.name.isdigit() or b"uvicorn" not in (entry / "cmdline").read_bytes():
                    continue
                alive = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
                if alive and mark in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    if not Path("/proc/self/environ").exists():
        pytest.skip("needs Linux /proc")
    config_dir = write_relocated_config(tmp_path / "cfg", tmp_path / "out")
    generated = _riskstrat(config_dir, "generate", "--people", "1000", home=home)
    assert generated.returncode == 0, generated.stderr
    run = _riskstrat(config_dir, "train", home=home, wait=False)
    deadline = time.monotonic() + 120
    while not servers() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert servers(), "the temporary server never started"
    time.sleep(1)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 5
    while servers() and time.monotonic() < deadline:
        time.sleep(0.1)
    left = servers()
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == []
