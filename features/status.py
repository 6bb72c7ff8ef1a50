"""Each person's status and list context at a run date T, as Ibis expressions.

The weekly worklists need, for every patient, whether they have died, left
their practice, are on a caseload or have a type 1 opt-out at T
(:func:`population_status_at`), and, for the listed people only, the dates of
their last emergency admission and A&E attendance and the community services
they saw recently (:func:`listed_context_at`). Both are built from the
point-in-time helpers, so they run on DuckDB or PySpark beside the features;
the weekly run reads the extract through the feature backend and brings only
their narrow results to the driver (``riskstrat.pipelines.weekly``).

``caseload``, ``opt_outs``, ``apc_spells``, ``ae_attendances`` and
``community_contacts`` may be missing from ``tables``: their columns then say
nothing happened.
"""

from __future__ import annotations

from datetime import date

import ibis
import ibis.expr.types as ir

from riskstrat.features.point_in_time import (
    Tables,
    arrival_date,
    caseload_teams_at,
    deregistered_by,
    died_by,
    emergency_spells,
    in_window,
    type1_opt_outs,
)
from riskstrat.ingest.contract import COMMUNITY_SERVICE_CODES

COMMUNITY_DAYS = 90
"""Days to the data date over which community services are shown."""

POPULATION_STATUS_COLUMNS: tuple[str, ...] = (
    "person_id",
    "practice_code",
    "deceased",
    "deregistered",
    "on_caseload",
    "caseload_team",
    "type1_opt_out",
)
"""The columns of :func:`population_status_at`, in order."""

STATUS_TABLES: tuple[str, ...] = ("patients", "caseload", "opt_outs")
"""The contract tables :func:`population_status_at` reads (``patients`` is required)."""

CONTEXT_TABLES: tuple[str, ...] = ("apc_spells", "ae_attendances", "community_contacts")
"""The contract tables :func:`listed_context_at` reads, each optional."""


_SEPARATOR = "\x1f"
"""ASCII unit separator: marks the end of a sort prefix (it never occurs in a service label)."""


def service_label(service: str) -> str:
    """A community service code as shown on the list ("virtual_ward" -> "Virtual ward")."""
    return service.replace("_", " ").capitalize()


def population_status_at(tables: Tables, as_of: date) -> ir.Table:
    """Death, registration, caseload and opt-out status at ``as_of`` of every patient.

    Args:
        tables: Contract tables by name: ``patients``, and optionally ``caseload`` and ``opt_outs``.
        as_of: The run date T.

    Returns:
        One row per patient, in no particular order, with :data:`POPULATION_STATUS_COLUMNS`:
        ``deceased`` (died on or before T), ``deregistered`` (registration ended on or
        before T), ``on_caseload`` and ``caseload_team`` (every team holding the person
        at T, sorted, joined with ", "; null when none) and ``type1_opt_out``. A person
        with a type 1 opt-out who is missing from ``patients`` still gets a row (null
        practice, every other flag False): a history row may hold them.
    """
    patients = tables["patients"]
    status = patients.select(
        "person_id",
        practice_code=patients.practice_code.cast("string"),
        deceased=died_by(patients, as_of),
        deregistered=deregistered_by(patients, as_of),
    )
    if "caseload" in tables:
        teams = caseload_teams_at(tables["caseload"], as_of).rename(_caseload_person="person_id")
        status = status.left_join(teams, status.person_id == teams._caseload_person).drop("_caseload_person")
    else:
        status = status.mutate(caseload_team=ibis.null("string"))
    status = status.mutate(on_caseload=status.caseload_team.notnull())
    if "opt_outs" not in tables:
        return status.mutate(type1_opt_out=ibis.literal(False)).select(*POPULATION_STATUS_COLUMNS)
    opted_out = type1_opt_outs(tables["opt_outs"]).mutate(_type1=ibis.literal(True))
    keyed = opted_out.rename(_opt_out_person="person_id")
    flagged = status.left_join(keyed, status.person_id == keyed._opt_out_person)
    flagged = flagged.mutate(type1_opt_out=flagged._type1.fill_null(False)).select(*POPULATION_STATUS_COLUMNS)
    absent = opted_out.anti_join(patients, "person_id").select(
        "person_id",
        practice_code=ibis.null("string"),
        deceased=ibis.literal(False),
        deregistered=ibis.literal(False),
        on_caseload=ibis.literal(False),
        caseload_team=ibis.null("string"),
        type1_opt_out=ibis.literal(True),
    )
    return flagged.union(absent.select(*POPULATION_STATUS_COLUMNS))


def listed_context_at(tables: Tables, people: ir.Table, as_of: date) -> ir.Table:
    """The last emergency admission and A&E attendance, and recent community services, of listed people.

    Args:
        tables: Contract tables by name; ``apc_spells``, ``ae_attendances`` and
            ``community_contacts`` are each optional.
        people: A table with ``person_id``, one row per listed person.
        as_of: The data date T; later events are ignored.

    Returns:
        One row per person in ``people``: ``person_id``, ``last_emergency_admission`` and
        ``last_ae_attendance`` (dates on or before T; null if none) and, when
        ``community_contacts`` is given, ``community_services``: every service seen in
        the :data:`COMMUNITY_DAYS` days to T with its number of contacts, in the contract's
        service order, e.g. "District nursing (1), Virtual ward (4)" ("" when none).
    """
    context = people.select("person_id")
    lasts: dict[str, ir.Table] = {}
    if "apc_spells" in tables:
        spells = emergency_spells(tables)
        spells = spells.filter(spells.admission_date <= as_of)
        lasts["last_emergency_admission"] = spells.group_by("person_id").agg(
            _last=spells.admission_date.max()
        )
    if "ae_attendances" in tables:
        attendances = tables["ae_attendances"]
        arrivals = attendances.select("person_id", _day=arrival_date(attendances))
        arrivals = arrivals.filter(arrivals._day <= as_of)
        lasts["last_ae_attendance"] = arrivals.group_by("person_id").agg(_last=arrivals._day.max())
    for column in ("last_emergency_admission", "last_ae_attendance"):
        if column not in lasts:
            context = context.mutate(**{column: ibis.null("date")})
            continue
        last = lasts[column].rename(_last_person="person_id")
        context = context.left_join(last, context.person_id == last._last_person)
        context = context.mutate(**{column: context._last}).drop("_last_person", "_last")
    if "community_contacts" in tables:
        services = _community_services(tables["community_contacts"], as_of).rename(
            _service_person="person_id"
        )
        context = context.left_join(services, context.person_id == services._service_person)
        context = context.mutate(community_services=context._services.fill_null("")).drop(
            "_service_person", "_services"
        )
    return context


def _community_services(contacts: ir.Table, as_of: date) -> ir.Table:
    """``person_id`` and ``_services``, the services text of each person with contacts in the window."""
    recent = contacts.filter(
        in_window(contacts.contact_date, as_of, COMMUNITY_DAYS),
        contacts.service.isin(list(COMMUNITY_SERVICE_CODES)),
    )
    counts = recent.group_by("person_id", "service").agg(_contacts=recent.count())
    # Each entry is prefixed by its place in the contract order and a unit separator, so
    # sorting the collected entries puts them in that order; the prefixes are cut out after
    # joining (a regular expression, not an array lambda: DuckDB and Spark spell those apart).
    position = counts.service.cases(*((s, i) for i, s in enumerate(COMMUNITY_SERVICE_CODES)))
    label = counts.service.cases(*((s, service_label(s)) for s in COMMUNITY_SERVICE_CODES))
    entry = (
        position.cast("string").lpad(3, "0")
        + _SEPARATOR
        + label
        + " ("
        + counts._contacts.cast("string")
        + ")"
    )
    entries = counts.mutate(_entry=entry).group_by("person_id").agg(_entries=ibis._._entry.collect())
    joined = entries._entries.sort().join(", ")
    return entries.select("person_id", _services=joined.re_replace(f"[0-9]+{_SEPARATOR}", ""))
