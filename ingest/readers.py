"""Read an extract folder (one Parquet or CSV file per table) into typed tables.

Reading happens in two steps so that the validation gate can report every
problem at once: :func:`load_raw` reads a file as it is, and :func:`coerce`
converts it to the contract's types, returning the problems it found instead
of stopping at the first. :func:`read_table` and :func:`read_extract` do both
and raise a :class:`~riskstrat.errors.ContractError` on any problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from riskstrat.errors import ContractError, ContractProblem
from riskstrat.ingest.contract import CONTRACT, Column, Table

SUFFIXES: tuple[str, ...] = (".parquet", ".csv")
MAX_EXAMPLES = 5
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
ISO_DATETIME = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$"


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


def load_raw(folder: Path, name: str) -> RawTable:
    """Read one table's file as it is.

    Args:
        folder: The extract folder.
        name: A contract table name.

    Returns:
        The raw table.

    Raises:
        ContractError: If the file is missing or cannot be read at all.
    """
    table = CONTRACT[name]
    path = find_table_file(folder, name)
    if path is None:
        raise ContractError(
            [ContractProblem(name, "", f"a file {name}.parquet or {name}.csv in {folder}")],
            hint="Every contract table must be supplied, even if empty (headers only).",
        )
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except Exception as exc:
        raise ContractError(
            [ContractProblem(name, "", f"a readable {path.suffix[1:]} file ({type(exc).__name__}: {exc})")],
            hint=f"Re-export {path.name}; it may be truncated or corrupt.",
        ) from None
    return RawTable(table=table, path=path, frame=frame)


def _as_text(values: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(values):
        # Codes stored as floats in Parquet (1.0) read as "1", not "1.0".
        whole = values.dropna()
        if (whole == np.floor(whole)).all():
            values = values.astype("Int64")
    text = values.astype("string").str.strip()
    return text.mask(text == "", pd.NA)


def _coerce_column(raw: RawTable, column: Column) -> tuple[pd.Series, list[ContractProblem]]:
    values = raw.frame[column.name]
    name = raw.table.name
    problems: list[ContractProblem] = []
    if column.type in ("date", "datetime"):
        if pd.api.types.is_datetime64_any_dtype(values):
            parsed = pd.to_datetime(values)
            bad = pd.Series(False, index=values.index)
        else:
            text = _as_text(values)
            pattern = ISO_DATE if column.type == "date" else ISO_DATETIME
            well_formed = text.str.match(pattern).fillna(True).astype(bool)
            parsed = pd.to_datetime(text.where(well_formed), errors="coerce", format="ISO8601")
            bad = text.notna() & (~well_formed | parsed.isna())
        if bad.any():
            shapes = tuple(dict.fromkeys(value_shape(v) for v in values[bad].head(50)))[:MAX_EXAMPLES]
            problems.append(
                ContractProblem(
                    name,
                    column.name,
                    f"ISO {'dates (YYYY-MM-DD)' if column.type == 'date' else 'date-times (YYYY-MM-DD HH:MM:SS)'}"
                    f"; found values shaped {', '.join(shapes)}",
                    int(bad.sum()),
                    _example_ids(raw.frame, raw.table, bad),
                )
            )
        parsed = parsed.astype("datetime64[us]")
        converted = parsed.dt.normalize() if column.type == "date" else parsed
    elif column.type in ("integer", "float"):
        text = _as_text(values)
        numbers = pd.to_numeric(text, errors="coerce")
        bad = text.notna() & numbers.isna()
        if column.type == "integer":
            bad |= numbers.notna() & (numbers != np.floor(numbers))
        if bad.any():
            shapes = tuple(dict.fromkeys(value_shape(v) for v in text[bad].head(50)))[:MAX_EXAMPLES]
            problems.append(
                ContractProblem(
                    name,
                    column.name,
                    f"{'whole numbers' if column.type == 'integer' else 'numbers'}; found {', '.join(shapes)}",
                    int(bad.sum()),
                    _example_ids(raw.frame, raw.table, bad),
                )
            )
        numbers = numbers.mask(bad)
        converted = numbers.astype("Int64") if column.type == "integer" else numbers.astype("float64")
    else:
        converted = _as_text(values)
    return converted, problems


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
    problems: list[ContractProblem] = []
    missing = [c for c in table.required_columns if c not in raw.frame.columns]
    for column_name in missing:
        problems.append(
            ContractProblem(
                table.name, column_name, f"required column '{column_name}' in {raw.path.name}", 0, ()
            )
        )
    typed: dict[str, pd.Series] = {}
    for column in table.columns:
        if column.name not in raw.frame.columns:
            typed[column.name] = _empty_column(column, len(raw.frame))
            continue
        typed[column.name], column_problems = _coerce_column(raw, column)
        problems.extend(column_problems)
    extras = [c for c in raw.frame.columns if c not in typed]
    frame = pd.DataFrame(typed, index=raw.frame.index)
    for extra in extras:
        frame[extra] = raw.frame[extra]
    return frame.reset_index(drop=True), problems


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
