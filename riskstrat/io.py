"""Atomic writes and content hashes, so a failed run never leaves half-written outputs."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def _process_umask() -> int:
    # os.umask can only be read by setting it; done once, at import.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _process_umask()
"""The process's umask: outputs get the permissions a plain ``open`` would give them."""


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    On an exception the temporary file is removed and ``target`` is untouched.

    Args:
        target: The file to write.

    Yields:
        A path in the same folder to write to.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); readers of a report or worklist expect the
        # usual permissions, and access is the output folder's to control.
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; swap it in for ``target`` on success.

    An existing ``target`` is kept until the new folder is complete, and is
    restored if the swap fails, so readers see either the old folder or the new one.

    Args:
        target: The folder to (re)write.

    Yields:
        An empty folder to write into.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield staging
        os.chmod(staging, 0o777 & ~_UMASK)  # mkdtemp makes it private (0700), as above
        backup = target.with_name(f".{target.name}.old")
        if backup.exists():
            shutil.rmtree(backup)
        if target.exists():
            os.replace(target, backup)
        try:
            os.replace(staging, target)
        except OSError:
            if backup.exists():
                os.replace(backup, target)
            raise
        if backup.exists():
            shutil.rmtree(backup)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def write_parquet(frame: pd.DataFrame, target: Path) -> None:
    """Write ``frame`` to ``target`` as Parquet, atomically."""
    with atomic_path(Path(target)) as tmp:
        frame.to_parquet(tmp, index=False)


def write_arrow_parquet(table: pa.Table, target: Path) -> None:
    """Write the Arrow ``table`` to ``target`` as Parquet, atomically, without a pandas round trip.

    Only text columns are dictionary-encoded (codes and bands repeat); zstd then keeps
    the many 0/1 count columns small. At 1,000,000 people the feature matrix takes
    0.79 s and 20 MB this way, against 0.87 s and 18 MB for pandas' defaults and 0.62 s
    but 53 MB for snappy without dictionaries (weekly matrices are kept, so size counts).
    ``pd.read_parquet`` reads it back as it reads a frame :func:`write_parquet` wrote
    from ``table.to_pandas(date_as_object=True)``.
    """
    text = [
        field.name
        for field in table.schema
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
    ]
    with atomic_path(Path(target)) as tmp:
        pq.write_table(table, tmp, use_dictionary=text or False, compression="zstd")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_snapshot_hash(folder: Path, pattern: str = "*") -> str:
    """A short hash of every file's name and bytes in ``folder`` (not recursive).

    Identifies an extract snapshot: the same files give the same hash.

    Args:
        folder: The folder to hash.
        pattern: Glob of the files to include.

    Returns:
        The first 16 hex digits of a SHA-256 over names and file hashes.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).glob(pattern) if p.is_file() and not p.name.startswith(".")):
        digest.update(path.name.encode())
        digest.update(file_sha256(path).encode())
    return digest.hexdigest()[:16]
