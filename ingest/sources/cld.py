"""Adult Social Care Client Level Data (CLD) -> ``social_care_events``.

As ICB analysts receive CLD from NHS England (pseudonymised, linked to health
data): one row per event (request, assessment, service or review) per quarterly
local-authority return. Field names are those of the national CLD tables as
DHSC and NHS England's published processing code reads them: ``LA_Code``,
``Reporting_Period_Start_Date``, ``Reporting_Period_End_Date``,
``Der_NHS_Number_Traced_Pseudo`` (the traced NHS number, pseudonymised) and
``Der_NHS_Number_Pseudo`` (the number the LA sent, pseudonymised),
``Client_Type``, ``Event_Type``, ``Event_Start_Date``, ``Event_End_Date``,
``Service_Type``, ``Service_Component``, ``Primary_Support_Reason``,
``Accommodation_Status`` and ``ImportDate`` (when the return was loaded).

The coded fields are text values ("Long Term Support: Nursing Care"), mapped
through the ``cld_values`` code list with case, ``&`` and the spaces around
``/ : , ( ) -`` ignored (returns vary); unknown values are reported in the
coverage, never dropped silently.

LAs send rolling 12-month returns each quarter and resubmit: one event comes in
several returns. An event is the DHSC "unique event": LA, person, event type,
start date, client type and, for services, service type and component (the
CLD event reference is not yet fit for use). Each event keeps the row of its
latest return (``Reporting_Period_End_Date``, then ``ImportDate``); how many
rows were removed is a note. ``reporting_period_start`` is the first day of the
quarter of that return (the quarter of ``Reporting_Period_End_Date``, so rolling
and quarter-only returns read alike).

Rows are left out, counted in notes: without a pseudonymised NHS number (CLD
allows an LA person ID only, which cannot link to health records); without an
event type (carers known by association); with an unknown event or client type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cache

import numpy as np
import pandas as pd

from riskstrat.errors import ContractError
from riskstrat.ingest.codelists import codelist
from riskstrat.ingest.contract import CONTRACT
from riskstrat.ingest.social_care import LA_CODE_PATTERN, RETURNS_TABLE
from riskstrat.ingest.sources import register_source
from riskstrat.ingest.sources.base import (
    BY_PERSON,
    FieldCoverage,
    RawField,
    Source,
    SourceOutput,
    _once_per_value,
    map_codes,
    parse_dates,
    raw_problem,
    require_values,
)

TRACED = "Der_NHS_Number_Traced_Pseudo"
PERSON = "Der_NHS_Number_Pseudo"
LA = "LA_Code"
PERIOD_END = "Reporting_Period_End_Date"
CODELIST = "cld_values"
NOT_MODELLED = "not_modelled"
LA_CODE = re.compile(LA_CODE_PATTERN)
"""ONS code of a social-services authority: unitary, metropolitan district, London borough, county."""
CODED: dict[str, str] = {
    "Event_Type": "event_type",
    "Client_Type": "client_type",
    "Service_Type": "service_type",
    "Service_Component": "service_component",
    "Primary_Support_Reason": "primary_support_reason",
    "Accommodation_Status": "accommodation_status",
}
"""CLD coded field -> the contract column it maps onto."""
SERVICE_ONLY = ("service_type", "service_component")
"""Contract columns kept on service events only."""

FIELDS = (
    RawField(LA, "ONS code of the local authority whose return the row came in -> la_code."),
    RawField(
        "Reporting_Period_Start_Date",
        "First day of the return's reporting period (12 months for a rolling return); read for reference.",
        required=False,
    ),
    RawField(PERIOD_END, "Last day of the return's reporting period: its quarter -> reporting_period_start."),
    RawField(
        TRACED,
        "Pseudonymised NHS number after tracing -> person_id (preferred).",
        required=False,
    ),
    RawField(PERSON, "Pseudonymised NHS number the LA sent -> person_id where the traced one is empty."),
    RawField("Client_Type", "Service User, Carer (or Unpaid carer) -> client_type.", coded="CLD"),
    RawField("Event_Type", "Request, Assessment, Service or Review -> event_type.", coded="CLD"),
    RawField("Event_Start_Date", "Date the event began (ISO) -> event_start_date."),
    RawField(
        "Event_End_Date", "Date the event ended; empty if open (ISO) -> event_end_date.", required=False
    ),
    RawField(
        "Service_Type",
        "Services: Long Term Support: Nursing Care / Residential Care / Community, Short Term Support: "
        "ST-Max / Ongoing Low Level / Other Short Term -> service_type.",
        required=False,
        coded="CLD",
    ),
    RawField(
        "Service_Component",
        "Services: Home Support, Direct Payment, Reablement, Day Support ... -> service_component.",
        required=False,
        coded="CLD",
    ),
    RawField(
        "Primary_Support_Reason",
        "Physical Support: Personal care support, Support with Memory and Cognition ... -> primary_support_reason.",
        required=False,
        coded="CLD",
    ),
    RawField(
        "Accommodation_Status",
        "Owner occupier ..., Registered care home ... -> accommodation_status (grouped).",
        required=False,
        coded="CLD",
    ),
    RawField(
        "ImportDate",
        "When the return was loaded (later = newer, for two returns of one period).",
        required=False,
    ),
)


def normalise(values: pd.Series) -> pd.Series:
    """CLD text values as compared: lower case, ``&`` as ``and``, one space, none around ``/ : , ( ) -``."""
    return _once_per_value(
        values,
        lambda distinct: (
            distinct.str.strip()
            .str.casefold()
            .str.replace("&", "and", regex=False)
            .str.replace(r"\s+", " ", regex=True)
            .str.replace(r" ?([/:,()-]) ?", r"\1", regex=True)
            .astype("string")
        ),
    )


@cache
def value_map(cld_field: str) -> dict[str, str]:
    """The ``cld_values`` code list of one CLD field: normalised value -> contract value."""
    values = codelist(CODELIST)
    values = values[values["field"] == cld_field]
    return dict(zip(values["code"], values["value"], strict=True))


def _latest_submission(frame: pd.DataFrame, key: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
    """Keep each event's row from its latest return, as DHSC's GetUniqueEvents does.

    Order: the latest period end, then the latest import time; between rows of the same
    return the open one (no end date), then the latest end date; file order last.

    Returns:
        The kept rows, the rows removed as resubmissions (an older return) and the rows
        removed as duplicates within the same return.
    """
    imported = pd.to_datetime(frame["ImportDate"], format="ISO8601", errors="coerce")
    bad = frame["ImportDate"].notna() & imported.isna()
    if bad.any():  # a wrong time could make an older return win: refuse rather than guess
        raise ContractError(
            [
                raw_problem(
                    SOURCE, "ImportDate", "ISO date-times (YYYY-MM-DD HH:MM:SS)", bad, frame["person_id"]
                )
            ]
        )
    end = pd.to_datetime(frame["event_end_date"])
    order = key.assign(
        period_end=frame["period_end"].to_numpy(),
        imported=imported.fillna(pd.Timestamp.min).to_numpy(),
        open=end.isna().to_numpy(),
        end=end.fillna(pd.Timestamp.min).to_numpy(),
        row=np.arange(len(frame)),
    )
    columns = list(key.columns)
    order = order.sort_values([*columns, "period_end", "imported", "open", "end", "row"], kind="stable")
    keep = np.sort(order.drop_duplicates(columns, keep="last")["row"].to_numpy())
    same_return = len(order) - len(order.drop_duplicates([*columns, "period_end", "imported"]))
    removed = len(frame) - keep.size
    return frame.iloc[keep].reset_index(drop=True), removed - same_return, same_return


def _quarter(period_end: pd.Series) -> pd.Series:
    """The reporting quarter (start) of each return's period end."""
    return period_end.dt.to_period("Q").dt.start_time.astype("datetime64[s]")


def _returns_received(la: pd.Series, period_end: pd.Series) -> pd.DataFrame:
    """``social_care_returns``: one row per (LA, quarter) return read, with its row count."""
    returns = (
        pd.DataFrame({"la_code": la.astype("str").to_numpy(), "reporting_period_start": _quarter(period_end)})
        .groupby(["la_code", "reporting_period_start"], as_index=False)
        .size()
        .rename(columns={"size": "rows"})
    )
    return returns.astype({"rows": "int64"})[list(CONTRACT[RETURNS_TABLE].column_names)]


def _merged_returns(batches: pd.DataFrame) -> pd.DataFrame:
    """The returns counted in each batch as one row per return, rows summed (``Source.merged``)."""
    returns = batches.groupby(["la_code", "reporting_period_start"], as_index=False)["rows"].sum()
    return returns.astype({"rows": "int64"})[list(CONTRACT[RETURNS_TABLE].column_names)]


LEFT_OUT: dict[str, str] = {
    "no_person": "without a pseudonymised NHS number (an LA person ID only)",
    "no_event": "without an event type (e.g. carers known by association)",
    "unknown_event": "with an unknown event type (see the coverage report)",
    "unknown_client": "with an empty or unknown client type",
}
"""Counts of CLD rows left out (keys of ``SourceOutput.counts``) and how the notes word them."""


def describe(counts: Mapping[str, int], coverage: Sequence[FieldCoverage]) -> list[str]:
    """The adapter's notes from its counts (whole file or summed batches)."""
    notes = [f"{counts[key]:,} CLD rows {what} left out" for key, what in LEFT_OUT.items() if counts.get(key)]
    if counts.get("resubmitted"):
        notes.append(
            f"{counts['resubmitted']:,} resubmitted CLD event rows removed (each event's latest return kept)"
        )
    if counts.get("duplicates"):
        notes.append(
            f"{counts['duplicates']:,} duplicate CLD event rows within one return removed "
            "(the open row kept, else the latest end date)"
        )
    if counts.get("not_modelled"):
        notes.append(
            f"{counts['not_modelled']:,} CLD services of a type the contract does not model "
            "(prison, carer support) kept with an empty service_type"
        )
    return notes


def adapt(frame: pd.DataFrame) -> SourceOutput:
    """CLD events (national field names, text) -> ``social_care_events``."""
    counts: dict[str, int] = {}
    person = frame[TRACED].fillna(frame[PERSON])
    frame = frame.assign(person_id=person)
    no_person = person.isna()
    counts["no_person"] = int(no_person.sum())
    frame = frame[~no_person.to_numpy()].reset_index(drop=True)
    ids = frame["person_id"]
    for name in (LA, PERIOD_END):
        require_values(SOURCE, frame, name, ids)
    la = frame[LA].str.strip().str.upper()
    bad_la = ~la.str.match(LA_CODE.pattern).fillna(False)
    if bad_la.any():
        raise ContractError(
            [
                raw_problem(
                    SOURCE, LA, "ONS local authority codes (E06, E08, E09 or E10 and six digits)", bad_la, ids
                )
            ],
            hint="CLD's LA_Code must be the ONS code of the social-services authority (e.g. E08000030); "
            "replace old three-digit CASSR codes with it.",
        )
    coverage: list[FieldCoverage] = []
    mapped: dict[str, pd.Series] = {}
    for cld_field, column in CODED.items():
        mapped[column], field_coverage = map_codes(
            SOURCE, cld_field, frame[cld_field], value_map(cld_field), CODELIST, "", normalise=normalise
        )
        coverage.append(field_coverage)
    no_event = frame["Event_Type"].isna()
    unknown_event = mapped["event_type"].isna() & ~no_event
    unknown_client = mapped["client_type"].isna()
    counts["no_event"] = int(no_event.sum())
    counts["unknown_event"] = int(unknown_event.sum())
    counts["unknown_client"] = int((unknown_client & ~no_event & ~unknown_event).sum())
    keep = (mapped["event_type"].notna() & mapped["client_type"].notna()).to_numpy()
    frame = frame[keep].reset_index(drop=True)
    mapped = {column: values[keep].reset_index(drop=True) for column, values in mapped.items()}
    ids = frame["person_id"]
    require_values(SOURCE, frame, "Event_Start_Date", ids)
    # Dates are checked on every row, before resubmissions are dropped.
    start = parse_dates(SOURCE, frame, "Event_Start_Date", ids)
    end = parse_dates(SOURCE, frame, "Event_End_Date", ids)
    period_end = parse_dates(SOURCE, frame, PERIOD_END, ids)
    frame = frame.assign(period_end=period_end)
    # Returns received, counted before each event's latest return is kept: a rolling return whose
    # events all reappear later is still a return received.
    returns = _returns_received(frame[LA].str.strip().str.upper(), period_end)
    service = (mapped["event_type"] == "service").fillna(False)
    key = pd.DataFrame(
        {
            "la": frame[LA].str.strip().str.upper().to_numpy(),
            "person": ids.to_numpy(),
            "event_type": mapped["event_type"].to_numpy(),
            "start": start.to_numpy(),
            "client_type": mapped["client_type"].to_numpy(),
            # Services are told apart by their raw type and component (two components that map to
            # one contract value, meals and transport, are still two services).
            "service_type": normalise(frame["Service_Type"]).where(service).fillna("").to_numpy(),
            "service_component": normalise(frame["Service_Component"]).where(service).fillna("").to_numpy(),
        }
    )
    frame = frame.assign(
        la_code=key["la"].to_numpy(),
        event_start_date=start,
        event_end_date=end,
        **{column: values for column, values in mapped.items()},
    )
    frame, counts["resubmitted"], counts["duplicates"] = _latest_submission(frame, key)
    for column in SERVICE_ONLY:
        frame[column] = frame[column].where(frame["event_type"] == "service")
    not_modelled = (frame["service_type"] == NOT_MODELLED).fillna(False)
    counts["not_modelled"] = int(not_modelled.sum())
    frame["service_type"] = frame["service_type"].mask(not_modelled)
    quarter = _quarter(frame["period_end"])
    events = pd.DataFrame(
        {
            "person_id": frame["person_id"].str.strip().astype("str"),
            "la_code": frame["la_code"].astype("str"),
            "reporting_period_start": quarter,
            "event_type": frame["event_type"].astype("str"),
            "event_start_date": frame["event_start_date"],
            "event_end_date": frame["event_end_date"],
            "client_type": frame["client_type"].astype("str"),
            **{
                column: frame[column].astype(object).where(frame[column].notna(), None)
                for column in SERVICE_ONLY
            },
            "primary_support_reason": frame["primary_support_reason"]
            .astype(object)
            .where(frame["primary_support_reason"].notna(), None),
            "accommodation_status": frame["accommodation_status"]
            .astype(object)
            .where(frame["accommodation_status"].notna(), None),
        }
    )
    events = events[list(CONTRACT["social_care_events"].column_names)]
    tables = {"social_care_events": events, RETURNS_TABLE: returns}
    return SourceOutput(tables, coverage, describe(counts, coverage), counts)


# -- the synthetic writer ----------------------------------------------------------------------------

NATIONAL: dict[str, dict[str, str]] = {
    "event_type": {
        "request": "Request",
        "assessment": "Assessment",
        "service": "Service",
        "review": "Review",
    },
    "client_type": {"service_user": "Service User", "carer": "Carer"},
    "service_type": {
        "long_term_nursing": "Long Term Support: Nursing Care",
        "long_term_residential": "Long Term Support: Residential Care",
        "long_term_community": "Long Term Support: Community",
        "short_term_reablement": "Short Term Support: ST-Max",
        "short_term_other": "Short Term Support: Other Short Term",
    },
    "service_component": {
        "home_care": "Home Support",
        "direct_payment": "Direct Payment",
        "supported_living": "Community Supported Living",
        "day_care": "Day Support",
        "residential": "Long Term Residential Care",
        "nursing": "Long Term Nursing Care",
        "reablement": "Reablement",
        "equipment": "Equipment",
        "respite": "Carer Respite",
        "other": "Other",
    },
    "primary_support_reason": {
        "physical_personal_care": "Physical Support: Personal care support",
        "physical_access_mobility": "Physical Support: Access & mobility only",
        "sensory": "Sensory Support: Support for visual impairment",
        "memory_cognition": "Support with Memory and Cognition",
        "learning_disability": "Learning Disability Support",
        "mental_health": "Mental Health Support",
        "social_support": "Social Support: Support for Social Isolation/Other",
        "not_known": "Unknown",
    },
    "accommodation_status": {
        "own_home": "Owner occupier or shared ownership scheme",
        "care_home": "Registered care home",
        "supported_accommodation": "Supported accommodation / supported lodgings / supported group home",
        "other": "Other temporary accommodation",
        "not_known": "Unknown",
    },
}
"""to_national: the specification's spelling written for each contract value."""
SHORT_TERM_COMPONENTS = {"residential": "Short Term Residential Care", "nursing": "Short Term Nursing Care"}
"""to_national: residential and nursing components of a short-term service."""
ODD_SPELLING_SHARE = 0.03
"""to_national: share of rows whose coded values come in another case and spacing."""
SAME_QUARTER_RESUBMITTED_SHARE = 0.03
"""to_national: share of rows also sent in an earlier load of the same quarter's return."""
EXTRA_SHARE = 0.01
"""to_national: extra rows the adapter leaves out (no NHS number, carers known by association, unknown type)."""
UNMAPPED_SHARE = 0.02
"""to_national: share of rows with no support reason or accommodation that carry an unknown value instead."""


def _quarter_end(start: pd.Series) -> pd.Series:
    return (start.dt.to_period("Q").dt.end_time).dt.normalize().astype("datetime64[s]")


def _iso(values: pd.Series) -> pd.Series:
    return pd.Series(pd.to_datetime(values).dt.strftime("%Y-%m-%d"), index=values.index, dtype="string")


def _national(events: pd.DataFrame, column: str) -> pd.Series:
    text = events[column].map(NATIONAL[column])
    if column == "service_component":
        short = events["service_type"].astype("string").str.startswith("short_term").fillna(False)
        text = text.where(~short, events[column].map(SHORT_TERM_COMPONENTS).fillna(text))
    return text.astype("string")


def to_national(tables: Mapping[str, pd.DataFrame], rng: np.random.Generator) -> pd.DataFrame:
    """``social_care_events`` as CLD rows, with the resubmissions and odd values real returns carry.

    Each event also comes in its LA's earlier returns that held it (rolling 12 months: up to
    three quarters before, from the quarter it began; an LA's quarter counts only if that LA
    has rows in it): those copies are open when the event ended after their period, and
    may carry an older support reason or accommodation. About 3% of rows come again in an
    earlier load of the same return; about 3% are written in another case and spacing.
    About 1% extra rows are left out by the adapter (no NHS number, carers known by
    association, an unknown event type), and rows with no support reason or accommodation
    sometimes carry a value the code list does not know. The round trip is exact.
    """
    events = tables["social_care_events"].reset_index(drop=True)
    n = len(events)
    quarter = pd.to_datetime(events["reporting_period_start"]).astype("datetime64[s]")
    start = pd.to_datetime(events["event_start_date"]).astype("datetime64[s]")
    end = pd.to_datetime(events["event_end_date"]).astype("datetime64[s]")
    person = events["person_id"].astype("string")
    # Tracing: the traced number is on most rows and wins; the LA's own number is sometimes empty
    # beside it, and on a few rows it is another person's (corrected by tracing).
    wrong_la = rng.random(n) < 0.01
    has_traced = (rng.random(n) < 0.9) | wrong_la
    la_number = person.mask(wrong_la, "LA" + person).mask(has_traced & ~wrong_la & (rng.random(n) < 0.2))
    base = pd.DataFrame(
        {
            LA: events["la_code"].astype("string"),
            "quarter": quarter,
            TRACED: person.where(has_traced),
            PERSON: la_number,
            "Client_Type": _national(events, "client_type"),
            "Event_Type": _national(events, "event_type"),
            "Event_Start_Date": start,
            "Event_End_Date": end,
            "Service_Type": _national(events, "service_type"),
            "Service_Component": _national(events, "service_component"),
            "Primary_Support_Reason": _national(events, "primary_support_reason"),
            "Accommodation_Status": _national(events, "accommodation_status"),
            "load": 1,
        }
    )
    odd = rng.random(n) < UNMAPPED_SHARE
    base["Primary_Support_Reason"] = base["Primary_Support_Reason"].mask(
        odd & base["Primary_Support_Reason"].isna().to_numpy(), "Physical"
    )
    base["Accommodation_Status"] = base["Accommodation_Status"].mask(
        odd & base["Accommodation_Status"].isna().to_numpy(), "Living at home"
    )
    # Earlier returns of the same LA that held the event (rolling 12 months).
    received = set(zip(base[LA].astype(str), base["quarter"], strict=True))
    copies = []
    for back in (1, 2, 3):
        earlier_q = (quarter.dt.to_period("Q") - back).dt.start_time.astype("datetime64[s]")
        held = (start <= _quarter_end(earlier_q)).to_numpy() & np.fromiter(
            ((la, q) in received for la, q in zip(base[LA].astype(str), earlier_q, strict=True)),
            dtype=bool,
            count=n,
        )
        copy = base[held].copy()
        copy["quarter"] = earlier_q[held]
        still_open = (copy["Event_End_Date"] > _quarter_end(copy["quarter"])).fillna(False)
        copy["Event_End_Date"] = copy["Event_End_Date"].mask(still_open)
        changed = rng.random(len(copy)) < 0.2
        copy["Accommodation_Status"] = copy["Accommodation_Status"].mask(changed, "Unknown")
        copies.append(copy)
    again = base[rng.random(n) < SAME_QUARTER_RESUBMITTED_SHARE].copy()
    again["load"] = 0
    again["Primary_Support_Reason"] = "Unknown"
    # Rows the adapter leaves out.
    extra = base.iloc[rng.choice(n, int(n * EXTRA_SHARE), replace=False) if n else []].copy()
    kind = rng.integers(0, 3, len(extra))
    extra.loc[kind == 0, [TRACED, PERSON]] = pd.NA
    extra.loc[kind == 1, "Client_Type"] = "Carer known by association"
    extra.loc[kind == 1, "Event_Type"] = pd.NA
    extra.loc[kind == 2, "Event_Type"] = "Contact"
    raw = pd.concat([*copies, again, base, extra], ignore_index=True)
    raw = raw.iloc[rng.permutation(len(raw))].reset_index(drop=True)
    shout = rng.random(len(raw)) < ODD_SPELLING_SHARE
    for column in ("Client_Type", "Event_Type", "Service_Type", "Primary_Support_Reason"):
        raw[column] = raw[column].mask(shout, raw[column].str.upper().str.replace(": ", " : ", regex=False))
    period_end = _quarter_end(raw["quarter"])
    imported = period_end + pd.to_timedelta(25 + 10 * raw["load"].to_numpy(), unit="D")
    return pd.DataFrame(
        {
            LA: raw[LA],
            "Reporting_Period_Start_Date": _iso(period_end - pd.DateOffset(years=1) + timedelta(days=1)),
            PERIOD_END: _iso(period_end),
            TRACED: raw[TRACED].astype("string"),
            PERSON: raw[PERSON].astype("string"),
            "Client_Type": raw["Client_Type"].astype("string"),
            "Event_Type": raw["Event_Type"].astype("string"),
            "Event_Start_Date": _iso(raw["Event_Start_Date"]),
            "Event_End_Date": _iso(raw["Event_End_Date"]),
            "Service_Type": raw["Service_Type"].astype("string"),
            "Service_Component": raw["Service_Component"].astype("string"),
            "Primary_Support_Reason": raw["Primary_Support_Reason"].astype("string"),
            "Accommodation_Status": raw["Accommodation_Status"].astype("string"),
            "ImportDate": pd.Series(imported.dt.strftime("%Y-%m-%d %H:%M:%S"), dtype="string"),
        }
    )


SOURCE = register_source(
    Source(
        name="cld",
        title="Adult Social Care Client Level Data (CLD)",
        file="asc_cld_events",
        fields=FIELDS,
        writes=("social_care_events", RETURNS_TABLE),
        adapt=adapt,
        to_national=to_national,
        # Exact by person: each event's latest return is chosen among one person's rows. Rows
        # without any ID share a batch, where they are counted and left out.
        batching=BY_PERSON,
        person=(TRACED, PERSON),
        describe=describe,
        merged={RETURNS_TABLE: _merged_returns},
    )
)
