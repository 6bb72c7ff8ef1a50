"""The command line: help for every command, and one clear line plus a hint on bad input."""

import pytest
from typer.testing import CliRunner

from riskstrat.config import write_relocated_config
from riskstrat.pipelines.cli import app

COMMANDS = [
    "demo",
    "generate",
    "validate",
    "features",
    "train",
    "promote",
    "worklists",
    "audit",
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
