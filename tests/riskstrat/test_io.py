from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from riskstrat.io import (
    atomic_directory,
    atomic_path,
    folder_snapshot_hash,
    write_arrow_parquet,
    write_parquet,
)


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


def test_arrow_written_parquet_reads_back_as_the_pandas_written_one(tmp_path):
    table = pa.table(
        {
            "person_id": pa.array(["p2", "p1", None]),
            "as_of": pa.array([date(2025, 12, 31)] * 3, pa.date32()),
            "score": pa.array([0.5, None, 2.0]),
            "count": pa.array([1, 0, 3], pa.int64()),
            "band": pa.array(["a", "a", "b"], pa.large_string()),
        }
    )
    write_arrow_parquet(table, tmp_path / "arrow.parquet")
    write_parquet(table.to_pandas(date_as_object=True), tmp_path / "pandas.parquet")
    from_arrow = pd.read_parquet(tmp_path / "arrow.parquet")
    pd.testing.assert_frame_equal(from_arrow, pd.read_parquet(tmp_path / "pandas.parquet"))
    assert from_arrow["as_of"].iloc[0] == date(2025, 12, 31) and from_arrow["person_id"].dtype == "str"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrow.parquet", "pandas.parquet"]
    # Text columns repeat and are dictionary-encoded; numbers are not.
    columns = pq.ParquetFile(tmp_path / "arrow.parquet").metadata.row_group(0)
    encodings = {
        columns.column(i).path_in_schema: columns.column(i).encodings for i in range(columns.num_columns)
    }
    assert "RLE_DICTIONARY" in encodings["band"] and "RLE_DICTIONARY" not in encodings["score"]


def test_atomic_outputs_get_the_permissions_a_plain_write_would(tmp_path):
    """Reports and worklist folders are not left private (mkstemp/mkdtemp make them 0600/0700)."""
    import stat

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    plain_dir = tmp_path / "plain_dir"
    plain_dir.mkdir()
    with atomic_path(tmp_path / "report.html") as tmp:
        tmp.write_text("<html></html>")
    with atomic_directory(tmp_path / "week") as staging:
        (staging / "list.csv").write_text("rank\n")

    def mode(path):
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(tmp_path / "report.html") == mode(plain)
    assert mode(tmp_path / "week") == mode(plain_dir)
