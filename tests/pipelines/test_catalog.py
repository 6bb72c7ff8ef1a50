"""The outputs catalog: every path under the outputs folder, and the README's table of them."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from riskstrat.catalog import output_catalog
from riskstrat.pipelines.config import load_config
from riskstrat.settings import REPO_CONFIG_DIR

README = Path(__file__).resolve().parents[2] / "README.md"


def catalog_paths() -> set[str]:
    """Every path the catalog defines, relative to the outputs folder, as the README writes them."""
    outputs = output_catalog(Path("outputs"))
    folders = [
        outputs.raw,
        outputs.extract,
        outputs.truth,
        outputs.data_docs,
        outputs.features,
        outputs.mlflow_artifacts,
    ]
    folders += [outputs.reports, outputs.validation, outputs.prefect_home, outputs.decisions]
    folders += [outputs.monitoring]
    folders += [outputs.impact]
    files = [outputs.mlflow_db, outputs.practices_file, outputs.lock]
    week = str(outputs.week(date(2026, 1, 5))).replace("2026-01-05", "<week>")
    return {f"{p}/" for p in folders} | {str(p) for p in files} | {f"{week}/"}


def test_the_readme_outputs_table_lists_every_catalog_path():
    listed = set(
        re.findall(r"`(outputs/[^`]*)`", README.read_text(encoding="utf-8").split("| path | what |")[1])
    )
    assert listed == catalog_paths()


def test_shipped_settings_put_mlflow_where_the_catalog_says(tmp_path):
    config = load_config(REPO_CONFIG_DIR)
    outputs = output_catalog(tmp_path)
    assert config.model.mlflow.resolved_tracking_uri(tmp_path) == f"sqlite:///{outputs.mlflow_db.resolve()}"
    assert config.model.mlflow.resolved_artifact_dir(tmp_path) == outputs.mlflow_artifacts.resolve()


def test_paths_hang_off_the_outputs_folder(tmp_path):
    outputs = output_catalog(tmp_path)
    assert outputs.week(date(2026, 1, 5)) == tmp_path / "worklists" / "2026-01-05"
    assert outputs.feature_file("abc", date(2025, 1, 1), "k") == (
        tmp_path / "features" / "abc" / "features_2025-01-01_k.parquet"
    )
    assert outputs.latest_validation == tmp_path / "validation" / "latest.json"
