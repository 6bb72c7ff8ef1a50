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

Time zones: riskstrat works in naive Europe/London wall-clock time. A
time-zone-aware value (a Parquet timestamp stored as UTC, as Spark and
Databricks write them, or a CSV date-time ending in ``Z`` or ``+01:00``) is
converted to Europe/London and its zone dropped, so its date is the London
calendar date; a naive value is taken to be London time already.
:func:`to_london_naive` is the one place that does it (the feature reader in
:mod:`riskstrat.features.backends` applies the same rule in SQL).

Text is taken exactly as stored: IDs and codes are compared exactly across
tables and by the feature engine, so surrounding spaces are kept for the gate
to report, never trimmed silently; and text columns stored as numbers in
Parquet (``0205`` stored as ``205``) are reported, not converted. Dates and
numbers read from text are never trimmed either: a value with leading or
trailing whitespace (ASCII or Unicode: tab, no-break space, U+2000 to U+200B,
U+3000, ...) is reported as ``text_trimmed`` (the feature engine would fail on
it), and a number must be written in plain ASCII digits (``12``, ``-1.5``,
``2e3``), so ``inf``, ``NaN``, ``1_000`` and full-width digits do not parse.
A number stored as a float in Parquet must be finite: ``inf`` and ``-inf`` do
not parse; ``NaN`` is a missing value.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from riskstrat.errors import ContractError, ContractProblem
from riskstrat.ingest.contract import CONTRACT, Column, Table

SUFFIXES: tuple[str, ...] = (".parquet", ".csv")
MAX_EXAMPLES = 5
ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
UTC_OFFSET = r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)"
"""A UTC offset at the end of an ISO date-time: ``Z``, ``+01:00``, ``+0100`` or ``+01``."""
ISO_DATETIME = (
    rf"^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}([ T][0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}}(\.[0-9]+)?)?{UTC_OFFSET}?)?$"
)
LOCAL_TIME_ZONE = "Europe/London"
"""Time-zone-aware values are converted to this zone's wall-clock time and made naive."""
SHAPE_SAMPLE = 50
"""Failing values of a column whose shapes are looked at (the first five distinct shapes are shown)."""
NUMBER = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
"""A number as text: plain ASCII digits, an optional sign, decimal point and exponent."""
EDGE_SPACE_CHARACTERS = (
    "\t\n\v\f\r \x1c\x1d\x1e\x1f\x85\xa0\u1680\u180e\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u200b\u200c\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff"
)
"""Whitespace a value may not begin or end with: ASCII and Unicode spaces, and the zero-width
characters (U+200B to U+200D, U+2060, U+FEFF) that editors and exports leave at the edges."""
_EDGE_CLASS = "[" + EDGE_SPACE_CHARACTERS + "]"
EDGE_SPACE = rf"^{_EDGE_CLASS}|{_EDGE_CLASS}$"
"""A value with whitespace at either end (the pattern works with Python's re and with RE2)."""
NOT_PRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp", "Zs"})
"""Unicode categories no ID or code may hold: controls (NUL, ESC), format characters
(zero-width spaces, U+202E right-to-left override, U+2060, U+FEFF), surrogates, private use,
line and paragraph separators, and spaces other than the plain space (U+0020)."""
NOT_ASCII_PRINTABLE = "[^ -~]"
"""Any character but printable ASCII (U+0020 to U+007E): what an identifier may not hold."""


@functools.cache
def not_printable_pattern() -> str:
    """A regex character class of every character in :data:`NOT_PRINTABLE_CATEGORIES` but the plain space.

    The class holds the characters themselves (no escapes), so it works with
    Python's re and with RE2 (pandas' Arrow strings). Surrogates are left out:
    they cannot occur in UTF-8 text.
    """
    planes = (range(0x20000), range(0xE0000, 0xE1000))  # where Cc, Cf, Zs, Zl, Zp live
    ranges: list[list[int]] = []
    for plane in planes:
        for code in plane:
            if 0xD800 <= code <= 0xDFFF or code == 0x20:
                continue
            if unicodedata.category(chr(code)) in NOT_PRINTABLE_CATEGORIES:
                if ranges and ranges[-1][1] == code - 1:
                    ranges[-1][1] = code
                else:
                    ranges.append([code, code])
    ranges += [[0xF0000, 0xFFFFD], [0x100000, 0x10FFFD]]  # private use planes 15 and 16
    return "[" + "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges) + "]"


def escape_text(value: object) -> str:
    r"""A value with every character that is not printable shown as an escape (``P123\u200b``).

    Controls, format characters (zero-width spaces, bidirectional overrides),
    separators and spaces other than the plain space are escaped, so an example
    in a message shows what is there and never acts on the terminal.
    """
    text = str(value)
    if text.isascii() and text.isprintable():
        return text
    out = []
    for character in text:
        if character == " " or (
            character.isprintable() and unicodedata.category(character) not in NOT_PRINTABLE_CATEGORIES
        ):
            out.append(character)
        else:
            code = ord(character)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
    return "".join(out)


def edge_space(text: pd.Series) -> pd.Series:
    """Whether each text value begins or ends with whitespace (:data:`EDGE_SPACE_CHARACTERS`); missing: False."""
    return text.astype("string").str.contains(EDGE_SPACE, regex=True).fillna(False).astype(bool)


def strip_edge_space(text: pd.Series) -> pd.Series:
    """Text without the whitespace :func:`edge_space` finds at either end."""
    return text.str.replace(rf"^{_EDGE_CLASS}+|{_EDGE_CLASS}+$", "", regex=True)


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


def table_files(folder: Path, name: str) -> list[Path]:
    """Every file that could hold table ``name`` in ``folder`` (``<name>.parquet``, ``<name>.csv``)."""
    return [
        Path(folder) / f"{name}{suffix}"
        for suffix in SUFFIXES
        if (Path(folder) / f"{name}{suffix}").is_file()
    ]


def unsupported_files(folder: Path, name: str) -> list[str]:
    """Entries of ``folder`` named for table ``name`` that are not a file the readers read.

    Any name whose part before the first dot is the table's name in any case
    (``patients.xlsx``, ``patients.csv.gz``, ``Patients.CSV``, a Spark output
    folder ``patients.parquet/``), except ``<name>.parquet`` and ``<name>.csv``
    themselves; a folder name ends with ``/``.
    """
    try:
        entries = sorted(Path(folder).iterdir())
    except OSError:
        return []
    wanted = {f"{name}{suffix}" for suffix in SUFFIXES}
    return [
        e.name + ("/" if e.is_dir() else "")
        for e in entries
        if e.name.split(".")[0].lower() == name.lower() and not (e.name in wanted and e.is_file())
    ]


def find_table_file(folder: Path, name: str) -> Path | None:
    """Return the Parquet or CSV file for table ``name`` in ``folder``, or None.

    Raises:
        ContractError: If more than one file is named for the table: both
            ``<name>.parquet`` and ``<name>.csv``, or either beside another file
            named for the table in a format that is not read (``patients.xlsx``,
            ``patients.csv.gz``): one of them is stale, and which one is meant
            cannot be guessed. Also if the only files named for the table are in
            formats that are not read: a table is never silently missed.
    """
    found = table_files(folder, name)
    others = unsupported_files(folder, name)
    if others and not found:
        raise ContractError(
            [
                ContractProblem(
                    name,
                    "",
                    f"a file {name}.parquet or {name}.csv in {folder}; found only "
                    f"{', '.join(others[:MAX_EXAMPLES])}, which is not read",
                )
            ],
            hint="Supported formats: Parquet (<table>.parquet, one file) and UTF-8 CSV "
            "(<table>.csv, uncompressed), named exactly as the contract says. Convert the file "
            "(a spreadsheet, JSON, a compressed or Spark folder output) to one of them.",
        )
    if others:
        stale = [p.name for p in found] + others[:MAX_EXAMPLES]
        raise ContractError(
            [
                ContractProblem(
                    name,
                    "",
                    f"one file for table {name}; found {' and '.join(stale)} in {folder}",
                )
            ],
            hint="Remove the stale file: each table must be supplied once, as Parquet or as CSV "
            "(files in other formats, such as .xlsx, .json or .csv.gz, are never read).",
        )
    if len(found) > 1:
        raise ContractError(
            [
                ContractProblem(
                    name,
                    "",
                    f"one file for table {name}; found {' and '.join(p.name for p in found)} in {folder}",
                )
            ],
            hint="Remove the stale file: each table must be supplied once, as Parquet or as CSV.",
        )
    return found[0] if found else None


def value_shape(value: object) -> str:
    r"""Show the shape of a value without revealing it: digits become 9, letters a or A.

    Used in error examples for dates and free text, so a log never holds a
    person's date of birth while an analyst can still see "99/99/9999" is not ISO.
    Other scripts' digits (full-width, Arabic-Indic) become a full-width nine, and
    invisible or control characters are shown escaped (``9999-99-99\xa0``).
    """
    text = str(value)
    text = re.sub(r"(?![0-9])\d", "\uff19", text)  # another script's digit, without showing which
    text = re.sub(r"[0-9]", "9", text)
    text = re.sub(r"[a-z]", "a", text)
    return escape_text(re.sub(r"[A-Z]", "A", text))


NHS_NUMBER_SHAPE = r"^\d{3}[ -]?\d{3}[ -]?\d{4}$"
"""Ten digits, possibly grouped 3-3-4 with spaces or hyphens, as NHS numbers are written."""
_NHS_WEIGHTS = np.arange(10, 1, -1)


def nhs_number_like(values: pd.Series) -> pd.Series:
    """Whether each value is shaped like an NHS number and carries a valid modulus-11 check digit.

    The check digit is ``11 - (sum of the first nine digits weighted 10 to 2) mod 11``
    (11 becomes 0; 10 is never issued). About 1 in 11 random ten-digit numbers
    pass it, so one value proves nothing; a column does (see the gate's
    ``id_not_nhs_number`` check). Missing values are False.
    """
    return nhs_number_shape(values)[1]


def nhs_number_shape(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Which values are shaped like NHS numbers, and which of those carry a valid check digit.

    Returns:
        Two boolean Series on ``values``' index: ten digits (possibly grouped 3-3-4),
        and ten digits with a valid modulus-11 check digit.
    """
    text = values.astype("string")
    shaped = pd.Series(False, index=values.index)
    valid = pd.Series(False, index=values.index)
    candidate = text.str.len().between(10, 12).fillna(False).astype(bool)  # cheap first pass
    if not candidate.any():
        return shaped, valid
    shaped[candidate] = text[candidate].str.match(NHS_NUMBER_SHAPE).fillna(False).astype(bool)
    if not shaped.any():
        return shaped, valid
    digits = text[shaped].str.replace(r"[ -]", "", regex=True).to_numpy(dtype="U10")
    matrix = digits.view(np.uint32).reshape(-1, 10).astype(np.int64) - ord("0")
    check = 11 - (matrix[:, :9] @ _NHS_WEIGHTS) % 11
    check = np.where(check == 11, 0, check)
    valid[shaped] = (check != 10) & (check == matrix[:, 9])
    return shaped, valid


def shown_id(value: object) -> str:
    r"""An ID as it may be shown in an example: its shape if it looks like an NHS number, else itself.

    Invisible and control characters are shown escaped (``P123\u200b``).
    """
    text = str(value)
    if nhs_number_like(pd.Series([text])).iloc[0]:
        return value_shape(text)
    return escape_text(text)


def _example_ids(frame: pd.DataFrame, table: Table, mask: pd.Series) -> tuple[str, ...]:
    id_column = table.key or ("person_id" if "person_id" in frame.columns else None)
    if id_column is None or id_column not in frame.columns:
        return ()
    values = frame.loc[mask, id_column].dropna().astype(str).unique()[:SHAPE_SAMPLE]
    shown = dict.fromkeys(shown_id(v) for v in values)  # NHS-number-shaped IDs collapse to one shape
    return tuple(f"{id_column}={v}" for v in list(shown)[:MAX_EXAMPLES])


def _table_path(folder: Path, name: str) -> Path:
    path = find_table_file(folder, name)  # refuses files named for the table in other formats
    if path is None:
        raise ContractError(
            [ContractProblem(name, "", f"a file {name}.parquet or {name}.csv in {folder}")],
            hint="Every contract table must be supplied, even if empty (headers only), as one file "
            "named exactly as the contract says (a Spark output folder must be written as one file).",
        )
    return path


def _header(path: Path) -> list[str] | None:
    """The column names of a table's file, as written (None if it cannot be read: reported later)."""
    try:
        if path.suffix == ".parquet":
            return list(pq.read_schema(path).names)
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return next(csv.reader(handle), [])
    except Exception:  # an unreadable file is reported, with its error, when it is read
        return None


def _check_header(name: str, path: Path) -> None:
    """Refuse a file that names a column twice (pandas would keep the first and rename the other).

    Raises:
        ContractError: Naming the table, the file and the repeated columns.
    """
    names = _header(path)
    if not names:
        return
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise ContractError(
            [
                ContractProblem(
                    name,
                    "",
                    f"each column once in {path.name}; found {', '.join(repeated)} more than once",
                )
            ],
            hint="Two exports were joined side by side, or a column was added twice: keep one.",
        )


def _unreadable(name: str, path: Path, exc: Exception) -> ContractError:
    if isinstance(exc, UnicodeDecodeError):
        return ContractError(
            [
                ContractProblem(
                    name,
                    "",
                    f"a UTF-8 csv file; {path.name} holds bytes that are not UTF-8 "
                    f"(byte 0x{exc.object[exc.start]:02x}; UnicodeDecodeError)",
                )
            ],
            hint=f"Re-export {path.name} as UTF-8 (a Windows-1252 or Latin-1 export breaks accented names).",
        )
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
    _check_header(name, path)
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
    _check_header(name, path)
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


def as_text(values: pd.Series, strip: bool = True) -> pd.Series:
    """Values as typed text: empty as missing, whole floats without ".0".

    Args:
        values: The values as read.
        strip: Trim surrounding spaces (for values that are parsed next, such as
            dates and numbers). Text columns are kept exactly (``strip=False``):
            IDs and codes are compared exactly, and the gate reports spaces.
    """
    if pd.api.types.is_float_dtype(values):
        # Codes stored as floats in Parquet (1.0) read as "1", not "1.0" (inf stays "inf": reported).
        whole = values.dropna()
        if np.isfinite(whole).all() and (whole == np.floor(whole)).all():
            values = values.astype("Int64")
    text = values.astype("string")
    if strip:
        text = strip_edge_space(text)
    return text.mask(text == "", pd.NA)


def to_london_naive(values: pd.Series) -> pd.Series:
    """Time-zone-aware date-times as naive Europe/London wall-clock time; naive ones unchanged.

    This is the one time-zone convention of riskstrat (see the module docstring).
    """
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert(LOCAL_TIME_ZONE).dt.tz_localize(None)
    return values


def _parse_iso(text: pd.Series, well_formed: pd.Series) -> pd.Series:
    """Parse well-formed ISO text; values with a UTC offset are converted to London wall-clock time."""
    candidates = text.where(well_formed)
    with_offset = candidates.str.contains(UTC_OFFSET + "$", regex=True).fillna(False).astype(bool)
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
    naive = candidates.where(~with_offset)
    if naive.notna().any():
        parsed[~with_offset] = pd.to_datetime(naive[~with_offset], errors="coerce", format="ISO8601").astype(
            "datetime64[us]"
        )
    if with_offset.any():
        aware = pd.to_datetime(candidates[with_offset], errors="coerce", format="ISO8601", utc=True)
        parsed[with_offset] = to_london_naive(aware).astype("datetime64[us]")
    return parsed


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
        kind: The gate's kind of check (its severity key): ``types_parse``, or
            ``text_trimmed`` for a date or number with whitespace at either end.
    """

    table: str
    column: str
    wanted: str
    found: str
    n_rows: int
    shapes: tuple[str, ...]
    examples: tuple[str, ...]
    kind: str = "types_parse"

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
            self.kind,
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
    raw: RawTable,
    column: Column,
    wanted: str,
    found: str,
    bad: pd.Series,
    shown: pd.Series,
    kind: str = "types_parse",
) -> ParseFailure:
    return ParseFailure(
        raw.table.name,
        column.name,
        wanted,
        found,
        int(bad.sum()),
        tuple(value_shape(v) for v in shown[bad].head(SHAPE_SAMPLE)),
        _example_ids(raw.frame, raw.table, bad),
        kind,
    )


TRIMMED_WANTED = (
    "values without leading or trailing whitespace (spaces, tabs, no-break or zero-width spaces); "
    "dates and numbers are read exactly, never trimmed"
)


def _untrimmed(raw: RawTable, column: Column, text: pd.Series) -> tuple[pd.Series, ParseFailure | None]:
    """Text read for a date or number column, without edge whitespace, and the rows that had some.

    The values are parsed without it, so the one problem is reported once
    (``text_trimmed``), not again as a missing or unparseable value.
    """
    spaced = edge_space(text)
    if not spaced.any():
        return text, None
    failure = _parse_failure(raw, column, TRIMMED_WANTED, "values shaped ", spaced, text, "text_trimmed")
    return text.mask(spaced, strip_edge_space(text)), failure


def _non_finite(values: pd.Series) -> pd.Series:
    """Whether each value is an infinite number (inf, -inf) as stored; missing and text are False."""
    if pd.api.types.is_float_dtype(values):
        return pd.Series(np.isinf(values.to_numpy(dtype="float64", na_value=np.nan)), index=values.index)
    if isinstance(values.dtype, pd.ArrowDtype) and pa.types.is_floating(values.dtype.pyarrow_dtype):
        return _non_finite(values.astype("float64"))
    if values.dtype == object:
        return values.map(_is_infinite).astype(bool)
    return pd.Series(False, index=values.index)


def _is_infinite(value: object) -> bool:
    if isinstance(value, Decimal):
        return value.is_infinite()
    return isinstance(value, float | np.floating) and bool(np.isinf(value))


def _coerce_column(raw: RawTable, column: Column) -> tuple[pd.Series, list[ParseFailure]]:
    values = raw.frame[column.name]
    if column.type in ("date", "datetime"):
        return _coerce_dates(raw, column, values)
    infinite = _non_finite(values)
    if infinite.any():
        # inf and -inf are never a value (an acuity, an ID): reported, then missing.
        failure = _parse_failure(
            raw,
            column,
            "finite numbers" if column.type != "string" else "text",
            "infinite numbers (inf or -inf)",
            infinite,
            values.astype("string"),
        )
        failure = dataclasses.replace(failure, shapes=())  # "inf" says it all
        rest, failures = _coerce_column(replace_column(raw, column.name, values.mask(infinite)), column)
        return rest, [failure, *failures]
    stored = _stored_as_non_text(values) if column.type == "string" and not column.identifier else None
    if stored:
        # Parquet numbers for a text column: a code's leading zeros (0205, 01) are already lost.
        bad = values.notna()
        failure = _parse_failure(raw, column, "text", f"{stored}; values shaped ", bad, as_text(values))
        return as_text(values), [failure]
    if column.type not in ("integer", "float"):
        return as_text(values, strip=False), []
    failures: list[ParseFailure] = []
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        # Stored as numbers (Parquet): NaN is a missing value.
        numbers = values.astype("float64")
        text = as_text(values, strip=False)
        bad = pd.Series(False, index=values.index)
    else:
        text, trimmed = _untrimmed(raw, column, as_text(values, strip=False))
        failures += [trimmed] if trimmed else []
        # Plain ASCII numbers only: inf, NaN, 1_000 and full-width digits would parse in
        # Python but not in the feature engine, or not as meant.
        well_formed = text.str.match(NUMBER).fillna(True).astype(bool)
        numbers = pd.to_numeric(text.where(well_formed), errors="coerce")
        bad = text.notna() & (~well_formed | numbers.isna() | ~np.isfinite(numbers.fillna(0)))
    if column.type == "integer":
        bad |= numbers.notna() & (numbers != np.floor(numbers))
    if bad.any():
        wanted = "whole numbers" if column.type == "integer" else "numbers"
        failures.append(_parse_failure(raw, column, wanted, "", bad, text))
    numbers = numbers.mask(bad)
    converted = numbers.astype("Int64") if column.type == "integer" else numbers.astype("float64")
    return converted, failures


def replace_column(raw: RawTable, name: str, values: pd.Series) -> RawTable:
    """The raw table with column ``name`` replaced by ``values``."""
    frame = raw.frame.copy(deep=False)
    frame[name] = values
    return RawTable(raw.table, raw.path, frame)


STORED_AS_NUMBER = "stored as a number: leading zeros lost; store as text"
STORED_AS_BOOLEAN = "stored as true/false; store as text"


def _stored_as_non_text(values: pd.Series) -> str | None:
    """How a text column was stored if not as text (Parquet numbers or booleans), else None."""
    present = values.dropna()
    if present.empty:
        return None
    if pd.api.types.is_bool_dtype(values):
        return STORED_AS_BOOLEAN
    if pd.api.types.is_numeric_dtype(values):
        return STORED_AS_NUMBER
    if isinstance(values.dtype, pd.ArrowDtype):
        kind = values.dtype.pyarrow_dtype
        if pa.types.is_boolean(kind):
            return STORED_AS_BOOLEAN
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            return STORED_AS_NUMBER
    if values.dtype == object:
        first = present.iloc[0]
        if isinstance(first, bool | np.bool_):
            return STORED_AS_BOOLEAN
        if isinstance(first, int | float | Decimal | np.number):
            return STORED_AS_NUMBER
    return None


def _date_wanted(column: Column) -> str:
    if column.type == "date":
        return "ISO dates (YYYY-MM-DD)"
    return "ISO date-times (YYYY-MM-DD HH:MM:SS, optionally with a UTC offset such as Z or +01:00)"


def _coerce_dates(raw: RawTable, column: Column, values: pd.Series) -> tuple[pd.Series, list[ParseFailure]]:
    """Type a date or date-time column, normalising time zones to naive Europe/London time.

    A value that cannot be normalised (an unknown zone, a date-time out of range,
    a mix of Python objects) is reported as a parse failure, never raised; a
    value with whitespace at either end is reported as ``text_trimmed``.
    """
    failure = None
    trimmed = None
    try:
        if pd.api.types.is_datetime64_any_dtype(values):
            parsed = to_london_naive(values).astype("datetime64[us]")
        else:
            # Text, or Python objects (mixed zones): their text is ISO, with the offset if they have one.
            text, trimmed = _untrimmed(raw, column, as_text(values, strip=False))
            pattern = ISO_DATE if column.type == "date" else ISO_DATETIME
            well_formed = text.str.match(pattern).fillna(True).astype(bool)
            parsed = _parse_iso(text, well_formed)
            bad = text.notna() & (~well_formed | parsed.isna())
            if bad.any():
                failure = _parse_failure(raw, column, _date_wanted(column), "values shaped ", bad, text)
    except (TypeError, ValueError, OverflowError, pd.errors.OutOfBoundsDatetime) as exc:
        bad = values.notna()
        failure = _parse_failure(
            raw,
            column,
            _date_wanted(column) + f" that convert to {LOCAL_TIME_ZONE} time",
            f"values that cannot be converted ({type(exc).__name__}) shaped ",
            bad,
            values.astype("string"),
        )
        parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    converted = parsed.dt.normalize() if column.type == "date" else parsed
    return converted, [f for f in (trimmed, failure) if f is not None]


def coerce_chunk(raw: RawTable) -> tuple[pd.DataFrame, list[ParseFailure]]:
    """Convert a raw table (or one chunk of it) to the contract's column types.

    Missing contract columns are added empty (the validation gate reports a
    missing required column itself); values that do not parse become missing.

    Args:
        raw: The table or chunk as read.

    Returns:
        The typed frame (index from 0) and the columns whose values do not parse,
        in contract order (a column may have two: whitespace and a value that does not parse).
    """
    table = raw.table
    failures: list[ParseFailure] = []
    typed: dict[str, pd.Series] = {}
    for column in table.columns:
        if column.name not in raw.frame.columns:
            typed[column.name] = _empty_column(column, len(raw.frame))
            continue
        typed[column.name], column_failures = _coerce_column(raw, column)
        failures.extend(column_failures)
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
        names: Tables to read (default: all of the contract; an absent optional table is left out).

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
        if names is None and CONTRACT[name].optional and not table_files(folder, name):
            continue  # an optional table the extract leaves out
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
