"""Monitoring alarms: what a check found, how serious it is, in plain English.

An alarm names the table, the practices (ODS codes: practices are not
patients), the weeks and the size of the change; it carries counts only, never
a person ID, so it may be logged, stored by Prefect and sent to MLflow.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

Level = Literal["warning", "critical"]

LEVELS: tuple[Level, ...] = ("warning", "critical")
"""Alarm levels, least serious first."""


@dataclass(frozen=True)
class Alarm:
    """One monitoring finding.

    Attributes:
        check: The check that raised it: "feed", "stale", "coverage", "drift", "estimated" or "realised".
        level: "warning" (read it) or "critical" (the run may stop, see ``MonitoringSettings.stop_checks``).
        subject: What it is about (a table, an outcome, a feature).
        message: One plain-English sentence with the size of the change.
        figures: The numbers behind the message (JSON-able).
    """

    check: str
    level: Level
    subject: str
    message: str
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The alarm as a JSON-able mapping."""
        return asdict(self)


def worst(alarms: Iterable[Alarm]) -> Level | None:
    """The most serious level among ``alarms`` (None when there are none)."""
    levels = {alarm.level for alarm in alarms}
    for level in reversed(LEVELS):
        if level in levels:
            return level
    return None


def stopping(alarms: Iterable[Alarm], checks: Collection[str]) -> list[Alarm]:
    """The critical alarms of the ``checks`` that stop the weekly run (``MonitoringSettings.stop_checks``)."""
    return [alarm for alarm in alarms if alarm.level == "critical" and alarm.check in checks]


def percent(ratio: float) -> str:
    """A ratio as a whole percentage ("3%"); below 1% with one decimal ("0.4%")."""
    value = 100 * ratio
    if 0 < value < 1:
        return f"{value:.1f}%"
    return f"{value:.0f}%"


def join_words(words: Sequence[str], limit: int = 8) -> str:
    """``a``, ``a and b``, ``a, b and c``; past ``limit`` items, ``a, b, ... and 5 more``."""
    words = list(words)
    if len(words) > limit:
        shown, rest = words[:limit], len(words) - limit
        return ", ".join(shown) + f" and {rest} more"
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def weeks_phrase(week_ends: Sequence[date]) -> str:
    """The weeks as words, oldest first: "the week ending 2025-12-21", "the weeks ending 2025-12-14 and 2025-12-21"."""
    ordered = [day.isoformat() for day in sorted(set(week_ends))]
    noun = "week" if len(ordered) == 1 else "weeks"
    return f"the {noun} ending {join_words(ordered)}"
