"""The read-national-extracts flow (`riskstrat adapt`): raw files in, contract tables and coverage out, atomically."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest" / "sources"))
from fake_source import (
    empty_contract_tables,
    fake_raw,
    registered_fake,
    write_raw_folder,
)

from riskstrat.ingest.contract import CONTRACT
from riskstrat.ingest.sources import SOURCES
from riskstrat.pipelines.config import load_config, write_relocated_config


@pytest.fixture
def fake():
    with registered_fake() as source:
        yield source


def _configs(root: Path) -> Path:
    """Shipped settings with outputs under ``root/outputs``, reading only the fake source."""
    sources = {name: {"enabled": False} for name in SOURCES if name != "fake_apc"}
    sources["fake_apc"] = {}
    return write_relocated_config(
        root / "configs",
        root / "outputs",
        {"sources.yaml": {"sources": sources, "contract_tables": [t for t in CONTRACT if t != "apc_spells"]}},
    )


def test_adapt_writes_tables_copies_and_coverage(tmp_path, fake):
    from riskstrat.pipelines.sources import adapt_task

    config = load_config(_configs(tmp_path))
    raw = write_raw_folder(Path(config.sources.raw_dir), empty_contract_tables())
    extract = Path(config.data.extract_dir)
    result = adapt_task.fn(config, raw, extract)
    assert result.extract_dir == extract and result.raw_dir == raw == tmp_path / "outputs" / "raw"
    spells = pd.read_parquet(extract / "apc_spells.parquet")
    assert list(spells.columns) == list(CONTRACT["apc_spells"].column_names)  # optional columns written empty
    assert list(spells["admission_method"]) == ["21", "11", "21", "99"]
    assert (extract / "patients.parquet").read_bytes() == (raw / "patients.parquet").read_bytes()
    coverage = json.loads((extract / "mapping_coverage.json").read_text(encoding="utf-8"))
    assert coverage["fields"][0]["source"] == "fake_apc" and coverage["fields"][0]["mapped"] == 3
    assert result.lowest == ("fake_apc.Admission_Method", 0.75, 4)
    assert result.coverage_headline() == "lowest mapping coverage: fake_apc.Admission_Method 75.0% of 4 rows"
    assert result.row_counts["apc_spells"] == 4 and result.row_counts["patients"] == 0
    assert result.notes == ("4 fake spells read",)


def test_a_failing_adapter_leaves_the_previous_extract_untouched(tmp_path, fake):
    from riskstrat.errors import ContractError
    from riskstrat.pipelines.sources import adapt_task

    config = load_config(_configs(tmp_path))
    raw = write_raw_folder(Path(config.sources.raw_dir), empty_contract_tables())
    extract = Path(config.data.extract_dir)
    adapt_task.fn(config, raw, extract)
    before = {p.name: p.read_bytes() for p in extract.iterdir()}
    bad = fake_raw()
    bad.loc[2, "Pseudo_ID"] = None
    write_raw_folder(raw, empty_contract_tables(), bad)
    with pytest.raises(ContractError) as caught:
        adapt_task.fn(config, raw, extract)
    assert caught.value.problems[0].column == "Pseudo_ID" and caught.value.problems[0].examples == ("S3",)
    assert {p.name: p.read_bytes() for p in extract.iterdir()} == before
    assert [p.name for p in extract.parent.iterdir() if p.name.startswith(".")] == []  # no staging left


def test_the_flow_and_the_command(tmp_path, fake, prefect_harness):
    from riskstrat.pipelines.cli import app

    configs = _configs(tmp_path)
    raw = write_raw_folder(tmp_path / "elsewhere", empty_contract_tables())
    runner = CliRunner()
    result = runner.invoke(
        app, ["--config-dir", str(configs), "adapt", "--raw", str(raw), "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 0, result.output
    assert "fake_apc.Admission_Method 75.0% of 4 rows" in result.output
    assert (tmp_path / "x" / "mapping_coverage.json").is_file()
    (raw / "fake_apc.csv").unlink()
    result = runner.invoke(app, ["--config-dir", str(configs), "adapt", "--raw", str(raw)])
    assert result.exit_code == 1
    assert (
        "error:" in result.output and "Fake APC spells" in result.output and "Traceback" not in result.output
    )


def test_an_empty_raw_dir_setting_is_a_clear_settings_error(tmp_path, fake):
    from riskstrat.errors import SettingsError
    from riskstrat.pipelines.sources import resolved_raw_dir

    config = load_config(_configs(tmp_path))
    config = type(config)(
        **{**config.__dict__, "sources": config.sources.model_copy(update={"raw_dir": None})}
    )
    with pytest.raises(SettingsError, match=r"sources\.raw_dir is empty"):
        resolved_raw_dir(config)
    assert resolved_raw_dir(config, "raw") == Path("raw")
