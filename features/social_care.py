"""Social care features at an as-of date T, from the Adult Social Care Client Level Data (CLD).

The extract's optional ``social_care_events`` table holds each local authority's
quarterly return: requests, assessments, services and reviews, each with a start
and (unless still open) an end date.

Point in time: returns are due :data:`~riskstrat.ingest.contract.SOCIAL_CARE_RETURN_DUE_DAYS`
after their quarter ends, so every feature at T is computed "as of the latest quarterly
return due", at C = :func:`riskstrat.ingest.social_care.data_cutoff` (T), the end of the
latest quarter whose return is due by T, the same way at training and scoring dates.
From the events that started on or before C:

- long-term support (a long-term residential, nursing or community service) open at
  C, which kind, and for how long it has run (days to C);
- requests and assessments that started in (C - 90, C];
- short-term reablement that ended in (C - 90, C];
- carer events (client type carer) open at some time in (C - 365, C];
- the primary support reasons recorded on the person's events in (C - 365, C].

"Open at C" is started on or before C and not ended on or before C.

No return is not "no care". A person's local authority is the one of their LSOA
(LAD 2019, from the shipped IMD 2019 lookup; a two-tier district maps to its county
through ``county_of_district``), and ``social_care_known`` is 1 only when that local
authority's return for the quarter ending at C is in the extract
(:func:`riskstrat.ingest.social_care.known_local_authorities` is the same rule over the
returns coverage). CLD returns are rolling 12 months, so an older missing quarter is
covered by that return. Otherwise every other social care feature is null (unknown;
LightGBM treats it as missing), never 0.

When the extract has no ``social_care_events`` table the matrix has none of these
columns and the models are trained without them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from riskstrat.features.common import days_before, window_start
from riskstrat.features.point_in_time import Tables
from riskstrat.ingest import contract
from riskstrat.ingest.reference import imd_lookup
from riskstrat.ingest.social_care import RETURNS_TABLE, data_cutoff, local_authority_of_lsoa, quarter_start

SOCIAL_CARE_TABLE = "social_care_events"
"""The contract table the social care features read (optional in an extract)."""

RECENT_DAYS = 90
"""Look-back in days of the request and reablement features (the ``_90d`` in their names)."""
YEAR_DAYS = 365
"""Look-back in days of the carer and primary support reason features, and of the coverage."""

KNOWN = "social_care_known"
LONG_TERM_SUPPORT = "social_care_long_term_support"
LONG_TERM_KINDS: dict[str, str] = {
    service_type: f"social_care_{service_type}" for service_type in contract.LONG_TERM_SERVICE_TYPES
}
"""The flag of each long-term service type (``social_care_long_term_residential``, ...)."""
LONG_TERM_SUPPORT_DAYS = "social_care_long_term_support_days"
REQUESTS_90D = f"social_care_requests_{RECENT_DAYS}d"
REABLEMENT_ENDED_90D = f"social_care_reablement_ended_{RECENT_DAYS}d"
CARER = "social_care_carer"
REASON_NOT_KNOWN = "not_known"
SUPPORT_REASONS: dict[str, str] = {
    reason: f"social_care_psr_{reason}"
    for reason in contract.PRIMARY_SUPPORT_REASONS
    if reason != REASON_NOT_KNOWN
}
"""The flag of each primary support reason (``social_care_psr_memory_cognition``, ...); not_known has none."""

SOCIAL_CARE_FEATURES: tuple[str, ...] = (
    KNOWN,
    LONG_TERM_SUPPORT,
    *LONG_TERM_KINDS.values(),
    LONG_TERM_SUPPORT_DAYS,
    REQUESTS_90D,
    REABLEMENT_ENDED_90D,
    CARER,
    *SUPPORT_REASONS.values(),
)
"""Every social care column of the feature matrix, in matrix order (the one list of their names)."""

REQUEST_EVENT_TYPES: tuple[str, ...] = (contract.REQUEST_EVENT, contract.ASSESSMENT_EVENT)
"""Event types counted by ``social_care_requests_90d``."""
# The contract's values, under the names the features and the MDT row use.
SERVICE_EVENT = contract.SERVICE_EVENT
REABLEMENT = contract.REABLEMENT_SERVICE
CARER_CLIENT = contract.CARER_CLIENT
SERVICE_USER_CLIENT = contract.SERVICE_USER_CLIENT

_NULL_FLAG = ibis.null("int64")


def known_quarter(as_of: date) -> date:
    """The quarter (start) whose return must be in for a local authority's social care to be known at ``as_of``.

    The quarter ending at :func:`~riskstrat.ingest.social_care.data_cutoff` (``as_of``).
    """
    return quarter_start(data_cutoff(as_of))


def local_authority_lookup(county_of_district: Mapping[str, str] | None = None) -> ir.Table:
    """``lsoa_code`` -> ``_la``, the social-services authority of each English LSOA (LAD 2019 code).

    Metropolitan districts, unitaries and London boroughs are their own social-services
    authority; a two-tier shire district (E07) is mapped to its county by ``county_of_district``.
    """
    lsoas = imd_lookup()["lsoa_code"]
    authority = local_authority_of_lsoa(lsoas, county_of_district)
    return ibis.memtable({"lsoa_code": lsoas.astype(str).tolist(), "_la": authority.astype(str).tolist()})


def covered_authorities(returns: ir.Table, as_of: date) -> ir.Table:
    """Local authorities (``_covered_la``) whose social care is known at ``as_of``.

    Those whose return for :func:`known_quarter` (``as_of``) was received: the Ibis form of
    :func:`riskstrat.ingest.social_care.known_local_authorities`.

    Args:
        returns: ``social_care_returns`` (a return listed there was received) when the
            extract has it, else ``social_care_events`` (a quarter holding any row).
        as_of: The as-of date T.
    """
    returned = returns.filter(returns.reporting_period_start == known_quarter(as_of))
    return returned.select(_covered_la=returned.la_code).distinct()


def _person_aggregates(events: ir.Table, as_of: date) -> ir.Table:
    """Per person with events started on or before ``as_of`` (here the cutoff C): raw flags, counts, start date."""
    started = events.filter(events.event_start_date <= as_of)
    end = started.event_end_date
    open_at = end.isnull() | (end > as_of)
    open_in_year = end.isnull() | (end > window_start(as_of, YEAR_DAYS))
    service_type = started.service_type
    is_service = started.event_type == SERVICE_EVENT
    long_term = is_service & service_type.isin(list(contract.LONG_TERM_SERVICE_TYPES)) & open_at
    recent = window_start(as_of, RECENT_DAYS)
    aggregates: dict[str, ir.Scalar] = {
        "_long_term": long_term.ifelse(1, 0).max(),
        **{f"_{kind}": (long_term & (service_type == kind)).ifelse(1, 0).max() for kind in LONG_TERM_KINDS},
        "_long_term_start": ibis.ifelse(long_term, started.event_start_date, ibis.null("date")).min(),
        "_requests": (
            started.event_type.isin(list(REQUEST_EVENT_TYPES)) & (started.event_start_date > recent)
        )
        .ifelse(1, 0)
        .sum(),
        "_reablement_ended": (is_service & (service_type == REABLEMENT) & (end > recent) & (end <= as_of))
        .ifelse(1, 0)
        .max(),
        "_carer": ((started.client_type == CARER_CLIENT) & open_in_year).ifelse(1, 0).max(),
        **{
            f"_psr_{reason}": (
                (started.client_type == SERVICE_USER_CLIENT)
                & open_in_year
                & (started.primary_support_reason == reason)
            )
            .ifelse(1, 0)
            .max()
            for reason in SUPPORT_REASONS
        },
    }
    return started.group_by("person_id").agg(**aggregates)


def social_care_features(
    people: ir.Table,
    tables: Tables,
    as_of: date,
    county_of_district: Mapping[str, str] | None = None,
) -> ir.Table:
    """The social care features of every person in ``people`` at ``as_of``.

    Args:
        people: The cohort at T: ``person_id`` and ``lsoa_code``, one row per person.
        tables: Input tables by contract name, with ``social_care_events``.
        as_of: The as-of date T; the features are computed as of C =
            :func:`~riskstrat.ingest.social_care.data_cutoff` (T).
        county_of_district: Two-tier shire district (E07) -> county (E10) code, for
            areas whose social services are the county's.

    Returns:
        One row per person in ``people``: ``person_id`` and :data:`SOCIAL_CARE_FEATURES`.
        ``social_care_known`` is 0 or 1; when 0 the others are null. When 1, flags and
        counts are 0 without events, and ``social_care_long_term_support_days`` (days from
        the start of the earliest long-term service open at C, to C) is null without one.
    """
    events = tables[SOCIAL_CARE_TABLE]
    lookup = local_authority_lookup(county_of_district)
    placed = people.select("person_id", "lsoa_code")
    placed = placed.left_join(lookup, placed.lsoa_code == lookup.lsoa_code).select("person_id", "_la")
    covered = covered_authorities(tables.get(RETURNS_TABLE, events), as_of)
    placed = placed.left_join(covered, placed._la == covered._covered_la)
    known = placed._covered_la.notnull()
    placed = placed.select("person_id", _known=known)
    cutoff = data_cutoff(as_of)
    aggregates = _person_aggregates(events, cutoff).rename(_events_person="person_id")
    joined = placed.left_join(aggregates, placed.person_id == aggregates._events_person)

    def when_known(value: ir.Value) -> ir.Value:
        return ibis.ifelse(joined._known, value.fill_null(0), _NULL_FLAG)

    start = joined._long_term_start
    days = ibis.ifelse(joined._known & start.notnull(), days_before(cutoff, start), _NULL_FLAG)
    return joined.select(
        "person_id",
        **{
            KNOWN: joined._known.ifelse(1, 0),
            LONG_TERM_SUPPORT: when_known(joined._long_term),
            **{name: when_known(joined[f"_{kind}"]) for kind, name in LONG_TERM_KINDS.items()},
            LONG_TERM_SUPPORT_DAYS: days.cast("int64"),
            REQUESTS_90D: when_known(joined._requests),
            REABLEMENT_ENDED_90D: when_known(joined._reablement_ended),
            CARER: when_known(joined._carer),
            **{name: when_known(joined[f"_psr_{reason}"]) for reason, name in SUPPORT_REASONS.items()},
        },
    )


def add_not_known(features: pd.DataFrame, needed: Iterable[str]) -> list[str]:
    """Add the social care columns in ``needed`` that ``features`` lacks, as not known, in place.

    An extract without ``social_care_events`` scored by a model trained with social care:
    everyone's social care is unknown (``social_care_known`` 0, every other feature null),
    exactly what the features say of a person whose local authority's return is missing.

    Args:
        features: Feature rows (changed in place).
        needed: The feature names a model reads.

    Returns:
        The social care columns added (empty when none were missing).
    """
    added = not_known_columns(features.columns, needed)
    for name, value in added.items():
        features[name] = value
    return list(added)


def not_known_columns(columns: Iterable[str], needed: Iterable[str]) -> dict[str, float]:
    """The social care columns in ``needed`` missing from ``columns``, each with its not-known value.

    ``social_care_known`` is 0, every other feature NaN (null): what :func:`add_not_known` adds
    to pandas rows, and the Spark scoring path adds to its matrix.
    """
    have, wanted = set(columns), set(needed)
    return {
        name: 0.0 if name == KNOWN else np.nan
        for name in SOCIAL_CARE_FEATURES
        if name in wanted and name not in have
    }
