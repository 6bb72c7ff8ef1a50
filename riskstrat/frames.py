"""The frames one stage hands another, named and checked where they cross.

Each :class:`FrameSchema` names a pandas frame passed between stages, lists the
columns it must have with the kind of value each holds (:class:`Kind`), its
unique key and whether other columns may come with it. ``schema.check(frame)``
raises a :class:`~riskstrat.errors.RiskstratError` naming the frame, the column
and how many rows break it; the one example it gives is a person ID, in the
error's ``details`` (the terminal only, never logs: see :mod:`riskstrat.errors`),
never the value itself.

Each stage declares the frames it hands on beside the code that builds them
(``features.matrix.FEATURE_MATRIX``, ``worklists.selection.SCORED_POPULATION``,
``evaluation.fairness.predictions_schema``, ``worklists.rows.WORKLIST_ROWS``), from
its own column names, and ``pipelines/`` checks them where one stage hands over to
the next. Columns that depend on the settings in use (the features, one probability
per outcome, the reason columns) are added with :meth:`FrameSchema.with_columns`.
This module is core: it imports nothing from the stages.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

import numpy as np
import pandas as pd
import pyarrow as pa

from riskstrat.errors import RiskstratError, one_line


class Kind(StrEnum):
    """The kind of value a column holds."""

    TEXT = "text"
    NUMBER = "number"
    """A finite real number (NaN counts as missing)."""
    INTEGER = "integer"
    """A whole number, in an integer or a float column."""
    BOOLEAN = "boolean"
    """True/False, or 0/1 in a number column."""
    DATE = "date"
    """A ``datetime.date`` or a datetime64 value."""
    PROBABILITY = "probability"
    """A number in [0, 1]."""
    ANY = "any"
    """Any value: only that the column is there (and, unless nullable, filled) is checked."""


_KIND_WORDS: dict[Kind, str] = {
    Kind.TEXT: "text",
    Kind.NUMBER: "finite numbers",
    Kind.INTEGER: "whole numbers",
    Kind.BOOLEAN: "True/False (or 0/1)",
    Kind.DATE: "dates",
    Kind.PROBABILITY: "probabilities in [0, 1]",
    Kind.ANY: "values",
}


@dataclass(frozen=True)
class Column:
    """One column of a frame.

    Attributes:
        name: The column's name.
        kind: The kind of value it holds.
        nullable: Whether a row may have no value (None, NaN, NA).
        required: Whether the frame must have the column; an optional one is checked when present.
    """

    name: str
    kind: Kind
    nullable: bool = False
    required: bool = True


@dataclass(frozen=True)
class FrameSchema:
    """A named frame handed between stages and what it must hold.

    Attributes:
        name: What the frame is called in messages ("scored population").
        columns: The columns it must (or may) have, and their kinds.
        key: Columns whose values together are unique per row (empty: none).
        extra_columns: Whether columns not listed may come along.
        person_column: The column whose value is given as the example of a bad row.
        hint: What to do when the frame breaks the schema.
    """

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    extra_columns: bool = True
    person_column: str = "person_id"
    hint: str = ""

    def column_names(self) -> tuple[str, ...]:
        """The names of the required columns, in order."""
        return tuple(column.name for column in self.columns if column.required)

    def with_columns(self, *columns: Column) -> FrameSchema:
        """This schema with more columns (a listed name is replaced), e.g. the features of the settings in use."""
        added = {column.name for column in columns}
        kept = tuple(column for column in self.columns if column.name not in added)
        return replace(self, columns=(*kept, *columns))

    def check(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Check ``frame`` against this schema.

        Args:
            frame: The frame, with its columns as named here (the index is not read).

        Returns:
            ``frame`` itself, so a check can wrap the value it checks.

        Raises:
            RiskstratError: On the first problem: a missing or unexpected column,
                values of the wrong kind, missing values or a repeated key, naming
                the frame, the column and how many rows; one person ID as example.
        """
        self._check_columns(frame)
        for column in self.columns:
            if column.name in frame.columns:
                self._check_values(frame, column)
        if self.key:
            repeated = frame.duplicated(subset=list(self.key), keep="first").to_numpy()
            if repeated.any():
                self._fail(
                    frame,
                    repeated,
                    f"{self.name}: {int(repeated.sum()):,} row(s) repeat the key ({', '.join(self.key)})",
                )
        return frame

    def _check_columns(self, frame: pd.DataFrame) -> None:
        missing = [name for name in self.column_names() if name not in frame.columns]
        if missing:
            raise RiskstratError(f"{self.name}: missing column(s) {', '.join(missing)}", hint=self.hint)
        if not self.extra_columns:
            known = {column.name for column in self.columns}
            unexpected = [one_line(name) for name in frame.columns if name not in known]
            if unexpected:
                raise RiskstratError(
                    f"{self.name}: unexpected column(s) {', '.join(unexpected)}", hint=self.hint
                )
        repeated = frame.columns[frame.columns.duplicated()]
        if len(repeated):
            raise RiskstratError(
                f"{self.name}: column(s) named twice: {', '.join(one_line(name) for name in repeated)}",
                hint=self.hint,
            )

    def _check_values(self, frame: pd.DataFrame, column: Column) -> None:
        values = frame[column.name]
        absent = values.isna().to_numpy()
        if not column.nullable and absent.any():
            self._fail(frame, absent, f"{self.name}.{column.name}: {int(absent.sum()):,} row(s) missing")
        wrong = _not_of_kind(values, column.kind) & ~absent
        if wrong.any():
            self._fail(
                frame,
                wrong,
                f"{self.name}.{column.name}: {int(wrong.sum()):,} row(s) are not {_KIND_WORDS[column.kind]}",
            )

    def _fail(self, frame: pd.DataFrame, rows: np.ndarray, message: str) -> None:
        position = int(np.flatnonzero(rows)[0])
        if self.person_column in frame.columns:
            details = f"e.g. {self.person_column} {frame[self.person_column].iloc[position]}"
        else:  # no person to name: the row's position, never its value
            details = f"e.g. row {position + 1:,}"
        raise RiskstratError(message, hint=self.hint, details=details)


# ----------------------------------------------------------------------------- kinds


def _not_of_kind(values: pd.Series, kind: Kind) -> np.ndarray:
    """Rows whose value is not of ``kind`` (missing values aside: the caller masks them)."""
    return _KIND_CHECKS[kind](values)


def _each(values: pd.Series, fits: Callable[[object], bool]) -> np.ndarray:
    """Rows of an object column whose value does not fit (one Python call per row)."""
    return np.fromiter((not fits(value) for value in values), dtype=bool, count=len(values))


def _is_real(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _numbers(values: pd.Series) -> pd.Series | None:
    """``values`` as float64 if the column holds only numbers (booleans are not numbers), else None."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return None
    if pd.api.types.is_numeric_dtype(dtype):
        return values.astype("float64")
    if pd.api.types.is_object_dtype(dtype) and not _each(values.dropna(), _is_real).any():
        return values.astype("float64")
    return None


def _not_text(values: pd.Series) -> np.ndarray:
    if isinstance(values.dtype, pd.CategoricalDtype):
        return _not_text(values.astype("object"))
    if pd.api.types.is_string_dtype(values.dtype):
        return np.zeros(len(values), dtype=bool)
    if pd.api.types.is_object_dtype(values.dtype):
        return _each(values, lambda value: isinstance(value, str) or _is_missing(value))
    return np.ones(len(values), dtype=bool)


def _not_number(values: pd.Series) -> np.ndarray:
    numbers = _numbers(values)
    if numbers is None:
        return _wrong_type(values, _is_real)
    return np.isinf(numbers.to_numpy())


def _not_integer(values: pd.Series) -> np.ndarray:
    numbers = _numbers(values)
    if numbers is None:
        return _wrong_type(values, _is_real)
    array = numbers.to_numpy()
    with np.errstate(invalid="ignore"):
        return np.isinf(array) | (np.nan_to_num(array) != np.floor(np.nan_to_num(array)))


def _not_boolean(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values.dtype):
        return np.zeros(len(values), dtype=bool)
    numbers = _numbers(values)
    if numbers is not None:
        return ~numbers.isin([0.0, 1.0]).to_numpy() & numbers.notna().to_numpy()
    return _each(values, lambda value: _is_missing(value) or _is_flag(value))


def _is_flag(value: object) -> bool:
    return isinstance(value, bool | np.bool_) or (_is_real(value) and value in (0, 1))


def _not_date(values: pd.Series) -> np.ndarray:
    dtype = values.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return np.zeros(len(values), dtype=bool)
    if isinstance(dtype, pd.ArrowDtype) and (
        pa.types.is_date(dtype.pyarrow_dtype) or pa.types.is_timestamp(dtype.pyarrow_dtype)
    ):
        return np.zeros(len(values), dtype=bool)
    if pd.api.types.is_object_dtype(dtype):
        return _each(values, lambda value: isinstance(value, date | np.datetime64) or _is_missing(value))
    return np.ones(len(values), dtype=bool)


def _not_probability(values: pd.Series) -> np.ndarray:
    numbers = _numbers(values)
    if numbers is None:
        return _wrong_type(values, _is_real)
    array = numbers.to_numpy()
    with np.errstate(invalid="ignore"):
        return (array < 0) | (array > 1)


def _wrong_type(values: pd.Series, fits: Callable[[object], bool]) -> np.ndarray:
    if pd.api.types.is_object_dtype(values.dtype):
        return _each(values, lambda value: fits(value) or _is_missing(value))
    return np.ones(len(values), dtype=bool)


def _is_missing(value: object) -> bool:
    return (
        value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))
    )


_KIND_CHECKS: dict[Kind, Callable[[pd.Series], np.ndarray]] = {
    Kind.TEXT: _not_text,
    Kind.NUMBER: _not_number,
    Kind.INTEGER: _not_integer,
    Kind.BOOLEAN: _not_boolean,
    Kind.DATE: _not_date,
    Kind.PROBABILITY: _not_probability,
    Kind.ANY: lambda values: np.zeros(len(values), dtype=bool),
}
