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


# ----------------------------------------------------------------------------- issue 16: swap, leftovers, lock


def week_with(target, text):
    with atomic_directory(target) as staging:
        (staging / "list.csv").write_text(text)


def test_an_existing_folder_is_exchanged_in_one_step(tmp_path, monkeypatch):
    """Republishing exchanges the two folders (renameat2 RENAME_EXCHANGE): never a moment without the week."""
    from riskstrat import io

    target = tmp_path / "2026-11-23"
    week_with(target, "v1")
    calls = []
    real = io.exchange_paths
    monkeypatch.setattr(io, "exchange_paths", lambda a, b: (calls.append((a, b)), real(a, b)))
    week_with(target, "v2")
    assert len(calls) == 1 and calls[0][1] == target
    assert (target / "list.csv").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-11-23"]  # old contents removed


def test_a_reader_never_finds_the_folder_missing_while_it_is_republished(tmp_path):
    import threading

    target = tmp_path / "2026-11-23"
    week_with(target, "v0")
    missing, done = [], threading.Event()

    def watch():
        while not done.is_set():
            if not target.is_dir():
                missing.append(1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for i in range(200):
            week_with(target, f"v{i + 1}")
    finally:
        done.set()
        watcher.join()
    assert not missing
    assert (target / "list.csv").read_text() == "v200"


def test_without_exchange_the_backup_swap_is_used(tmp_path, monkeypatch):
    """A filesystem that cannot exchange (EINVAL) falls back to rename-with-backup, and still publishes."""
    import errno

    from riskstrat import io

    def unsupported(a, b):
        raise OSError(errno.EINVAL, "Invalid argument")

    target = tmp_path / "2026-11-23"
    week_with(target, "v1")
    monkeypatch.setattr(io, "exchange_paths", unsupported)
    week_with(target, "v2")
    assert (target / "list.csv").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-11-23"]


def test_other_exchange_errors_are_not_hidden(tmp_path, monkeypatch):
    import errno

    from riskstrat import io

    def no_space(a, b):
        raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / "2026-11-23"
    week_with(target, "v1")
    monkeypatch.setattr(io, "exchange_paths", no_space)
    with pytest.raises(OSError, match="No space"):
        week_with(target, "v2")
    assert (target / "list.csv").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-11-23"]


class Killed(BaseException):
    """Stands for kill -9: nothing after it runs (no except OSError, no restore)."""


def test_a_kill_between_the_two_renames_is_repaired_at_the_next_start(tmp_path, monkeypatch):
    """Fallback swap cut between its renames: only `.<week>.old` is left; the next run's lock restores it."""
    import errno
    import os

    from riskstrat import io

    output = tmp_path / "outputs"
    target = output / "worklists" / "2026-11-23"
    week_with(target, "last complete")
    monkeypatch.setattr(io, "exchange_paths", lambda a, b: (_ for _ in ()).throw(OSError(errno.ENOSYS, "x")))
    real_replace, calls = os.replace, []

    def replace_then_die(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # target -> backup done; staging -> target never happens
            raise Killed
        return real_replace(src, dst)

    monkeypatch.setattr(io.os, "replace", replace_then_die)
    with pytest.raises(Killed), atomic_directory(target) as staging:
        (staging / "list.csv").write_text("new")
    monkeypatch.setattr(io.os, "replace", real_replace)
    assert not target.exists() and (target.parent / ".2026-11-23.old").is_dir()
    with io.output_lock(output, "test", 0):
        assert (target / "list.csv").read_text() == "last complete"
    assert sorted(p.name for p in target.parent.iterdir()) == ["2026-11-23"]


def test_a_leftover_backup_beside_its_folder_is_removed(tmp_path):
    from riskstrat.io import restore_interrupted_swaps

    (tmp_path / "week").mkdir()
    (tmp_path / "week" / "a.csv").write_text("new")
    (tmp_path / ".week.old").mkdir()
    assert restore_interrupted_swaps(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["week"]
    assert (tmp_path / "week" / "a.csv").read_text() == "new"


def test_clean_staging_removes_only_riskstrats_temporary_names_anywhere(tmp_path, caplog):
    from riskstrat.io import clean_staging

    keep = [
        tmp_path / "worklists" / "2026-11-23" / "north.csv",
        tmp_path / "features" / "abc" / "features_2026-01-01_x.parquet",
        tmp_path / ".riskstrat.lock",
        tmp_path / "notes.tmp",
        tmp_path / ".hidden",
    ]
    for path in keep:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("keep")
    week_staging = tmp_path / "worklists" / ".2026-11-30.k2j4_x9a.tmp"
    week_staging.mkdir()
    (week_staging / "north.csv").write_text("Rank,Person ID\n1,P0001")  # a partial patient-level CSV
    feature_tmp = tmp_path / "features" / "abc" / ".features_2026-01-01_x.parquet.a1b2c3d4.tmp"
    feature_tmp.write_bytes(b"PAR1")
    spark_tmp = tmp_path / "features" / "abc" / ".features_x.spark.parquet.zzzzzzzz.tmp"
    spark_tmp.mkdir()
    with caplog.at_level("WARNING"):
        assert clean_staging(tmp_path) == 3
    assert not week_staging.exists() and not feature_tmp.exists() and not spark_tmp.exists()
    assert all(path.read_text() == "keep" for path in keep)
    assert "P0001" not in caplog.text and "north" not in caplog.text and "3" in caplog.text
    assert clean_staging(tmp_path) == 0


def test_kill_leftovers_of_atomic_writes_match_what_clean_staging_removes(tmp_path, monkeypatch):
    """The names a killed atomic_path / atomic_directory leave are exactly the ones cleaned."""
    from riskstrat.io import clean_staging

    with pytest.raises(Killed), atomic_path(tmp_path / "report.html") as tmp:
        tmp.write_text("half")
        monkeypatch.setattr(type(tmp), "exists", lambda self: False)  # a kill skips the cleanup
        raise Killed
    with pytest.raises(Killed), atomic_directory(tmp_path / "2026-11-23") as staging:
        (staging / "north.csv").write_text("half")
        raise Killed
    monkeypatch.undo()
    assert len(list(tmp_path.iterdir())) == 2
    assert clean_staging(tmp_path) == 2
    assert list(tmp_path.iterdir()) == []


HOLD_LOCK = """
import sys, time
from riskstrat.io import output_lock
with output_lock(sys.argv[1], "worklists --week 2026-11-23", 0):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_lock_in_another_process(output, seconds):
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(output), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_run_refuses_naming_the_folder_and_the_holder(tmp_path):
    from riskstrat.errors import RiskstratError
    from riskstrat.io import output_lock

    holder = hold_lock_in_another_process(tmp_path, 30)
    try:
        with pytest.raises(RiskstratError) as error, output_lock(tmp_path, "demo", 0):
            pass
        message = error.value.message
        assert str(tmp_path) in message and f"PID {holder.pid}" in message
        assert "worklists --week 2026-11-23" in message and "since 20" in message
        assert "lock_timeout_seconds" in error.value.hint
    finally:
        holder.kill()
        holder.wait()


def test_a_second_run_waits_saying_who_holds_the_lock_then_runs(tmp_path):
    import time

    from riskstrat.io import output_lock

    holder = hold_lock_in_another_process(tmp_path, 1.5)
    said = []
    start = time.monotonic()
    with output_lock(tmp_path, "worklists", 30, notify=said.append, poll_seconds=0.05):
        waited = time.monotonic() - start
    holder.wait()
    assert waited > 0.5
    assert "waiting for the lock" in said[0] and f"PID {holder.pid}" in said[0]
    assert "took the lock" in said[-1]


def test_the_lock_is_freed_when_its_holder_is_killed(tmp_path):
    import signal

    from riskstrat.io import lock_holder, output_lock

    holder = hold_lock_in_another_process(tmp_path, 60)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with output_lock(tmp_path, "worklists", 0):
        import os

        assert lock_holder(tmp_path)["pid"] == str(os.getpid())
    assert lock_holder(tmp_path) == {}  # released: no holder shown


def test_the_lock_is_reentrant_within_a_process_and_cleans_once(tmp_path):
    from riskstrat.io import output_lock

    with output_lock(tmp_path, "demo", 0):
        leftover = tmp_path / "worklists" / ".2026-11-23.abcdefgh.tmp"
        leftover.mkdir(parents=True)  # stands for a flow's own staging, made under the outer lock
        with output_lock(tmp_path, "worklists", 0):  # the demo's weekly run
            assert leftover.exists()  # re-entering never cleans another step's staging
    with output_lock(tmp_path, "worklists", 0):
        assert not leftover.exists()  # a later run does
