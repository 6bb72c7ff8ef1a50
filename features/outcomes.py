"""The outcome registry, the cohort at an as-of date T and the outcomes over (T, T + horizon].

Each outcome is one :class:`Outcome` spec in :data:`OUTCOMES`: its settings
section, label expression, horizon, wording, model-card definition, synthetic
truth column and registered model name. The settings, models, worklists, report,
model card and CLI read the registry when they run, so adding an outcome means
registering one spec, adding its section to ``configs/outcomes.yaml`` and
regenerating the docs.

Cohort at T: alive (no date of death on or before T), registered (registration
started on or before T or not recorded, and not ended on or before T) and at
least ``cohort.min_age`` years old.

Outcomes read only events dated after T:

- ``emergency_admission``: a spell with an emergency admission method admitted in
  (T, T + horizon], or, when ``death_counts_as_event``, a death in that window.
  A person who dies before any admission is therefore an event.
- ``frequent_attendance``: at least ``min_attendances`` A&E arrivals in (T, T + horizon].
  A person who dies early in the window simply has fewer attendances (not an event
  unless the threshold was already reached).

A person who deregisters (or moves away) inside the window keeps their row: SUS
and ECDS record admissions and attendances whatever the GP registration, so the
label stays as observed. Outcome windows must end on or before the extract date.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType
from typing import Any

import ibis.expr.types as ir

from riskstrat.errors import RiskstratError
from riskstrat.features.common import as_flag
from riskstrat.features.point_in_time import (
    Tables,
    arrival_date,
    cohort_at,
    emergency_spells,
    in_outcome_window,
)
from riskstrat.features.settings import (
    EmergencyAdmissionSettings,
    FrequentAttendanceSettings,
    OutcomeSettings,
)
from riskstrat.settings import Settings

__all__ = [
    "OUTCOMES",
    "Label",
    "Outcome",
    "check_outcome_window",
    "cohort_at",
    "outcome",
    "outcome_columns",
    "outcome_definition",
    "outcome_names",
    "outcome_wording",
    "outcomes_at",
    "register_outcome",
    "registered_outcomes",
]

Label = Callable[[ir.Table, Tables, date, Any], ir.Table]
"""An outcome's label: (people, tables, T, its settings) -> ``person_id`` and its 0/1 columns, a row per person."""


@dataclass(frozen=True)
class Outcome:
    """One outcome the models can predict: everything the stages need to know about it.

    Attributes:
        name: The outcome (and label column) name, e.g. ``emergency_admission``; also its
            section of ``configs/outcomes.yaml``.
        description: One line describing its settings section (for the settings reference),
            e.g. "Emergency admission (or death) in the outcome window."
        settings_model: The settings of its section of ``configs/outcomes.yaml``.
        label: Its label columns over (T, T + horizon] as Ibis (see :data:`Label`).
        horizon_days: Its outcome window in days, from its settings.
        wording: Plain English for lists and the report, e.g. "an emergency hospital
            admission (or death) in the next 12 months".
        definition: The model card's definition.
        use: What its lists are for, e.g. "virtual ward, proactive care".
        truth_column: The synthetic ground-truth risk column (``outputs/truth/``).
        registered_model: Default MLflow registered model name.
        extra_columns: Further label columns its settings ask for, by name, with their horizons
            (e.g. ``emergency_admission_90d``); their values come from ``label`` too.
    """

    name: str
    description: str
    settings_model: type[Settings]
    label: Label
    horizon_days: Callable[[Any], int]
    wording: Callable[[Any], str]
    definition: Callable[[Any], str]
    use: str
    truth_column: str
    registered_model: str
    extra_columns: Callable[[Any], Mapping[str, int]] = field(default=lambda settings: {})

    def columns(self, settings: Any) -> dict[str, int]:
        """Every label column this outcome produces with ``settings``, with its horizon in days."""
        return {self.name: self.horizon_days(settings), **self.extra_columns(settings)}


_REGISTRY: dict[str, Outcome] = {}
OUTCOMES: Mapping[str, Outcome] = MappingProxyType(_REGISTRY)
"""Every registered outcome by name, in registration order (a live read-only view: add with
:func:`register_outcome`)."""


def register_outcome(spec: Outcome) -> Outcome:
    """Add ``spec`` to :data:`OUTCOMES` (its settings, models, lists and report then know it).

    Raises:
        RiskstratError: If an outcome of that name is already registered.
    """
    if spec.name in _REGISTRY:
        raise RiskstratError(
            f"an outcome named {spec.name!r} is already registered",
            hint="Give the new outcome its own name.",
        )
    _REGISTRY[spec.name] = spec
    return spec


@contextmanager
def registered_outcomes() -> Iterator[Mapping[str, Outcome]]:
    """Restore :data:`OUTCOMES` on exit: outcomes registered inside the block are forgotten (for tests)."""
    saved = dict(_REGISTRY)
    try:
        yield OUTCOMES
    finally:
        _REGISTRY.clear()
        _REGISTRY.update(saved)


def outcome(name: str) -> Outcome:
    """The registered outcome called ``name``.

    Raises:
        RiskstratError: If no outcome has that name; the message lists the known ones.
    """
    if name not in _REGISTRY:
        raise RiskstratError(
            f"unknown outcome {name!r}; the outcomes are {', '.join(_REGISTRY)}",
            hint="Use one of those names, or register the outcome in riskstrat.features.outcomes.",
        )
    return _REGISTRY[name]


def outcome_names() -> tuple[str, ...]:
    """The names of the registered outcomes, in order."""
    return tuple(_REGISTRY)


def outcome_wording(name: str, outcome_settings: OutcomeSettings) -> str:
    """Plain English for ``name`` as lists and reports say it, e.g. "... in the next 12 months"."""
    spec = outcome(name)
    return spec.wording(outcome_settings.section(name))


def outcome_definition(name: str, outcome_settings: OutcomeSettings) -> str:
    """The model card's definition of ``name`` with these settings."""
    spec = outcome(name)
    return spec.definition(outcome_settings.section(name))


def period_text(days: int) -> str:
    """A horizon as people say it: 365 -> "12 months", 730 -> "24 months", 90 -> "90 days"."""
    if days % 365 == 0:
        return f"{12 * days // 365} months"
    return f"{days} days"


def outcome_columns(settings: OutcomeSettings) -> list[str]:
    """Names of the outcome columns the settings produce: each outcome's own, then the extra ones."""
    specs = list(_REGISTRY.values())
    own = [spec.name for spec in specs]
    extra = [name for spec in specs for name in spec.extra_columns(settings.section(spec.name))]
    return [*own, *extra]


def check_outcome_window(as_of: date, settings: OutcomeSettings, extract_date: date | None) -> None:
    """Refuse outcome windows that run past the extract date (their labels would be incomplete).

    Raises:
        RiskstratError: Naming the as-of date, the horizon and the extract date.
    """
    if extract_date is None:
        return
    horizons = [h for spec in _REGISTRY.values() for h in spec.columns(settings.section(spec.name)).values()]
    end = as_of + timedelta(days=max(horizons))
    if end > extract_date:
        raise RiskstratError(
            f"the outcome window of as-of date {as_of} ends on {end}, after the extract date {extract_date}",
            hint="Choose an earlier as-of date or a shorter horizon in configs/outcomes.yaml.",
        )


def outcomes_at(people: ir.Table, tables: Tables, as_of: date, settings: OutcomeSettings) -> ir.Table:
    """Outcome labels over (T, T + horizon] for each person in ``people``, for every registered outcome.

    Args:
        people: A table with ``person_id`` and ``date_of_death`` (e.g. the cohort at T).
        tables: Input tables by contract name (``apc_spells``, ``ae_attendances``).
        as_of: The as-of date T.
        settings: Outcome settings.

    Returns:
        ``person_id`` and the outcome columns (0/1 integers); no event dated on or
        before T is read.
    """
    joined = people.select("person_id")
    for number, spec in enumerate(_REGISTRY.values()):
        key = f"_person_id_{number}"
        labels = spec.label(people, tables, as_of, settings.section(spec.name)).rename({key: "person_id"})
        joined = joined.left_join(labels, joined.person_id == labels[key]).drop(key)
    return joined.select(
        "person_id",
        **{name: joined[name].fill_null(0).cast("int64") for name in outcome_columns(settings)},
    )


def emergency_admission_labels(
    people: ir.Table, tables: Tables, as_of: date, settings: EmergencyAdmissionSettings
) -> ir.Table:
    """An emergency admission (or, if it counts, death) in (T, T + h], for the horizon and each extra one."""
    horizons = {"emergency_admission": settings.horizon_days}
    horizons.update({f"emergency_admission_{h}d": h for h in settings.additional_horizons_days})
    spells = emergency_spells(tables)
    emergency = spells.filter(in_outcome_window(spells.admission_date, as_of, max(horizons.values())))
    first = emergency.group_by("person_id").agg(_first_emergency=emergency.admission_date.min())
    labelled = (
        people.select("person_id", "date_of_death").left_join(first, "person_id").drop("person_id_right")
    )
    labels = {}
    for name, horizon in horizons.items():
        event = in_outcome_window(labelled._first_emergency, as_of, horizon)
        if settings.death_counts_as_event:
            event = event | in_outcome_window(labelled.date_of_death, as_of, horizon)
        labels[name] = as_flag(event).cast("int64")
    return labelled.select("person_id", **labels)


def frequent_attendance_labels(
    people: ir.Table, tables: Tables, as_of: date, settings: FrequentAttendanceSettings
) -> ir.Table:
    """At least ``min_attendances`` A&E arrivals in (T, T + h]; only people with arrivals have a row."""
    attendances = tables["ae_attendances"]
    future = attendances.filter(in_outcome_window(arrival_date(attendances), as_of, settings.horizon_days))
    counts = future.group_by("person_id").agg(_attendances=future.count())
    return counts.select(
        "person_id",
        frequent_attendance=as_flag(counts._attendances >= settings.min_attendances).cast("int64"),
    )


def _emergency_admission_definition(settings: EmergencyAdmissionSettings) -> str:
    death = ", or death in that window" if settings.death_counts_as_event else ""
    return f"An emergency admission (ADMIMETH 21-2D, 28) within {settings.horizon_days} days after the as-of date{death}"


register_outcome(
    Outcome(
        name="emergency_admission",
        description="Emergency admission (or death) in the outcome window.",
        settings_model=EmergencyAdmissionSettings,
        label=emergency_admission_labels,
        horizon_days=lambda settings: settings.horizon_days,
        wording=lambda settings: (
            "an emergency hospital admission"
            + (" (or death)" if settings.death_counts_as_event else "")
            + f" in the next {period_text(settings.horizon_days)}"
        ),
        definition=_emergency_admission_definition,
        use="virtual ward, proactive care",
        truth_column="p_emergency_admission",
        registered_model="emergency_admission",
        extra_columns=lambda settings: {
            f"emergency_admission_{h}d": h for h in settings.additional_horizons_days
        },
    )
)
register_outcome(
    Outcome(
        name="frequent_attendance",
        description="Frequent A&E attendance in the outcome window.",
        settings_model=FrequentAttendanceSettings,
        label=frequent_attendance_labels,
        horizon_days=lambda settings: settings.horizon_days,
        wording=lambda settings: (
            f"frequent A&E attendance ({settings.min_attendances} or more) "
            f"in the next {period_text(settings.horizon_days)}"
        ),
        definition=lambda settings: (
            f"{settings.min_attendances} or more A&E attendances within "
            f"{settings.horizon_days} days after the as-of date"
        ),
        use="high-intensity-use or care-navigation service",
        truth_column="p_frequent_attendance",
        registered_model="frequent_attendance",
    )
)
