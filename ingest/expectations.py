"""Great Expectations suites generated from the data contract.

The contract (:mod:`riskstrat.ingest.contract`) is the one definition of each
table; this module turns it into checks. A :class:`Check` is one expectation
with its kind, severity and the plain words an analyst reads when it fails.

Checks that need more than one column or table (an event's person in
``patients``, nothing after death, discharge not before admission, ages) are
computed here as boolean columns (``_person_in_patients``, ...) with pandas,
and Great Expectations checks that they are all true, so Great Expectations
stays the engine and every check shows in Data Docs. Date checks are also made
on boolean columns, so that Data Docs never show a date of birth or an event
date, only pseudonymised IDs.

Flags are computed one chunk of rows at a time from small whole-table facts
gathered first: the keys that occur more than once (:func:`duplicate_values`)
and the patients' IDs and dates of death (:class:`PatientLookup`), so a
duplicate or an orphan is flagged in whichever chunk it falls.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations.expectations as gxe

from riskstrat.ingest.contract import Table
from riskstrat.ingest.readers import (
    NOT_ASCII_PRINTABLE,
    edge_space,
    nhs_number_shape,
    not_printable_pattern,
)
from riskstrat.ingest.reference import LSOA_PATTERN, conditions, imd_lookup
from riskstrat.ingest.validation_settings import Severity, ValidationSettings

Scope = Literal["table", "rows"]
NAT = np.iinfo(np.int64).min
"""A missing date as int64 microseconds."""
DAY = 86_400_000_000
"""One day in microseconds."""
NOT_KNOWN_ETHNICITY: tuple[str, ...] = ("Z", "99")
"""Ethnic category codes meaning not stated / not known (empty counts as not known too)."""
PRINTABLE_ID_EXPECTED = (
    "printable ASCII characters only (no control, invisible or look-alike characters such as "
    "zero-width spaces, NUL, ESC, direction overrides, full-width digits or Cyrillic letters, "
    "which make two people look the same)"
)
PRINTABLE_TEXT_EXPECTED = (
    "printable characters only (no control or invisible characters such as zero-width spaces, "
    "NUL, ESC, direction overrides, line separators or spaces other than the plain space)"
)


@dataclass(frozen=True)
class Check:
    """One generated expectation and what it means to an analyst.

    Attributes:
        check_id: Unique within a table, e.g. ``codes_in_set:sex``.
        table: Contract table.
        column: Contract column it is about ("" for the whole table).
        kind: Kind of check; the key of its severity in ``configs/validation.yaml``.
        severity: critical or warning.
        expected: What the contract expects, in plain words.
        scope: ``table`` for checks on the whole table (run once), ``rows`` for
            checks on values (run on each chunk, counts summed).
        expectation: The Great Expectations expectation (``meta`` carries the above).
        max_share: For share checks, the largest share of rows allowed to fail
            (None: no row may fail).
    """

    check_id: str
    table: str
    column: str
    kind: str
    severity: Severity
    expected: str
    scope: Scope
    expectation: gxe.Expectation
    max_share: float | None = None


def _meta(check_id: str, table: str, column: str, kind: str, severity: str, expected: str) -> dict:
    return {
        "check_id": check_id,
        "table": table,
        "column": column,
        "kind": kind,
        "severity": severity,
        "expected": expected,
    }


def _check(
    settings: ValidationSettings,
    table: str,
    about: str,
    kind: str,
    expected: str,
    scope: Scope,
    expectation_type: type[gxe.Expectation],
    max_share: float | None = None,
    **ge_kwargs: object,
) -> Check:
    """Build a Check whose expectation carries its meaning in ``meta`` and ``description``.

    ``about`` is the contract column named in messages; ``ge_kwargs`` are the
    expectation's own arguments (its ``column`` may be a derived flag column).
    """
    severity = getattr(settings.severity, kind)
    check_id = f"{kind}:{about or table}"
    if max_share is not None:
        ge_kwargs["mostly"] = round(1.0 - max_share, 10)
    expectation = expectation_type(
        description=f"[{severity}] {table}{'.' + about if about else ''}: {expected}",
        meta=_meta(check_id, table, about, kind, severity, expected),
        **ge_kwargs,
    )
    return Check(check_id, table, about, kind, severity, expected, scope, expectation, max_share)


@dataclass(frozen=True)
class PatientLookup:
    """What the event checks need from patients, built once per extract.

    Only plausible dates are kept: a date of death or birth that patients' own
    checks reject (before ``min_date``, after the extract date, death before
    birth, an implausible age) is the root cause, reported once on
    ``patients``, and is not used to fail every event of that person again.

    Attributes:
        person_ids: Distinct person IDs of patients (empty if it has no person_id column).
        death_dates: Recorded date of death aligned with ``person_ids`` (NaT if none
            or implausible).
        has_deaths: Whether patients has a ``date_of_death`` column (the after-death
            checks pass when it has none).
        birth_months: First day of the birth month aligned with ``person_ids`` (NaT
            if none or implausible).
    """

    person_ids: pa.Array
    death_dates: np.ndarray
    has_deaths: bool
    birth_months: np.ndarray | None = None

    @classmethod
    def of(
        cls,
        patients: pd.DataFrame,
        settings: ValidationSettings | None = None,
        extract_date: date | None = None,
    ) -> PatientLookup:
        """Build the lookup from the typed patients table.

        Args:
            patients: The typed patients table (person_id, birth_date, date_of_death at least).
            settings: The gate's settings, for the plausible date range (default: defaults).
            extract_date: No date may be later (default: no upper limit).
        """
        if "person_id" in patients:
            person_ids = pc.unique(pa.array(patients["person_id"].dropna(), type=pa.large_string()))
        else:
            person_ids = pa.array([], type=pa.large_string())
        plausible = _plausible_dates(patients, settings or ValidationSettings(), extract_date)
        death_dates = np.full(len(person_ids), np.datetime64("NaT"), dtype="datetime64[us]")
        deaths = _person_dates(plausible, "date_of_death")
        if deaths is not None and len(deaths):
            where = pc.index_in(pa.array(deaths.index, type=pa.large_string()), value_set=person_ids)
            where = where.to_numpy(zero_copy_only=False)
            death_dates[where.astype(np.int64)] = deaths.to_numpy().astype("datetime64[us]")
        birth_months = None
        births = _person_dates(plausible, "birth_date")
        if births is not None:
            birth_months = np.full(len(person_ids), np.datetime64("NaT"), dtype="datetime64[us]")
            if len(births):
                where = pc.index_in(pa.array(births.index, type=pa.large_string()), value_set=person_ids)
                where = where.to_numpy(zero_copy_only=False)
                months = births.to_numpy().astype("datetime64[M]").astype("datetime64[us]")
                birth_months[where.astype(np.int64)] = months
        return cls(person_ids, death_dates, deaths is not None, birth_months)


def _flag_check(
    settings: ValidationSettings,
    table: str,
    about: str,
    kind: str,
    flag: str,
    expected: str,
    max_share: float | None = None,
) -> Check:
    """A check that the boolean column ``flag`` is true on every row (or on all but ``max_share``)."""
    return _check(
        settings,
        table,
        about,
        kind,
        expected,
        "rows",
        gxe.ExpectColumnValuesToBeInSet,
        max_share=max_share,
        column=flag,
        value_set=[True],
    )


def _date_columns(table: Table, present: set[str]) -> list[str]:
    return [c.name for c in table.columns if c.type in ("date", "datetime") and c.name in present]


def flag_name(kind: str, column: str) -> str:
    """Name of the derived boolean column for check ``kind`` on ``column``."""
    return f"_{column}_{kind}" if column else f"_{kind}"


def _codes_text(codes: tuple) -> str:
    return ", ".join(str(c) for c in codes)


def build_checks(
    table: Table,
    present: set[str],
    settings: ValidationSettings,
    extract_date: date,
    previous_rows: int | None = None,
    cross_table: bool = True,
) -> list[Check]:
    """Generate every check of one table from the contract.

    Args:
        table: The contract table.
        present: Columns found in the file (checks on absent columns are
            replaced by the failed column-exists check).
        settings: The gate's settings.
        extract_date: No date may be later.
        previous_rows: Row count of the previous extract, if one is recorded.
        cross_table: Add the checks against patients (person in patients, after
            death); off when patients could not be read, which is itself critical.

    Returns:
        The checks, table-level first.
    """
    s = settings
    t = s.thresholds
    name = table.name
    checks: list[Check] = []

    # Whole-table checks.
    for column in table.required_columns:
        checks.append(
            _check(
                s,
                name,
                column,
                "required_columns",
                f"required column '{column}' in the file",
                "table",
                gxe.ExpectColumnToExist,
                column=column,
            )
        )
    empty_kind = "patients_not_empty" if name == "patients" else "events_not_empty"
    checks.append(
        _check(
            s,
            name,
            "",
            empty_kind,
            "at least one row",
            "table",
            gxe.ExpectTableRowCountToBeBetween,
            min_value=1,
        )
    )
    if previous_rows is not None and previous_rows > 0:
        low = int(previous_rows * (1 - t.row_count_change))
        high = int(previous_rows * (1 + t.row_count_change)) + 1
        checks.append(
            _check(
                s,
                name,
                "",
                "row_count_change",
                f"between {low:,} and {high:,} rows (previous extract: {previous_rows:,}, "
                f"change within {t.row_count_change:.0%})",
                "table",
                gxe.ExpectTableRowCountToBeBetween,
                min_value=low,
                max_value=high,
            )
        )

    # Value checks.
    for column in table.columns:
        if column.name not in present:
            continue
        if not column.nullable:
            checks.append(
                _check(
                    s,
                    name,
                    column.name,
                    "not_null",
                    "a value on every row",
                    "rows",
                    gxe.ExpectColumnValuesToNotBeNull,
                    column=column.name,
                )
            )
        if column.codes is not None:
            checks.append(
                _check(
                    s,
                    name,
                    column.name,
                    "codes_in_set",
                    f"one of {_codes_text(column.codes)} (or empty)"
                    if column.nullable
                    else f"one of {_codes_text(column.codes)}",
                    "rows",
                    gxe.ExpectColumnValuesToBeInSet,
                    column=column.name,
                    value_set=list(column.codes),
                )
            )
    for column in table.columns:
        if column.name not in present or column.type != "string":
            continue
        checks.append(
            _flag_check(
                s,
                name,
                column.name,
                "text_trimmed",
                flag_name("text_trimmed", column.name),
                "values without leading or trailing whitespace, ASCII or Unicode (IDs and codes are "
                "compared exactly, never trimmed)",
            )
        )
        if column.identifier:
            checks.append(
                _flag_check(
                    s,
                    name,
                    column.name,
                    "id_not_nhs_number",
                    flag_name("id_not_nhs_number", column.name),
                    "pseudonymised IDs, never NHS numbers: at most "
                    f"{t.nhs_number_share:.0%} of the ten-digit values may carry a valid NHS number "
                    "check digit (random ten-digit pseudonyms: about 9%)",
                    max_share=t.nhs_number_share,
                )
            )
        checks.append(
            _flag_check(
                s,
                name,
                column.name,
                "text_printable",
                flag_name("text_printable", column.name),
                PRINTABLE_ID_EXPECTED if column.identifier else PRINTABLE_TEXT_EXPECTED,
            )
        )
    if table.key and table.key in present:
        checks.append(
            _flag_check(
                s,
                name,
                table.key,
                "id_unique",
                flag_name("id_unique", table.key),
                f"each {table.key} on one row only",
            )
        )
    if name == "gp_diagnoses" and "condition" in present:
        vocabulary = tuple(conditions()["condition"])
        checks.append(
            _check(
                s,
                name,
                "condition",
                "condition_in_vocabulary",
                "a condition of the vocabulary (reference/conditions.csv)",
                "rows",
                gxe.ExpectColumnValuesToBeInSet,
                column="condition",
                value_set=list(vocabulary),
            )
        )
    for column in _date_columns(table, present):
        checks.append(
            _flag_check(
                s,
                name,
                column,
                "date_not_after_extract_date",
                flag_name("date_not_after_extract_date", column),
                f"no date after the extract date {extract_date.isoformat()}",
            )
        )
        checks.append(
            _flag_check(
                s,
                name,
                column,
                "date_not_before_min_date",
                flag_name("date_not_before_min_date", column),
                f"no date before {t.min_date.isoformat()}",
            )
        )
    if name == "patients":
        if "birth_date" in present:
            checks.append(
                _flag_check(
                    s,
                    name,
                    "birth_date",
                    "age_plausible",
                    flag_name("age_plausible", "birth_date"),
                    f"a birth date giving an age from 0 to {t.max_age} at {extract_date.isoformat()}",
                )
            )
        if "birth_date" in present and "date_of_death" in present:
            checks.append(
                _flag_check(
                    s,
                    name,
                    "date_of_death",
                    "death_not_before_birth",
                    flag_name("death_not_before_birth", "date_of_death"),
                    "a date of death not before the birth month (placeholder dates such as "
                    "1900-01-01 are not dates of death: leave it empty)",
                )
            )
        if "lsoa_code" in present:
            checks.append(
                _check(
                    s,
                    name,
                    "lsoa_code",
                    "lsoa_well_formed",
                    f"an English LSOA 2011 code matching {LSOA_PATTERN} "
                    "(Welsh W01 codes and Scottish data zones fail)",
                    "rows",
                    gxe.ExpectColumnValuesToMatchRegex,
                    column="lsoa_code",
                    regex=LSOA_PATTERN,
                )
            )
            flag = flag_name("lsoa_in_imd_lookup", "lsoa_code")
            checks.append(
                _flag_check(
                    s,
                    name,
                    "lsoa_code",
                    "lsoa_in_imd_lookup",
                    flag,
                    f"at most {t.lsoa_not_found_share:.1%} of LSOAs missing from the IMD 2019 lookup",
                    max_share=t.lsoa_not_found_share,
                )
            )
            checks.append(
                _flag_check(
                    s,
                    name,
                    "lsoa_code",
                    "lsoa_in_imd_lookup_high",
                    flag,
                    f"at most {t.lsoa_not_found_share_high:.1%} of LSOAs missing from the IMD 2019 lookup",
                    max_share=t.lsoa_not_found_share_high,
                )
            )
        if "ethnic_category" in present:
            checks.append(
                _flag_check(
                    s,
                    name,
                    "ethnic_category",
                    "ethnicity_known",
                    flag_name("ethnicity_known", "ethnic_category"),
                    f"ethnic category not known (empty, Z, 99) for at most "
                    f"{t.ethnicity_not_known_share:.0%} of patients",
                    max_share=t.ethnicity_not_known_share,
                )
            )
    elif cross_table:
        if "person_id" in present:
            checks.append(
                _flag_check(
                    s,
                    name,
                    "person_id",
                    "person_in_patients",
                    flag_name("person_in_patients", ""),
                    "every person_id to be in patients",
                )
            )
        # Without a person_id the event cannot be matched to a person (required_columns fails).
        for column in _date_columns(table, present) if "person_id" in present else []:
            checks.append(
                _flag_check(
                    s,
                    name,
                    column,
                    "not_after_death",
                    flag_name("not_after_death", column),
                    "no date after the person's recorded date of death",
                )
            )
            checks.append(
                _flag_check(
                    s,
                    name,
                    column,
                    "not_before_birth",
                    flag_name("not_before_birth", column),
                    "no date before the person's birth month",
                )
            )
    for earlier, later in table.date_pairs:
        if earlier in present and later in present:
            checks.append(
                _flag_check(
                    s,
                    name,
                    later,
                    "date_order",
                    flag_name("date_order", later),
                    f"{later} not before {earlier}",
                )
            )
    return checks


def duplicate_values(keys: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array:
    """The non-missing values that occur more than once (a whole table's duplicated keys).

    Args:
        keys: A key column (typed text), whole or gathered from every chunk.

    Returns:
        Each duplicated value once.
    """
    values = keys if isinstance(keys, pa.Array | pa.ChunkedArray) else pa.array(keys, from_pandas=True)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    counts = pc.value_counts(pc.drop_null(values))
    repeated = pc.greater(counts.field("counts"), 1)
    return pc.filter(counts.field("values"), repeated)


def derive_flags(
    frame: pd.DataFrame,
    table: Table,
    present: set[str],
    settings: ValidationSettings,
    extract_date: date,
    patients: PatientLookup | None,
    duplicate_keys: pa.Array | None = None,
) -> pd.DataFrame:
    """Compute the boolean columns that the generated checks expect to be true.

    Missing values count as passing here: whether a value may be missing is the
    ``not_null`` check's job.

    Args:
        frame: The typed table (from ``readers.coerce``), or one chunk of it.
        table: Its contract table.
        present: Columns found in the file.
        settings: The gate's settings.
        extract_date: No date may be later.
        patients: The patients' lookup, for person and death checks (None if
            patients could not be read; those checks are then left out).
        duplicate_keys: The key values duplicated anywhere in the whole table
            (:func:`duplicate_values`); None: ``frame`` is the whole table.

    Returns:
        The boolean columns, one per flag check, on ``frame``'s index.
    """
    t = settings.thresholds
    flags: dict[str, pd.Series] = {}
    day_after_extract = pd.Timestamp(extract_date) + pd.Timedelta(days=1)
    min_date = pd.Timestamp(t.min_date)
    for column in table.columns:
        if column.name not in present or column.type != "string":
            continue
        text = frame[column.name]
        flags[flag_name("text_trimmed", column.name)] = ~edge_space(text)
        # IDs: printable ASCII only; other text: no control, format, separator or odd space character.
        odd = NOT_ASCII_PRINTABLE if column.identifier else not_printable_pattern()
        flags[flag_name("text_printable", column.name)] = ~(
            text.astype("string").str.contains(odd, regex=True).fillna(False).astype(bool)
        )
        if column.identifier:
            # Missing for values that are not ten digits: the share is taken over ten-digit IDs only.
            ten_digits, nhs_like = nhs_number_shape(text)
            flags[flag_name("id_not_nhs_number", column.name)] = (
                (~nhs_like).astype("boolean").where(ten_digits, pd.NA)
            )
    if table.key and table.key in present:
        keys = frame[table.key]
        if duplicate_keys is None:
            flags[flag_name("id_unique", table.key)] = ~(keys.duplicated(keep=False) & keys.notna())
        else:
            flags[flag_name("id_unique", table.key)] = ~is_in(keys, duplicate_keys)
    # Date flags on int64 microseconds: a few numpy passes per column (NaT is the smallest int64).
    ticks = {column: _ticks(frame[column]) for column in _date_columns(table, present)}
    for column, values in ticks.items():
        flags[flag_name("date_not_after_extract_date", column)] = values < _tick(day_after_extract)
        flags[flag_name("date_not_before_min_date", column)] = (values >= _tick(min_date)) | (values == NAT)
    if table.name == "patients":
        if "birth_date" in present:
            births = frame["birth_date"]
            # Age <= max_age at the extract date <=> born after the same day (max_age + 1) years earlier.
            oldest = pd.Timestamp(extract_date) - pd.DateOffset(years=t.max_age + 1)
            flags[flag_name("age_plausible", "birth_date")] = (
                (births > oldest) & (births < day_after_extract)
            ) | births.isna()
        if "birth_date" in present and "date_of_death" in present:
            flags[flag_name("death_not_before_birth", "date_of_death")] = ~(
                _months(frame["date_of_death"]) < _months(frame["birth_date"])
            ).fillna(False).astype(bool)
        if "lsoa_code" in present:
            known = is_in(frame["lsoa_code"], imd_lookup()["lsoa_code"])
            flags[flag_name("lsoa_in_imd_lookup", "lsoa_code")] = known | frame["lsoa_code"].isna()
        if "ethnic_category" in present:
            ethnicity = frame["ethnic_category"]
            flags[flag_name("ethnicity_known", "ethnic_category")] = ethnicity.notna() & ~ethnicity.isin(
                NOT_KNOWN_ETHNICITY
            )
    elif patients is not None and "person_id" in present:
        people = frame["person_id"]
        # One hash lookup gives both whether the person is in patients and their date of death.
        where = pc.index_in(pa.array(people, from_pandas=True), value_set=patients.person_ids)
        known = where.is_valid().to_numpy(zero_copy_only=False)
        flags[flag_name("person_in_patients", "")] = pd.Series(known, index=frame.index) | people.isna()
        positions = where.fill_null(0).to_numpy(zero_copy_only=False)
        death = None
        if patients.has_deaths and len(patients.death_dates):
            death = np.where(known, patients.death_dates.view("i8")[positions], NAT)
        birth = None
        if patients.birth_months is not None and len(patients.birth_months):
            birth = np.where(known, patients.birth_months.view("i8")[positions], NAT)
        for column, values in ticks.items():
            # Month precision: birth_date is often the 1st of the birth month.
            month = (
                values.astype("datetime64[us]").astype("datetime64[M]").astype("datetime64[us]").view("i8")
            )
            month = np.where(values == NAT, NAT, month)
            flags[flag_name("not_before_birth", column)] = (
                np.ones(len(frame), dtype=bool)
                if birth is None
                else ~((birth != NAT) & (month != NAT) & (month < birth))
            )
        for column, values in ticks.items():
            if death is None:
                flags[flag_name("not_after_death", column)] = np.ones(len(frame), dtype=bool)
                continue
            # The death date itself is allowed: compare days, not times of day.
            day = (
                values
                if table.column(column).type == "date"
                else np.where(values == NAT, NAT, values // DAY * DAY)
            )
            flags[flag_name("not_after_death", column)] = ~((death != NAT) & (day != NAT) & (day > death))
    for earlier, later in table.date_pairs:
        if earlier in present and later in present:
            start, end = ticks[earlier], ticks[later]
            flags[flag_name("date_order", later)] = ~((start != NAT) & (end != NAT) & (end < start))
    return pd.DataFrame(
        {
            k: v if isinstance(v, pd.Series) and v.dtype == "boolean" else _as_bool(v)
            for k, v in flags.items()
        },
        index=frame.index,
    )


def _as_bool(values: pd.Series | np.ndarray) -> pd.Series | np.ndarray:
    return values.astype(bool)


def _months(values: pd.Series) -> pd.Series:
    """Dates as the first day of their month (missing stays missing)."""
    return values.dt.to_period("M").dt.start_time.astype("datetime64[us]")


def _plausible_dates(
    patients: pd.DataFrame, settings: ValidationSettings, extract_date: date | None
) -> pd.DataFrame:
    """The person_id, birth_date and date_of_death of patients with implausible dates made missing.

    A date is implausible when patients' own checks reject it: before
    ``thresholds.min_date``, after the extract date, a birth giving an age over
    ``thresholds.max_age``, or a death before the birth month.
    """
    t = settings.thresholds
    columns = [c for c in ("person_id", "birth_date", "date_of_death") if c in patients]
    frame = patients[columns].copy()
    low = pd.Timestamp(t.min_date)
    high = pd.Timestamp(extract_date) + pd.Timedelta(days=1) if extract_date else None
    for column in ("birth_date", "date_of_death"):
        if column not in frame:
            continue
        values = frame[column]
        bad = values < low
        if high is not None:
            bad |= values >= high
        if column == "birth_date" and extract_date is not None:
            bad |= values <= pd.Timestamp(extract_date) - pd.DateOffset(years=t.max_age + 1)
        frame[column] = values.mask(bad.fillna(False).astype(bool))
    if "birth_date" in frame and "date_of_death" in frame:
        before = (_months(patients["date_of_death"]) < _months(patients["birth_date"])).fillna(False)
        frame["date_of_death"] = frame["date_of_death"].mask(before.astype(bool))
    return frame


def _ticks(values: pd.Series) -> np.ndarray:
    """Microseconds since 1970 of a datetime column, missing as ``NAT``."""
    return values.to_numpy(dtype="datetime64[us]").view("i8")


def _tick(moment: pd.Timestamp) -> int:
    return int(np.datetime64(moment, "us").view("i8"))


def is_in(values: pd.Series, allowed: pd.Series | pa.Array | tuple | list) -> pd.Series:
    """``values.isin(allowed)``, several times faster for long value sets (person IDs, LSOAs).

    Arrow's hash lookup is used directly; pandas' own ``isin`` on Arrow strings
    rebuilds the value set at a cost that grows with its length.
    """
    try:
        value_set = allowed if isinstance(allowed, pa.Array) else pa.array(pd.Series(allowed).dropna())
        looked_up = pc.is_in(pa.array(values, from_pandas=True), value_set=value_set)
        return (
            pd.Series(looked_up.to_numpy(zero_copy_only=False), index=values.index).fillna(False).astype(bool)
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return values.isin(allowed.to_pylist() if isinstance(allowed, pa.Array) else allowed)


def _person_dates(patients: pd.DataFrame | None, column: str) -> pd.Series | None:
    """A date column by person_id (first recorded, if a person appears twice); None if absent."""
    if patients is None or column not in patients or "person_id" not in patients:
        return None
    dated = patients.loc[patients[column].notna() & patients["person_id"].notna(), ["person_id", column]]
    dated = dated.drop_duplicates("person_id")
    return pd.Series(dated[column].to_numpy(), index=dated["person_id"].to_numpy())
