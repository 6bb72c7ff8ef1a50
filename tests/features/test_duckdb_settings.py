"""DuckDB's memory limit and spill folder: from configs/features.yaml to the connection."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from riskstrat.errors import RiskstratError
from riskstrat.features.backends import connect_duckdb
from riskstrat.features.settings import FeatureSettings


def _setting(con, name: str) -> str:
    return con.raw_sql(f"SELECT current_setting('{name}')").fetchone()[0]


def test_memory_limit_and_spill_folder_reach_the_connection(tmp_path: Path) -> None:
    spill = tmp_path / "spill" / "duckdb"
    settings = FeatureSettings(duckdb_memory_limit="3GiB", duckdb_temp_directory=str(spill))
    con = connect_duckdb(settings)
    assert _setting(con, "memory_limit") == "3.0 GiB"
    assert Path(_setting(con, "temp_directory")) == spill
    assert spill.is_dir()


def test_default_is_half_of_ram_spilling_under_the_system_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    settings = FeatureSettings()
    assert settings.duckdb_memory_limit == "50%"
    con = connect_duckdb(settings)
    assert Path(_setting(con, "temp_directory")) == tmp_path / "riskstrat-duckdb"
    half = connect_duckdb(FeatureSettings(duckdb_memory_limit="50%"))
    full = connect_duckdb(FeatureSettings(duckdb_memory_limit="100%"))
    assert _setting(half, "memory_limit") != _setting(full, "memory_limit")


def test_empty_memory_limit_leaves_duckdb_default() -> None:
    assert FeatureSettings(duckdb_memory_limit="").duckdb_memory_limit is None


@pytest.mark.parametrize("value", ["8 gigs", "lots", "GB8", "-1GB"])
def test_invalid_memory_limit_fails_clearly(value: str) -> None:
    with pytest.raises(ValidationError, match="is not a memory size"):
        FeatureSettings(duckdb_memory_limit=value)


def test_unwritable_spill_folder_fails_clearly(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(RiskstratError, match="spill folder"):
        connect_duckdb(FeatureSettings(duckdb_temp_directory=str(blocker / "spill")))


def test_engine_settings_do_not_change_the_feature_fingerprint(tmp_path: Path) -> None:
    tuned = FeatureSettings(duckdb_memory_limit="2GB", duckdb_temp_directory=str(tmp_path))
    assert tuned.fingerprint() == FeatureSettings().fingerprint()
