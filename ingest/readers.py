"""Read an extract folder (one Parquet or CSV file per table) into typed tables.

Reading happens in two steps so that the validation gate can report every
problem at once: :func:`load_raw` reads a file as it is, and :func:`coerce`
converts it to the contract's types, returning the problems it found instead
of stopping at the first. :func:`read_table` and :func:`read_extract` do both
and raise a :class:`~riskstrat.errors.ContractError` on any problem.

:func:`iter_raw` reads a file a chunk of rows at a time (Parquet record
batches, CSV chunks), so that the gate never holds a large table whole;
:func:`coerce_chunk` types one chunk and returns its unparseable values as
:class:`ParseFailure` records that :meth:`ParseFailure.merged` sums over chunks
into the same problem :func:`coerce` reports for the whole table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from riskstrat.errors import ContractError, ContractProblem
from riskstrat.ingest.contract import CONTRACT, Column, Table

SUFFIXES: tuple[str, ...] = (".parquet", ".csv")
MAX_EXAMPLES = 5
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
ISO_DATETIME = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$"
SHAPE_SAMPLE = 50
"""Failing values of a column whose shapes are looked at (the first five distinct shapes are shown)."""


@dataclass(frozen=True)
class RawTable:
    """A table as found in the extract folder, before type conversion.

    Attributes:
        table: The contract table.
        path: The file it was read from.
        frame: The values as read (text for CSV, native types for Parquet).
    """

    table: Table
    path: Path
    frame: pd.DataFrame


def find_table_file(folder: Path, name: str) -> Path | None:
    """Return the Parquet or CSV file for table ``name`` in ``folder``, or None."""
    for suffix in SUFFIXES:
        candidate = Path(folder) / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def value_shape(value: object) -> str:
    """Show the shape of a value without revealing it: digits become 9, letters a or A.

    Used in error examples for dates and free text, so a log never holds a
    person's date of birth while an analyst can still see "99/99/9999" is not ISO.
    """
    text = str(value)
    text = re.sub(r"[0-9]", "9", text)
    text = re.sub(r"[a-z]", "a", text)
    return re.sub(r"[A-Z]", "A", text)


def _example_ids(frame: pd.DataFrame, table: Table, mask: pd.Series) -> tuple[str, ...]:
    id_column = table.key or ("person_id" if "person_id" in frame.columns else None)
    if id_column is None or id_column not in frame.columns:
        return ()
    values = frame.loc[mask, id_column].dropna().astype(str).unique()[:MAX_EXAMPLES]
    return tuple(f"{id_column}={v}" for v in values)


def _table_path(folder: Path, name: str) -> Path:
    path = find_table_file(folder, name)
    if path is None:
        raise ContractError(
            [ContractProblem(name, "", f"a file {name}.parquet or {name}.csv in {folder}")],
            hint="Every contract table must be supplied, even if empty (headers only).",
        )
    return path


def _unreadable(name: str, path: Path, exc: Exception) -> ContractError:
    return ContractError(
        [ContractProblem(name, "", f"a readable {path.suffix[1:]} file ({type(exc).__name__}: {exc})")],
        hint=f"Re-export {path.name}; it may be truncated or corrupt.",
    )


def _read_csv(path: Path, **options: object) -> pd.DataFrame | Iterator[pd.DataFrame]:
    # Everything as text, only empty fields missing: coerce decides what parses.
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], **options)


def load_raw(folder: Path, name: str) -> RawTable:
    """Read one table's file as it is.

    Parquet dates are read as datetime64 (not Python date objects), which
    :func:`coerce` types without parsing text.

    Args:
        folder: The extract folder.
        name: A contract table name.

    Returns:
        The raw table.

    Raises:
        ContractError: If the file is missing or cannot be read at all.
    """
    table = CONTRACT[name]
    path = _table_path(folder, name)
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path, to_pandas_kwargs={"date_as_object": False})
        else:
            frame = _read_csv(path)
    except Exception as exc:
        raise _unreadable(name, path, exc) from None
    return RawTable(table=table, path=path, frame=frame)


def iter_raw(
    folder: Path, name: str, chunk_rows: int, columns: list[str] | None = None
) -> Iterator[RawTable]:
    """Read one table's file as it is, ``chunk_rows`` rows at a time.

    Only one chunk is held at a time. An empty table yields one empty chunk
    (with its columns), so the caller always sees the file's columns.

    Args:
        folder: The extract folder.
        name: A contract table name.
        chunk_rows: Rows per chunk (the last may be shorter).
        columns: Read only these columns (default: all).

    Yields:
        The raw table, chunk by chunk, in file order (each chunk's index starts at 0).

    Raises:
        ContractError: If the file is missing or cannot be read, at whichever
            chunk that shows (the caller must drop what it made of earlier chunks).
    """
    table = CONTRACT[name]
    path = _table_path(folder, name)
    try:
        if path.suffix == ".parquet":
            parquet = pq.ParquetFile(path)
            schema = parquet.schema_arrow
            batches = parquet.iter_batches(batch_size=chunk_rows, columns=columns)
            if columns is not None:
                schema = pa.schema([schema.field(c) for c in columns], metadata=schema.metadata)
            chunks = (
                pa.Table.from_batches([batch], schema=schema).to_pandas(date_as_object=False)
                for batch in batches
            )
        else:
            chunks = _read_csv(path, chunksize=chunk_rows, usecols=columns)
        seen = False
        for chunk in chunks:
            if seen and chunk.empty:
                continue
            seen = True
            yield RawTable(table=table, path=path, frame=chunk.reset_index(drop=True))
        if not seen:
            empty = (
                schema.empty_table().to_pandas(date_as_object=False) if path.suffix == ".parquet" else None
            )
            if empty is None:
                empty = _read_csv(path, nrows=0, usecols=columns)
            yield RawTable(table=table, path=path, frame=empty)
    except Exception as exc:  # GeneratorExit (close()) is a BaseException and passes through
        raise _unreadable(name, path, exc) from None


def as_text(values: pd.Series) -> pd.Series:
    """Values as typed text: trimmed, empty as missing, whole floats without ".0"."""
    if pd.api.types.is_float_dtype(values):
        # Codes stored as floats in Parquet (1.0) read as "1", not "1.0".
        whole = values.dropna()
        if (whole == np.floor(whole)).all():
            values = values.astype("Int64")
    text = values.astype("string").str.strip()
    return text.mask(text == "", pd.NA)


@dataclass(frozen=True)
class ParseFailure:
    """Values of one column that do not parse, in a table or in one chunk of it.

    Attributes:
        table: The table name.
        column: The column name.
        wanted: What the contract expects, e.g. "ISO dates (YYYY-MM-DD)".
        found: How the shapes are introduced, e.g. "values shaped ".
        n_rows: Rows whose value does not parse.
        shapes: Shapes (:func:`value_shape`) of the first ``SHAPE_SAMPLE`` failing
            values, in row order, repeats kept so that merging chunks gives the
            same sample as the whole table.
        examples: Up to five distinct pseudonymised IDs of failing rows, in row order.
    """

    table: str
    column: str
    wanted: str
    found: str
    n_rows: int
    shapes: tuple[str, ...]
    examples: tuple[str, ...]

    def merged(self, later: ParseFailure) -> ParseFailure:
        """This failure and the same column's failure in a later chunk, as one."""
        examples = tuple(dict.fromkeys(self.examples + later.examples))[:MAX_EXAMPLES]
        return ParseFailure(
            self.table,
            self.column,
            self.wanted,
            self.found,
            self.n_rows + later.n_rows,
            (self.shapes + later.shapes)[:SHAPE_SAMPLE],
            examples,
        )

    def problem(self) -> ContractProblem:
        """The failure as a ContractProblem (shapes shown, never values)."""
        shapes = tuple(dict.fromkeys(self.shapes))[:MAX_EXAMPLES]
        return ContractProblem(
            self.table,
            self.column,
            f"{self.wanted}; found {self.found}{', '.join(shapes)}",
            self.n_rows,
            self.examples,
        )


def _parse_failure(
    raw: RawTable, column: Column, wanted: str, found: str, bad: pd.Series, shown: pd.Series
) -> ParseFailure:
    return ParseFailure(
        raw.table.name,
        column.name,
        wanted,
        found,
        int(bad.sum()),
        tuple(value_shape(v) for v in shown[bad].head(SHAPE_SAMPLE)),
        _example_ids(raw.frame, raw.table, bad),
    )


def _coerce_column(raw: RawTable, column: Column) -> tuple[pd.Series, ParseFailure | None]:
    values = raw.frame[column.name]
    failure = None
    if column.type in ("date", "datetime"):
        if pd.api.types.is_datetime64_any_dtype(values):
            parsed = pd.to_datetime(values)
            bad = None
        else:
            text = as_text(values)
            pattern = ISO_DATE if column.type == "date" else ISO_DATETIME
            well_formed = text.str.match(pattern).fillna(True).astype(bool)
            parsed = pd.to_datetime(text.where(well_formed), errors="coerce", format="ISO8601")
            bad = text.notna() & (~well_formed | parsed.isna())
        if bad is not None and bad.any():
            wanted = (
                "ISO dates (YYYY-MM-DD)" if column.type == "date" else "ISO date-times (YYYY-MM-DD HH:MM:SS)"
            )
            failure = _parse_failure(raw, column, wanted, "values shaped ", bad, values)
        parsed = parsed.astype("datetime64[us]")
        converted = parsed.dt.normalize() if column.type == "date" else parsed
    elif column.type in ("integer", "float"):
        text = as_text(values)
        numbers = pd.to_numeric(text, errors="coerce")
        bad = text.notna() & numbers.isna()
        if column.type == "integer":
            bad |= numbers.notna() & (numbers != np.floor(numbers))
        if bad.any():
            wanted = "whole numbers" if column.type == "integer" else "numbers"
            failure = _parse_failure(raw, column, wanted, "", bad, text)
        numbers = numbers.mask(bad)
        converted = numbers.astype("Int64") if column.type == "integer" else numbers.astype("float64")
    else:
        converted = as_text(values)
    return converted, failure


def coerce_chunk(raw: RawTable) -> tuple[pd.DataFrame, list[ParseFailure]]:
    """Convert a raw table (or one chunk of it) to the contract's column types.

    Missing contract columns are added empty (the validation gate reports a
    missing required column itself); values that do not parse become missing.

    Args:
        raw: The table or chunk as read.

    Returns:
        The typed frame (index from 0) and the columns whose values do not parse,
        in contract order.
    """
    table = raw.table
    failures: list[ParseFailure] = []
    typed: dict[str, pd.Series] = {}
    for column in table.columns:
        if column.name not in raw.frame.columns:
            typed[column.name] = _empty_column(column, len(raw.frame))
            continue
        typed[column.name], failure = _coerce_column(raw, column)
        if failure is not None:
            failures.append(failure)
    extras = [c for c in raw.frame.columns if c not in typed]
    frame = pd.DataFrame(typed, index=raw.frame.index)
    for extra in extras:
        frame[extra] = raw.frame[extra]
    return frame.reset_index(drop=True), failures


def coerce(raw: RawTable) -> tuple[pd.DataFrame, list[ContractProblem]]:
    """Convert a raw table to the contract's column types.

    Contract columns come first in contract order; extra columns are kept after
    them. Values that do not parse become missing and are reported.

    Args:
        raw: The table as read.

    Returns:
        The typed frame and the problems found (missing required columns,
        unparseable values). Code sets, keys and dates are checked by the
        validation gate, not here.
    """
    table = raw.table
    problems = [
        ContractProblem(table.name, column_name, f"required column '{column_name}' in {raw.path.name}", 0, ())
        for column_name in table.required_columns
        if column_name not in raw.frame.columns
    ]
    frame, failures = coerce_chunk(raw)
    return frame, problems + [f.problem() for f in failures]


def _empty_column(column: Column, length: int) -> pd.Series:
    if column.type in ("date", "datetime"):
        return pd.Series(pd.NaT, index=range(length), dtype="datetime64[us]")
    if column.type == "integer":
        return pd.Series(pd.NA, index=range(length), dtype="Int64")
    if column.type == "float":
        return pd.Series(np.nan, index=range(length), dtype="float64")
    return pd.Series(pd.NA, index=range(length), dtype="string")


def read_table(folder: Path, name: str) -> pd.DataFrame:
    """Read one contract table, typed.

    Args:
        folder: The extract folder.
        name: A contract table name.

    Returns:
        The typed table.

    Raises:
        ContractError: If the file is missing or unreadable, a required column is
            missing, or values do not parse.
    """
    frame, problems = coerce(load_raw(folder, name))
    if problems:
        raise ContractError(problems)
    return frame


def read_extract(folder: Path, names: tuple[str, ...] | None = None) -> dict[str, pd.DataFrame]:
    """Read every contract table in ``folder``, reporting all problems at once.

    Args:
        folder: The extract folder.
        names: Tables to read (default: all of the contract).

    Returns:
        Typed tables by name.

    Raises:
        ContractError: Listing every problem in every table.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ContractError(
            [ContractProblem("extract", "", f"an extract folder at {folder}")],
            hint="Point data.extract_dir (configs/data.yaml) or the command's argument at the folder of tables.",
        )
    tables: dict[str, pd.DataFrame] = {}
    problems: list[ContractProblem] = []
    for name in names or tuple(CONTRACT):
        try:
            frame, table_problems = coerce(load_raw(folder, name))
        except ContractError as exc:
            problems.extend(exc.problems)
            continue
        tables[name] = frame
        problems.extend(table_problems)
    if problems:
        raise ContractError(problems)
    return tables
