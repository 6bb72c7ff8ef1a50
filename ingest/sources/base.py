"""What every source adapter shares: its spec, reading raw files, mapping codes with coverage.

A :class:`Source` describes one national dataset as ICB analysts hold it: the
raw file, the fields read (by their national names, which ``configs/sources.yaml``
may rename), the contract tables it writes, and two functions: ``adapt`` turns
the raw frame into contract tables, ``to_national`` (used by the synthetic
generator and the round-trip tests) turns contract tables back into the raw
format. Code mapping goes through :func:`map_codes`, which records a
:class:`FieldCoverage` for every mapped field, so nothing is lost silently.

Large raw files are read in batches (:func:`raw_batches`, ``batch_rows`` rows at a
time) when the source says how it may be split (:attr:`Source.batching`): row by
row, or by person (all of a person's rows in one batch). Batches' coverage adds up
(:func:`merge_coverage`) and their notes are worded once from the summed counts
(:attr:`Source.describe`), so a batched run gives the same tables, coverage and
notes as one read of the whole file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from riskstrat.errors import ContractError, ContractProblem
from riskstrat.ingest.codes import code_system
from riskstrat.ingest.readers import nhs_number_like, value_shape

MAX_EXAMPLES = 5
TOP_UNMAPPED = 10
"""How many of the most frequent unmapped codes a coverage record keeps."""
RAW_SUFFIXES = (".parquet", ".csv")
ROWS = "rows"
"""Batching: any rows may be adapted apart (one output row per input row, or filtered)."""
BY_PERSON = "person"
"""Batching: exact when all of a person's rows are adapted together (dedupe by person, latest kept)."""
WHOLE = "whole"
"""Batching: the whole file at once (a source that says nothing else)."""
_ARROW_TEXT = {pa.large_string(): pd.StringDtype("pyarrow"), pa.string(): pd.StringDtype("pyarrow")}
"""Arrow text -> pandas' Arrow-backed string dtype (what ``astype("string")`` gives, without a copy)."""


@dataclass(frozen=True)
class RawField:
    """One field of a raw national file.

    Attributes:
        name: The national field name (``Der_Pseudo_NHS_Number``); a local warehouse whose
            column is called otherwise renames it in ``configs/sources.yaml``.
        description: What the field holds and what it becomes in the contract.
        required: Whether the file must have the field.
        coded: The coding system when the field is mapped through a code list
            (its coverage is reported), else "".
    """

    name: str
    description: str
    required: bool = True
    coded: str = ""


@dataclass(frozen=True)
class UnmappedCode:
    """One code not found in a code list, with how often it occurred.

    ``system`` names the coding system the code looks like when that is not the
    field's own (a Read v2 code in a SNOMED CT field), else "".
    """

    code: str
    rows: int
    system: str = ""


@dataclass(frozen=True)
class FieldCoverage:
    """How much of one coded field a code list recognised.

    Attributes:
        source: The source's name (``ecds``).
        field: The national field name.
        codelist: The code list used.
        rows: Rows with a value in the field (empty values are not counted).
        mapped: Of those, rows whose code the list recognised.
        unmapped: The most frequent unrecognised codes, most frequent first.
        wrong_system: Rows whose code looks like another coding system.
        tally: Every unmapped code as read (not shortened by :func:`shown_code`), with its
            rows and system, most frequent first: what batches' coverage is merged from.
            Kept in memory only; never written or shown.
        masked: Whether ``unmapped`` shows codes that could be personal as their shape
            (:func:`shown_code`); False for fields whose codes cannot be (ICD-10, LSOA).
    """

    source: str
    field: str
    codelist: str
    rows: int
    mapped: int
    unmapped: tuple[UnmappedCode, ...] = ()
    wrong_system: int = 0
    tally: tuple[UnmappedCode, ...] = field(default=(), compare=False, repr=False)
    masked: bool = field(default=True, compare=False, repr=False)

    @property
    def share(self) -> float:
        """Share of rows with a value that were mapped (1.0 when no row has a value)."""
        return self.mapped / self.rows if self.rows else 1.0

    def as_dict(self) -> dict:
        """JSON-ready form (codes only, never a person)."""
        return {
            "source": self.source,
            "field": self.field,
            "codelist": self.codelist,
            "rows": self.rows,
            "mapped": self.mapped,
            "share": round(self.share, 6),
            "wrong_system": self.wrong_system,
            "unmapped": [{"code": u.code, "rows": u.rows, "system": u.system} for u in self.unmapped],
        }


@dataclass
class SourceOutput:
    """What an adapter returns: contract tables, coverage of each coded field, and notes.

    ``notes`` are aggregate sentences for the run summary ("412 resubmitted CSDS
    contacts removed"), never patient-level values. ``counts`` are the named numbers
    the notes are worded from (by the source's ``describe``), summed across batches.
    """

    tables: dict[str, pd.DataFrame]
    coverage: list[FieldCoverage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    """One national dataset and its adapter.

    Attributes:
        name: Key in ``configs/sources.yaml`` (``sus_apc``).
        title: The dataset's name for people (``SUS+ Admitted Patient Care spells``).
        file: Default raw file stem: ``<file>.parquet`` or ``<file>.csv`` in the raw folder.
        fields: The raw fields read.
        writes: Contract tables produced.
        adapt: Raw frame (text columns, national names) -> :class:`SourceOutput`.
        to_national: Contract tables and a random generator -> the raw frame (national
            names), adding the noise real extracts carry; used by the synthetic writer.
        batching: How the raw file may be split into batches: :data:`ROWS`, :data:`BY_PERSON`
            (needs ``person``) or :data:`WHOLE` (read at once, as before batching existed).
        person: The national field holding the pseudonymised person ID (partitions by person),
            or a tuple of fields in order of preference: the person is the first one given
            (CLD: the traced pseudonym, else the one the LA sent).
        describe: Summed ``counts`` and merged coverage -> the notes (needed to batch).
        merged: Small tables whose batches' rows are combined into the whole file's
            (table -> function of the concatenated batches), e.g. CLD's returns received
            counted per return: written once, after the last batch.
    """

    name: str
    title: str
    file: str
    fields: tuple[RawField, ...]
    writes: tuple[str, ...]
    adapt: Callable[[pd.DataFrame], SourceOutput]
    to_national: Callable[[Mapping[str, pd.DataFrame], np.random.Generator], pd.DataFrame] | None = None
    batching: str = WHOLE
    person: str | tuple[str, ...] = ""
    describe: Callable[[Mapping[str, int], Sequence[FieldCoverage]], list[str]] | None = None
    merged: Mapping[str, Callable[[pd.DataFrame], pd.DataFrame]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.batching not in (ROWS, BY_PERSON, WHOLE):
            raise ValueError(f"{self.name}: batching must be {ROWS}, {BY_PERSON} or {WHOLE}")
        if self.batching != WHOLE and self.describe is None:
            raise ValueError(f"{self.name}: a batched source words its notes from counts (describe)")
        persons = self.person_fields
        if self.batching == BY_PERSON and (not persons or not set(persons) <= set(self.field_names)):
            raise ValueError(f"{self.name}: batching by person needs its person field")

    @property
    def person_fields(self) -> tuple[str, ...]:
        """The national fields of the person ID, in order of preference (empty: none)."""
        if isinstance(self.person, str):
            return (self.person,) if self.person else ()
        return tuple(self.person)

    @property
    def field_names(self) -> tuple[str, ...]:
        """The national names of every field."""
        return tuple(f.name for f in self.fields)


def _once_per_value(values: pd.Series, convert: Callable[[pd.Index], pd.Index]) -> pd.Series:
    """``convert`` applied to each distinct value once, then spread to the rows (missing stays missing).

    Raw national columns repeat a few thousand codes or dates over millions of rows, so
    converting the distinct values is several times faster than converting every row.
    """
    categories = values.astype("category")
    converted = pd.Series(convert(categories.cat.categories))
    if converted.empty:  # every value missing: one missing value to spread
        converted = pd.Series([None], dtype=converted.dtype)
    positions = categories.cat.codes.to_numpy()
    result = converted.iloc[np.maximum(positions, 0)].where(positions >= 0)
    return result.set_axis(values.index)


# -- reading raw files ---------------------------------------------------------------------


def raw_file(folder: Path, stem: str) -> Path | None:
    """The raw file ``<stem>.parquet`` or ``<stem>.csv`` in ``folder``, or None.

    Raises:
        ContractError: If both exist (one is stale).
    """
    found = [
        Path(folder) / f"{stem}{suffix}"
        for suffix in RAW_SUFFIXES
        if (Path(folder) / f"{stem}{suffix}").is_file()
    ]
    if len(found) > 1:
        raise ContractError(
            [ContractProblem(stem, "", f"one file for {stem}; found {' and '.join(p.name for p in found)}")],
            hint="Remove the stale file: each raw file is supplied once, as Parquet or as CSV.",
        )
    return found[0] if found else None


PADDING = " \t"
"""Stripped from both ends of every raw value: warehouse exports pad fixed-width (CHAR) columns.
Other white space (no-break, zero-width) is left for the gate, which names it."""


def _unpadded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Text with the padding stripped, and empty values missing (Parquet has no CSV empty-cell rule)."""
    trimmed = pc.utf8_trim(column, characters=PADDING)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, type=trimmed.type), trimmed)


def _local_names(source: Source, renames: Mapping[str, str] | None) -> dict[str, str]:
    """National field name -> the column name looked for in the file."""
    renames = dict(renames or {})
    return {f.name: renames.get(f.name, f.name) for f in source.fields}


def _check_fields(path: Path, source: Source, local: Mapping[str, str], present: set[str]) -> None:
    """Raise naming the file and every required field it lacks (and the local name looked for)."""
    missing = [f for f in source.fields if f.required and local[f.name] not in present]
    if missing:
        problems = [
            ContractProblem(
                f"{source.title} ({path.name})",
                local[f.name],
                "the field "
                + (
                    f"{f.name} (renamed to {local[f.name]} in configs/sources.yaml)"
                    if local[f.name] != f.name
                    else f.name
                ),
            )
            for f in missing
        ]
        raise ContractError(
            problems,
            hint="Rename the local column to the national name, or map it under "
            f"sources.{source.name}.columns in configs/sources.yaml (see docs/data-contract.md).",
        )


def _present(path: Path) -> set[str]:
    if path.suffix == ".parquet":
        return set(pq.read_schema(path).names)
    return set(pd.read_csv(path, nrows=0, encoding="utf-8").columns)


def raw_text(table: pa.Table | pa.RecordBatch) -> pa.Table:
    """Raw columns as Arrow text: cast to ``large_string``, padding stripped, empty values missing."""
    table = pa.Table.from_batches([table]) if isinstance(table, pa.RecordBatch) else table
    table = table.cast(pa.schema([pa.field(name, pa.large_string()) for name in table.column_names]))
    for index, name in enumerate(table.column_names):
        table = table.set_column(index, name, _unpadded(table.column(index)))
    return table


def raw_frame(table: pa.Table, source: Source, renames: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Raw text (local column names, as :func:`raw_text` leaves it) -> the frame an adapter reads.

    Columns are renamed to their national names, fields absent from the file are added
    empty, and the fields are put in the source's order.
    """
    back = {v: k for k, v in _local_names(source, renames).items()}
    # Hand the Arrow buffers to pandas as Arrow-backed strings: no second copy.
    frame = table.to_pandas(types_mapper=_ARROW_TEXT.get, self_destruct=True).rename(columns=back)
    for f in source.fields:
        if f.name not in frame.columns:
            frame[f.name] = pd.array([pd.NA] * len(frame), dtype="string")
    return frame[list(source.field_names)]


def raw_batches(
    path: Path, source: Source, renames: Mapping[str, str] | None = None, batch_rows: int | None = None
) -> Iterator[pa.Table]:
    """A raw file's fields as Arrow text (:func:`raw_text`, local names), ``batch_rows`` rows at a time.

    Parquet is read by record batch (streamed, even inside a large row group: a 12-million-row
    row group read in 100,000-row batches peaks at 0.15 GiB against 0.74 GiB read whole),
    CSV by block of rows with the same reading rules as one read. At least one batch
    is given, empty for an empty file. ``batch_rows`` None reads the file at once.

    Raises:
        ContractError: If a required field is missing (before any row is read).
    """
    local = _local_names(source, renames)
    present = _present(path)
    _check_fields(path, source, local, present)
    columns = [name for name in dict.fromkeys(local.values()) if name in present]
    given = False
    if path.suffix == ".parquet":
        if batch_rows is None:
            batches: Iterator[pa.Table | pa.RecordBatch] = iter([pq.read_table(path, columns=columns)])
        else:
            batches = pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=columns)
        for batch in batches:
            given = True
            yield raw_text(batch)
        if not given:
            yield raw_text(pq.read_schema(path).empty_table().select(columns))
        return
    chunks = pd.read_csv(
        path,
        usecols=columns,
        dtype="string",
        keep_default_na=False,
        na_values=[""],
        encoding="utf-8",
        chunksize=batch_rows,
    )
    for chunk in [chunks] if batch_rows is None else chunks:
        given = True
        yield raw_text(pa.Table.from_pandas(chunk[columns], preserve_index=False))
    if not given:
        yield raw_text(pa.table({name: pa.array([], pa.large_string()) for name in columns}))


def raw_rows(path: Path) -> int | None:
    """Rows of a Parquet raw file from its footer (None for CSV: counting means reading it)."""
    return pq.ParquetFile(path).metadata.num_rows if path.suffix == ".parquet" else None


def read_raw(path: Path, source: Source, renames: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read a raw national file as text columns named by their national names.

    Args:
        path: The Parquet or CSV file.
        source: The source it belongs to (names the fields to keep).
        renames: National field name -> the local column name, from ``configs/sources.yaml``.

    Returns:
        One text column (pandas ``string``) per field found: padding spaces and tabs stripped,
        empty values missing, in CSV and Parquet alike.

    Raises:
        ContractError: If a required field is missing, naming the file and the field
            (and the local name it was looked for under, when renamed).
    """
    (table,) = raw_batches(path, source, renames)
    return raw_frame(table, source, renames)


def raw_problem(
    source: Source, field_name: str, expected: str, bad: pd.Series, ids: pd.Series | None = None
) -> ContractProblem:
    """A :class:`ContractProblem` for rows of a raw file that break ``expected``.

    Examples are the pseudonymised IDs of the failing rows when given (``ids``),
    otherwise the failing values' codes; never a date of birth or an NHS number.
    """
    examples = tuple(
        str(v) for v in (ids[bad] if ids is not None else pd.Series(dtype=str)).head(MAX_EXAMPLES)
    )
    return ContractProblem(source.title, field_name, expected, int(bad.sum()), examples)


def parse_dates(
    source: Source,
    frame: pd.DataFrame,
    field_name: str,
    ids: pd.Series | None = None,
    with_time: bool = False,
) -> pd.Series:
    """Parse a raw date (or date-time) field: ISO ``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM[:SS]``.

    Empty values stay missing. Values that do not parse raise an error naming the
    source, the field, how many rows fail and example IDs.

    Raises:
        ContractError: If any non-empty value does not parse.
    """
    text = frame[field_name]
    parsed = _once_per_value(
        text, lambda distinct: pd.to_datetime(distinct, format="ISO8601", errors="coerce")
    )
    bad = text.notna() & parsed.isna()
    if bad.any():
        wanted = "ISO date-times (YYYY-MM-DD HH:MM:SS)" if with_time else "ISO dates (YYYY-MM-DD)"
        raise ContractError([raw_problem(source, field_name, wanted, bad, ids)])
    parsed = parsed.dt.tz_localize(None) if getattr(parsed.dt, "tz", None) is not None else parsed
    return parsed.astype("datetime64[s]") if with_time else parsed.dt.normalize().astype("datetime64[s]")


def require_values(
    source: Source, frame: pd.DataFrame, field_name: str, ids: pd.Series | None = None
) -> None:
    """Raise if a field the contract needs is empty on any row.

    Raises:
        ContractError: Naming the source, the field, the number of rows and example IDs.
    """
    bad = frame[field_name].isna()
    if bad.any():
        raise ContractError([raw_problem(source, field_name, "a value on every row", bad, ids)])


_PERSONAL_SHAPES = re.compile(
    r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"  # a date (a date of birth in a mis-mapped column)
    r"|^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$",  # a postcode
    re.IGNORECASE,
)


def shown_code(code: str) -> str:
    """An unmapped value as the coverage report may show it: its shape (9 for digits) when it could be personal.

    The report names the most frequent unmapped values of each coded field; a column
    mapped by mistake (a date of birth, a postcode or an NHS number where a code was
    expected) must not put those values in Data Docs or the run summary.
    """
    if _PERSONAL_SHAPES.search(code) or bool(nhs_number_like(pd.Series([code])).iloc[0]):
        return value_shape(code)
    return code


def map_codes(
    source: Source,
    field_name: str,
    values: pd.Series,
    mapping: Mapping[str, str],
    codelist: str,
    system: str,
    normalise: Callable[[pd.Series], pd.Series] | None = None,
) -> tuple[pd.Series, FieldCoverage]:
    """Map coded values through a code list and record the coverage.

    Args:
        source: The source being adapted.
        field_name: The national field name (for the coverage report).
        values: The raw codes (text; missing values are not counted).
        mapping: Code -> contract value (from :func:`riskstrat.ingest.codelists.code_map`).
        codelist: The code list's name (for the coverage report).
        system: The field's own coding system (``snomed``, ``icd10`` ...; see
            :func:`riskstrat.ingest.codes.code_system`), so codes of another system are named.
        normalise: Applied to the codes before lookup (e.g. strip the ICD-10 dot).

    Returns:
        The mapped values (missing where unmapped or empty) and the field's coverage.
    """
    codes = values.astype("string")
    if normalise is not None:
        codes = normalise(codes)
    mapped = _once_per_value(
        codes, lambda distinct: distinct.map(lambda code: mapping.get(code)).astype("string")
    )
    present = codes.notna()
    missed = present & mapped.isna()
    coverage = field_coverage(
        source.name,
        field_name,
        codelist,
        int(present.sum()),
        int((present & mapped.notna()).sum()),
        codes[missed].value_counts(),
        system,
    )
    return mapped, coverage


def ranked_unmapped(counts: pd.Series | Mapping[str, int], system: str | None) -> tuple[UnmappedCode, ...]:
    """Unmapped codes with their rows, most frequent first (ties by code), naming another system.

    The order is fixed by the counts alone, so whole files and merged batches rank alike.
    ``system`` None names no system (fields whose values are no code of any system).
    """
    counts = pd.Series(counts, dtype="int64") if isinstance(counts, Mapping) else counts
    if counts.empty:
        return ()
    order = pd.DataFrame({"code": counts.index.astype(str), "rows": counts.to_numpy(dtype="int64")})
    order = order.sort_values(["rows", "code"], ascending=[False, True], kind="stable")
    systems = (
        code_system(pd.Series(order["code"].to_numpy(), dtype="string"))
        if system is not None
        else [""] * len(order)
    )
    return tuple(
        UnmappedCode(code, int(rows), found if found not in ("", system) else "")
        for code, rows, found in zip(order["code"], order["rows"], systems, strict=True)
    )


def field_coverage(
    source: str,
    field_name: str,
    codelist: str,
    rows: int,
    mapped: int,
    unmapped: pd.Series | Mapping[str, int] | tuple[UnmappedCode, ...],
    system: str | None,
    masked: bool = True,
) -> FieldCoverage:
    """A coverage record from its counts and every unmapped code's rows.

    Args:
        source: The source's name.
        field_name: The national field.
        codelist: The code list's name.
        rows: Rows with a value.
        mapped: Of those, rows mapped.
        unmapped: Every unmapped code -> rows (or a ranked tally to re-use).
        system: The field's own coding system (codes of another system are named; None: none named).
        masked: Show codes that could be personal as their shape (:func:`shown_code`).
    """
    tally = unmapped if isinstance(unmapped, tuple) else ranked_unmapped(unmapped, system)
    show = shown_code if masked else str
    return FieldCoverage(
        source=source,
        field=field_name,
        codelist=codelist,
        rows=rows,
        mapped=mapped,
        unmapped=tuple(replace(u, code=show(u.code)) for u in tally[:TOP_UNMAPPED]),
        wrong_system=sum(u.rows for u in tally if u.system),
        tally=tally,
        masked=masked,
    )


def merge_coverage(first: Sequence[FieldCoverage], second: Sequence[FieldCoverage]) -> list[FieldCoverage]:
    """Two batches' coverage of the same fields as one: rows add, unmapped codes re-ranked.

    Records are matched by position (an adapter reports the same fields in the same
    order every time); the systems of codes are the first record's.
    """
    if not first:
        return list(second)
    merged = []
    for a, b in zip(first, second, strict=True):
        if (a.source, a.field, a.codelist) != (b.source, b.field, b.codelist):
            raise ValueError(f"coverage of {a.source}.{a.field} and {b.source}.{b.field} cannot be merged")
        rows: dict[str, int] = {}
        systems: dict[str, str] = {}
        for u in (*a.tally, *b.tally):
            rows[u.code] = rows.get(u.code, 0) + u.rows
            systems.setdefault(u.code, u.system)
        order = sorted(rows, key=lambda code: (-rows[code], code))
        tally = tuple(UnmappedCode(code, rows[code], systems[code]) for code in order)
        merged.append(
            field_coverage(
                a.source, a.field, a.codelist, a.rows + b.rows, a.mapped + b.mapped, tally, "", a.masked
            )
        )
    return merged
