"""Disclosure control for every aggregate in the governance report and its JSON.

NHS Digital's rule for HES and ECDS below national level: a count from 1 to 7
is shown as ``"*"``, every other count is rounded to the nearest 5, zero stays
0, and a rate or mean computed from a suppressed cell is suppressed too.

A proportion of counts (a share, a rate, a sensitivity) and its interval are
computed from the rounded counts, not the exact ones. An exact share gives back
its exact numerator, and with the exact numerators of the other groups and a
total, a suppressed cell by difference (secondary disclosure); the rounded
counts give back only what the report already shows.

The report is built so that this cannot be forgotten: the JSON payload is made
only through :func:`count` / :func:`proportion` / :func:`statistic`, the HTML
is rendered only from that payload, and :func:`check_disclosed` scans the
payload (every key named like a count) before anything is written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from riskstrat.errors import RiskstratError

SUPPRESSED = "*"
"""What a suppressed count or rate is shown as."""

SMALL_COUNT_MAX = 7
"""Counts 1 to this are suppressed."""

ROUND_TO = 5
"""Other counts are rounded to the nearest multiple of this."""

COUNT_KEY = re.compile(r"^(n|count|events|selected|list_n|others_n)$|^(n|count|events|selected)_")
"""JSON keys that hold counts: ``n``, ``count``, ``events``, ``selected``, ``list_n``,
``others_n`` and any key starting ``n_``, ``count_``, ``events_`` or ``selected_``
(``n_population``, ``selected_by_risk`` ...). :func:`check_disclosed` scans every
one; nothing else in the payload is named like this."""


def is_suppressed_count(n: float | None) -> bool:
    """True for a raw count that must not be shown (1 to 7)."""
    return n is not None and not _is_nan(n) and 0 < n <= SMALL_COUNT_MAX


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def count(n: float | None) -> int | str | None:
    """A count as it may be shown: 0, ``"*"`` for 1-7, else rounded to the nearest 5.

    Args:
        n: The raw count (None or NaN: unknown, returned as None).

    Returns:
        The disclosed count.
    """
    if n is None or _is_nan(n):
        return None
    n = float(n)
    if n < 0:
        raise ValueError(f"a count cannot be negative: {n}")
    if n == 0:
        return 0
    if n <= SMALL_COUNT_MAX:
        return SUPPRESSED
    # Half-up rounding (counts are whole, so n / 5 never ends in .5 exactly).
    return int(ROUND_TO * math.floor(n / ROUND_TO + 0.5))


def rounded(n: float | None) -> float | None:
    """The count as shown, as a number: rounded to 5 (0 stays 0); None when suppressed or unknown."""
    shown = count(n)
    return None if shown is None or shown == SUPPRESSED else float(shown)


def rounding_factor(n: float) -> float:
    """The count as shown over the exact count (1 when either is 0 or the count is suppressed).

    Scales a figure built on ``n`` to what it would be on the shown count, e.g. an
    observed/expected ratio to the rounded events.
    """
    shown = rounded(n)
    return shown / n if shown and n else 1.0


def any_suppressed(counts: Iterable[float | None]) -> bool:
    """True when any of the counts a figure is built from is 1-7."""
    return any(is_suppressed_count(c) for c in counts)


def statistic(value: float | None, built_from: Iterable[float | None], digits: int = 3) -> float | str | None:
    """A rate, mean, ratio or metric as it may be shown.

    Args:
        value: The raw figure (None or NaN: not computable, returned as None).
        built_from: Every raw count the figure was computed from (numerator,
            denominator, complement, events, non-events ...).
        digits: Decimal places kept.

    Returns:
        ``"*"`` when any of ``built_from`` is suppressed, else the rounded figure.
    """
    if any_suppressed(built_from):
        return SUPPRESSED
    if value is None or _is_nan(value) or (isinstance(value, float) and math.isinf(value)):
        return None
    return round(float(value), digits)


def proportion(numerator: float, denominator: float, digits: int = 4) -> float | str | None:
    """A proportion as shown, from the rounded counts.

    Returns:
        ``"*"`` when the numerator, complement or denominator is 1-7, else the rounded
        numerator over the rounded denominator (None when the denominator is not positive).
    """
    if denominator is None or _is_nan(denominator) or denominator <= 0:
        return None
    if any_suppressed((numerator, denominator - numerator, denominator)):
        return SUPPRESSED
    shown_numerator, shown_denominator = rounded(numerator), rounded(denominator)
    if shown_numerator is None or not shown_denominator:
        return None
    return round(shown_numerator / shown_denominator, digits)


def mean(total: float, n: float, digits: int = 3) -> float | str | None:
    """A mean of a measure over ``n`` people (``total`` / ``n``), as it may be shown.

    Suppressed when ``n`` is 1-7 or the total is above 0 and at most 7 (a handful of
    admissions); otherwise the total rounded to the nearest 5 over the rounded ``n``. Exact
    means of whole-number measures give back their exact denominators and totals, and by
    difference a suppressed cell.
    """
    if n is None or _is_nan(n) or n <= 0 or total is None or _is_nan(total):
        return None
    if is_suppressed_count(n) or 0 < total <= SMALL_COUNT_MAX:
        return SUPPRESSED
    shown_total = ROUND_TO * math.floor(total / ROUND_TO + 0.5)
    return round(shown_total / float(count(n)), digits)


def is_disclosed_count(value: Any) -> bool:
    """True for a value allowed under a count key: None, 0, ``"*"`` or a multiple of 5 above 7."""
    if value is None or value == SUPPRESSED:
        return True
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if _is_nan(value):
        return True
    return value == 0 or (value > SMALL_COUNT_MAX and float(value) % ROUND_TO == 0)


def undisclosed_counts(payload: Any, path: str = "$") -> list[str]:
    """Every place in a JSON-like payload where a count key holds a value not disclosed.

    Args:
        payload: Nested dicts and lists.
        path: Where ``payload`` sits (for messages).

    Returns:
        ``"<path>=<value>"`` for each offending value.
    """
    problems: list[str] = []
    if isinstance(payload, dict):
        for key, value in payload.items():
            where = f"{path}.{key}"
            if COUNT_KEY.search(str(key)) and not isinstance(value, dict | list):
                if not is_disclosed_count(value):
                    problems.append(f"{where}={value!r}")
            else:
                problems.extend(undisclosed_counts(value, where))
    elif isinstance(payload, list):
        for i, value in enumerate(payload):
            problems.extend(undisclosed_counts(value, f"{path}[{i}]"))
    return problems


def check_disclosed(payload: Any) -> None:
    """Refuse a payload with a count that is 1-7 or not rounded to 5.

    Raises:
        RiskstratError: Naming up to five offending keys.
    """
    problems = undisclosed_counts(payload)
    if problems:
        raise RiskstratError(
            f"{len(problems)} counts in the report are not "
            f"disclosure-controlled, e.g. {', '.join(problems[:5])}",
            hint="Pass every count through riskstrat.evaluation.disclosure.count() before it is reported.",
        )
