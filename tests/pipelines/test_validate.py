"""The validation gate as a Prefect task in a real flow, and its settings file."""

from __future__ import annotations

import importlib.util
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from prefect import flow, task

from riskstrat.errors import ContractError, SettingsError
from riskstrat.ingest.validation_settings import ValidationSettings
from riskstrat.io import write_parquet
from riskstrat.pipelines.validate import load_validation_settings, validation_gate
from riskstrat.settings import REPO_CONFIG_DIR, load_settings

EXTRACT_DATE = date(2025, 12, 31)


def _ingest_fixtures():
    """The valid extract builder of tests/ingest/test_validation.py (one definition of the fixture)."""
    path = Path(__file__).parents[1] / "ingest" / "test_validation.py"
    name = "riskstrat_test_validation_fixtures"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@task
def build_features(tables: dict[str, pd.DataFrame], output_dir: Path) -> Path:
    target = output_dir / "features" / "features.parquet"
    write_parquet(tables["patients"][["person_id"]], target)
    return target


@flow
def weekly_like_flow(extract_dir: Path, output_dir: Path) -> Path:
    report = validation_gate(extract_dir, output_dir, ValidationSettings(), EXTRACT_DATE)
    return build_features(report.tables, output_dir)


def test_flow_fails_at_the_gate_and_writes_nothing_downstream(prefect_harness, tmp_path):
    fixtures = _ingest_fixtures()
    tables = fixtures.valid_tables()
    tables["apc_spells"].loc[3, "discharge_date"] = "2019-01-01"
    extract_dir = fixtures.write_extract(tmp_path / "extract", tables)
    output_dir = tmp_path / "outputs"
    with pytest.raises(
        ContractError, match=r"apc_spells\.discharge_date: expected discharge_date not before"
    ):
        weekly_like_flow(extract_dir, output_dir)
    assert not (output_dir / "features").exists()
    assert (output_dir / "data_docs" / "index.html").is_file()


def test_flow_goes_on_after_a_valid_extract(prefect_harness, tmp_path):
    fixtures = _ingest_fixtures()
    extract_dir = fixtures.write_extract(tmp_path / "extract", fixtures.valid_tables())
    target = weekly_like_flow(extract_dir, tmp_path / "outputs")
    assert len(pd.read_parquet(target)) == fixtures.N_PEOPLE


def test_shipped_validation_yaml_loads_with_the_documented_defaults():
    settings = load_validation_settings(REPO_CONFIG_DIR / "validation.yaml")
    assert settings == ValidationSettings()
    assert settings.severity.ethnicity_known == "warning"
    assert settings.severity.patients_not_empty == "critical"
    assert settings.thresholds.ethnicity_not_known_share == 0.2


def test_every_setting_is_commented_in_the_yaml():
    text = (REPO_CONFIG_DIR / "validation.yaml").read_text().splitlines()
    keys = [line.split(":")[0].strip() for line in text if ":" in line and not line.lstrip().startswith("#")]
    for i, line in enumerate(text):
        if ":" in line and not line.lstrip().startswith("#"):
            assert text[i - 1].lstrip().startswith("#"), f"no comment above {line!r}"
    assert set(ValidationSettings.model_fields) <= set(keys)


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("severity:\n  codes_in_set: fatal\n", "severity.codes_in_set"),
        ("severity:\n  code_in_set: warning\n", "severity.code_in_set"),
        ("thresholds:\n  ethnicity_not_known_share: 1.5\n", "thresholds.ethnicity_not_known_share"),
        ("chunk_size: many\n", "chunk_size"),
        ("max_examples: 50\n", "max_examples"),
    ],
)
def test_invalid_validation_yaml_names_the_key(tmp_path, yaml_text, key):
    path = tmp_path / "validation.yaml"
    path.write_text(yaml_text)
    with pytest.raises(SettingsError, match=key.replace(".", r"\.")):
        load_settings(path, ValidationSettings)
