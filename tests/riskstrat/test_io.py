import pandas as pd
import pytest

from riskstrat.io import atomic_directory, atomic_path, folder_snapshot_hash, write_parquet


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "list.csv"
    target.write_text("last week")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "last week"
    assert [p.name for p in tmp_path.iterdir()] == ["list.csv"]


def test_atomic_directory_swaps_only_when_complete(tmp_path):
    target = tmp_path / "2026-11-23"
    with atomic_directory(target) as staging:
        (staging / "a.csv").write_text("v1")
    assert (target / "a.csv").read_text() == "v1"
    with pytest.raises(RuntimeError), atomic_directory(target) as staging:
        (staging / "a.csv").write_text("v2")
        raise RuntimeError("export failed")
    assert (target / "a.csv").read_text() == "v1"
    with atomic_directory(target) as staging:
        (staging / "b.csv").write_text("v3")
    assert sorted(p.name for p in target.iterdir()) == ["b.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-11-23"]


def test_snapshot_hash_tracks_content(tmp_path):
    write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "t.parquet")
    first = folder_snapshot_hash(tmp_path)
    assert first == folder_snapshot_hash(tmp_path)
    write_parquet(pd.DataFrame({"a": [2]}), tmp_path / "t.parquet")
    assert folder_snapshot_hash(tmp_path) != first
