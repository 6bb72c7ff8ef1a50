"""The monthly grid the latent health process lives on.

Rates are constant within a calendar month, so every cumulative intensity is
exact at any day and the truth can be computed in closed form.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

DAYS_PER_YEAR = 365.25
OUTCOME_DAYS = 365


def to_day(value: date) -> int:
    """Days since 1970-01-01."""
    return int(np.datetime64(value, "D").astype(np.int64))


@dataclass(frozen=True)
class Timeline:
    """Calendar months from the history start to a year after the extract date.

    Attributes:
        boundaries: Day number of each month's first day, plus the day after the last month (M + 1 values).
        history_start: First day of the history (day number).
        extract_day: The extract date (day number); no event is later.
    """

    boundaries: np.ndarray
    history_start: int
    extract_day: int

    @property
    def months(self) -> int:
        """Number of months M."""
        return self.boundaries.size - 1

    @property
    def days_in_month(self) -> np.ndarray:
        """Length of each month in days."""
        return np.diff(self.boundaries)

    @property
    def month_middle(self) -> np.ndarray:
        """Middle day of each month (float)."""
        return (self.boundaries[:-1] + self.boundaries[1:]) / 2.0

    def month_of(self, day: np.ndarray) -> np.ndarray:
        """Month index of each day, clipped to [0, M] (M = after the grid)."""
        return np.clip(np.searchsorted(self.boundaries, day, side="right") - 1, 0, self.months)


def build_timeline(history_start: date, extract_date: date) -> Timeline:
    """Months covering ``history_start`` to ``extract_date`` + 365 days."""
    last = extract_date + timedelta(days=OUTCOME_DAYS + 1)
    first_month = np.datetime64(history_start, "M")
    last_month = np.datetime64(last, "M") + 1
    months = np.arange(first_month, last_month + 1, dtype="datetime64[M]")
    return Timeline(
        boundaries=months.astype("datetime64[D]").astype(np.int64),
        history_start=to_day(history_start),
        extract_day=to_day(extract_date),
    )


def cumulative_at(rate: np.ndarray, timeline: Timeline, day: np.ndarray | float) -> np.ndarray:
    """Integral of a monthly-constant annual rate from the grid start to ``day``, per person.

    Args:
        rate: Annual rates, shape (people, months).
        timeline: The grid.
        day: A day number per person, or one day for everyone.

    Returns:
        Expected events from the grid start up to ``day`` (exclusive of later days).
    """
    # Expected events from the grid start to each month boundary, shape (people, months + 1).
    per_month = rate * (timeline.days_in_month / DAYS_PER_YEAR)
    cumulative = np.zeros((rate.shape[0], rate.shape[1] + 1))
    np.cumsum(per_month, axis=1, out=cumulative[:, 1:])
    day = np.broadcast_to(np.asarray(day, dtype=float), (rate.shape[0],))
    month = np.minimum(timeline.month_of(day), timeline.months - 1)
    rows = np.arange(rate.shape[0])
    partial = np.clip(day - timeline.boundaries[month], 0, None) / DAYS_PER_YEAR
    return cumulative[rows, month] + rate[rows, month] * partial
