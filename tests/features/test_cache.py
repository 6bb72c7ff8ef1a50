"""The stored feature matrix is reused while extract and settings are unchanged."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from feature_fixtures import AS_OF, extract, hand_worked_rows

import riskstrat.pipelines.features as pipeline
from riskstrat.features.backends import connect, read_extract
from riskstrat.features.matrix import build_feature_matrix
from riskstrat.features.settings import FeatureSettings, OutcomeSettings
from riskstrat.io import folder_snapshot_hash, write_parquet
from riskstrat.pipelines.features import read_feature_matrix


@pytest.fixture
def extract_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "extract"
    folder.mkdir()
    for name, frame in extract(hand_worked_rows()).items():
        pq.write_table(frame, folder / f"{name}.parquet")
    return folder


def test_second_build_returns_the_stored_file_without_rebuilding(extract_dir, tmp_path, monkeypatch):
    output = tmp_path / "outputs"
    first = pipeline.build_feature_file(extract_dir, output, AS_OF, FeatureSettings(), OutcomeSettings())
    assert first.parent == output / "features" / folder_snapshot_hash(extract_dir)
    assert AS_OF.isoformat() in first.name
    matrix = pd.read_parquet(first)
    assert set(matrix["person_id"]) == {"p1", "p2", "p5", "p9"}

    def must_not_rebuild(*args, **kwargs):
        raise AssertionError("rebuilt an unchanged feature matrix")

    monkeypatch.setattr(pipeline, "build_feature_table", must_not_rebuild)
    assert (
        pipeline.build_feature_file(extract_dir, output, AS_OF, FeatureSettings(), OutcomeSettings()) == first
    )


def test_changed_settings_date_or_extract_rebuild(extract_dir, tmp_path):
    output = tmp_path / "outputs"
    first = pipeline.build_feature_file(extract_dir, output, AS_OF, FeatureSettings())
    windows = pipeline.build_feature_file(extract_dir, output, AS_OF, FeatureSettings(windows=[30, 365]))
    earlier = pipeline.build_feature_file(extract_dir, output, date(2024, 6, 30), FeatureSettings())
    assert len({first, windows, earlier}) == 3
    assert "ae_attendances_90d" not in pd.read_parquet(windows).columns
    # Engine tuning does not change the matrix, so it does not rebuild.
    tuned = pipeline.build_feature_file(extract_dir, output, AS_OF, FeatureSettings(duckdb_threads=1))
    assert tuned == first
    (extract_dir / "patients.parquet").unlink()
    pq.write_table(
        extract({"patients": hand_worked_rows()["patients"][:2]})["patients"],
        extract_dir / "patients.parquet",
    )
    changed = pipeline.build_feature_file(extract_dir, output, AS_OF, FeatureSettings())
    assert changed != first and set(pd.read_parquet(changed)["person_id"]) == {"p1", "p2"}


def test_prefect_task_wraps_the_pure_function(extract_dir, tmp_path):
    path = pipeline.build_features.fn(extract_dir, tmp_path / "out", AS_OF, FeatureSettings())
    assert path.is_file()


@pytest.mark.parametrize("outcomes", [None, OutcomeSettings()], ids=["scoring", "training"])
def test_cached_matrix_reads_back_as_the_pandas_matrix(extract_dir, tmp_path, outcomes):
    path = pipeline.build_feature_file(extract_dir, tmp_path / "out", AS_OF, FeatureSettings(), outcomes)
    tables = read_extract(connect(FeatureSettings()), extract_dir)
    matrix = build_feature_matrix(tables, AS_OF, FeatureSettings(), outcomes)
    # As the cache was written before it was written from Arrow: the pandas matrix via to_parquet.
    write_parquet(matrix, tmp_path / "from_pandas.parquet")
    cached = pd.read_parquet(path)
    pd.testing.assert_frame_equal(cached, pd.read_parquet(tmp_path / "from_pandas.parquet"))
    pd.testing.assert_frame_equal(cached, matrix)
    assert isinstance(cached["as_of"].iloc[0], date) and cached["person_id"].dtype == "str"
    if outcomes is not None:
        assert cached["emergency_admission"].dtype == "int64"
    pd.testing.assert_frame_equal(
        read_feature_matrix(path), read_feature_matrix(tmp_path / "from_pandas.parquet")
    )


def test_given_snapshot_hash_names_the_cache_folder(extract_dir, tmp_path):
    path = pipeline.build_feature_file(
        extract_dir, tmp_path / "out", AS_OF, FeatureSettings(), snapshot_hash="gate123"
    )
    assert path.parent == tmp_path / "out" / "features" / "gate123"
