"""What an MDT sees on each row of its list, and what each column means.

Rows are built from the selection (rank, risk, band), the reasons, the feature
matrix (age band, sex, frailty, long-term conditions, care home, A&E activity),
the extract for listed people only (dates of the last emergency admission and
A&E attendance, community services seen and, when the ICS supplies social care
data, the social care context: :func:`social_care_text`) and the change since
last week.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping
from datetime import date, timedelta

import numpy as np
import pandas as pd

from riskstrat.features.social_care import (
    CARER_CLIENT,
    REABLEMENT,
    RECENT_DAYS,
    REQUEST_EVENT_TYPES,
    SERVICE_EVENT,
    SERVICE_USER_CLIENT,
    YEAR_DAYS,
)
from riskstrat.features.status import COMMUNITY_DAYS, service_label
from riskstrat.frames import Column, FrameSchema, Kind
from riskstrat.ingest.contract import (
    COMMUNITY_SERVICE_CODES,
    LONG_TERM_SERVICE_TYPES,
)
from riskstrat.ingest.reference import STATED_GENDER_LABELS, conditions
from riskstrat.ingest.social_care import (
    ReturnsCoverage,
    local_authority_names,
    next_quarter,
    quarter_label,
    unreported_quarters,
)

FRAILTY_LABELS: tuple[str, ...] = ("Fit", "Mild", "Moderate", "Severe")
RECORDED_EFI = "recorded_efi"
"""The feature holding a practice-recorded eFI or eFI2 score, shown beside the computed eFI."""
COMMUNITY_SERVICES: tuple[str, ...] = COMMUNITY_SERVICE_CODES
MAX_CONDITION_NAMES = 4
"""Long-term conditions named on a row; more are summarised as "+N more"."""
GP_APPOINTMENTS = "gp_appointments_365d"
"""The feature behind the "GP appointments (12 months)" column (shown when the matrix has it)."""
LAST_DECISION = "Last MDT decision"
"""Heading of the column with the person's last coded MDT decision and the week it was recorded."""
SOCIAL_CARE = "Social care"
"""Heading of the column with the person's social care context (present when the ICS supplies social care data)."""
SOCIAL_CARE_RECENT_DAYS = RECENT_DAYS
"""Days to the data date in which an ended reablement, or a request or assessment, is shown (as the features)."""
SOCIAL_CARE_YEAR_DAYS = YEAR_DAYS
"""Days to the data date in which a carer's event counts."""
SUPPORT_WORDS: dict[str, str] = {
    "home_care": "home care",
    "direct_payment": "direct payment",
    "supported_living": "supported living",
    "day_care": "day care",
    "residential": "residential care",
    "nursing": "nursing care",
    "reablement": "reablement",
    "equipment": "equipment",
    "respite": "respite care",
    "other": "support",
}
"""Each service component (``SOCIAL_CARE_SERVICE_COMPONENTS``) in plain words."""
LONG_TERM_WORDS: dict[str, str] = {
    "long_term_residential": "residential care",
    "long_term_nursing": "nursing care",
    "long_term_community": "support at home",
}
"""Each long-term service type in plain words, used when the service component is not given."""


COLUMN_NOTES: dict[str, str] = {
    "Rank": "Place on this MDT's list this week, 1 = highest predicted risk. Ties: see the intended use.",
    "Person ID": "Pseudonymised ID, the same in every extract; the re-identification key links it.",
    "NHS number": "Added from the re-identification key; present only when the ICS has configured one.",
    "Practice": "ODS code of the GP practice the person is registered with.",
    "Risk (%)": "Predicted chance of the outcome that ranks this list in the next 12 months, in per cent.",
    "Risk band": "The person's risk band; each band is defined under 'Risk bands' on this sheet.",
    "Reason": (
        "The factors that raise this person's predicted risk most, with their own values, most first "
        "(worked out from the model for this person). Counts of GP appointments and community "
        "contacts raise almost everyone's risk on this list, and a count of zero is nothing to act "
        "on, so these are given as a reason only when fewer than three other factors raise it."
    ),
    "Age band": "Age band at the data date.",
    "Sex": (
        "Sex or gender as recorded by the practice "
        "(NHS person stated gender code: male, female, not stated, not known)."
    ),
    "Frailty": (
        "eFI computed by riskstrat from the coded deficits in the GP record (electronic frailty index, "
        "36 deficits): fit <= 0.12, mild <= 0.24, moderate <= 0.36, severe above; the score. Where the "
        "practice has recorded its own eFI or eFI2 score in the last 2 years, it follows as 'practice score'."
    ),
    "Long-term conditions": "Number of long-term conditions recorded.",
    "Main long-term conditions": "Names of the long-term conditions recorded (up to four, then '+N more').",
    "Care home": "Yes if a care-home residence code is recorded.",
    "Last emergency admission": "Date of the latest emergency hospital admission up to the data date.",
    "Last A&E attendance": "Date of the most recent A&E attendance up to the data date.",
    "A&E attendances (12 months)": "A&E attendances in the 12 months to the data date.",
    "GP appointments (12 months)": "GP appointments attended (not missed) in the 12 months to the data date.",
    "Community services (90 days)": (
        "Community services seen in the 90 days to the data date, with the number of contacts. "
        f"Every community service counts: {', '.join(service_label(s).lower() for s in COMMUNITY_SERVICES)}."
    ),
    SOCIAL_CARE: (
        "From the local authorities' quarterly Adult Social Care Client Level Data returns (see 'Social "
        "care data' on this sheet): long-term support in place at the data date (home care, direct "
        "payment, residential or nursing care, ...) and since when; reablement in progress, or ended in "
        f"the {SOCIAL_CARE_RECENT_DAYS} days to the data date, with the date; the latest request for "
        f"support or assessment in those {SOCIAL_CARE_RECENT_DAYS} days; 'is an unpaid carer' when the "
        "local authority supported the person as a carer in the last 12 months. 'Not known' first when "
        "the latest return due from the person's local authority (from where they live) has not been "
        "received (each return covers the 12 months to its quarter's end, so an older missing one is "
        "covered by a later return): anything after it comes from the returns that have. Blank: no "
        "current social care record. The column is left out when the ICS supplies no social care data."
    ),
    "On caseload": "Team whose virtual-ward / proactive-care caseload the person is already on.",
    "Change since last week": (
        "new (not on last week's list; everyone is new on an MDT's first list), "
        "up / down (risk higher / lower as shown), same."
    ),
    "Weeks on list": "Consecutive weekly lists, including this one, that have held the person.",
    LAST_DECISION: (
        "The MDT's last coded decision about the person on an earlier list, with the week of that "
        "list; blank when none was recorded."
    ),
}
"""Every column of the list and what it means (the second sheet of the XLSX)."""


def reason_columns(count: int) -> list[str]:
    """Headings of the reason columns: Reason 1 .. Reason <count>."""
    return [f"Reason {i}" for i in range(1, count + 1)]


WORKLIST_ROWS = FrameSchema(
    name="worklist rows",
    columns=(
        Column("Rank", Kind.INTEGER),
        Column("Person ID", Kind.TEXT),
        Column("NHS number", Kind.TEXT, required=False),
        Column("Practice", Kind.TEXT),
        Column("Risk (%)", Kind.NUMBER),
        Column("Risk band", Kind.TEXT),
        Column("Age band", Kind.TEXT),
        Column("Sex", Kind.TEXT),
        Column("Frailty", Kind.TEXT),
        Column("Long-term conditions", Kind.INTEGER),
        Column("Main long-term conditions", Kind.TEXT),
        Column("Care home", Kind.TEXT),
        Column("Last emergency admission", Kind.DATE, nullable=True),
        Column("Last A&E attendance", Kind.DATE, nullable=True),
        Column("A&E attendances (12 months)", Kind.INTEGER),
        Column("GP appointments (12 months)", Kind.INTEGER, required=False),
        Column("Community services (90 days)", Kind.TEXT),
        Column(SOCIAL_CARE, Kind.TEXT, required=False),
        Column("On caseload", Kind.TEXT, required=False),
        Column("Change since last week", Kind.TEXT),
        Column("Weeks on list", Kind.INTEGER),
        Column(LAST_DECISION, Kind.TEXT),
    ),
    key=("Person ID",),
    extra_columns=False,
    person_column="Person ID",
    hint="Build the rows with riskstrat.worklists.rows.build_rows; every column is explained in COLUMN_NOTES.",
)
"""One MDT's list as the MDT sees it; add the ``Reason 1`` .. ``Reason <n>`` text columns with
:meth:`FrameSchema.with_columns` (no other column may come along)."""


def worklist_rows_schema(reason_count: int) -> FrameSchema:
    """:data:`WORKLIST_ROWS` with its ``Reason 1`` .. ``Reason <n>`` text columns (nothing else may come along)."""
    return WORKLIST_ROWS.with_columns(
        *(Column(heading, Kind.TEXT) for heading in reason_columns(reason_count))
    )


def column_note(column: str) -> str:
    """The explanation of a column (reason columns share one)."""
    return COLUMN_NOTES["Reason"] if column.startswith("Reason ") else COLUMN_NOTES[column]


def worklist_context(
    context_at: pd.DataFrame, person_ids: Collection[str], social_care: pd.Series | None = None
) -> pd.DataFrame:
    """The listed people's context as the rows use it, from the computed context at the data date.

    Args:
        context_at: :func:`riskstrat.features.status.listed_context_at` of (at least)
            the listed people, run on the feature backend and brought to the driver.
        person_ids: The listed people (repeats are shown once, in first-listed order).
        social_care: :func:`social_care_text` of the listed people, when the ICS supplies
            social care data (None: the rows have no "Social care" column).

    Returns:
        Index ``person_id``: ``last_emergency_admission``, ``last_ae_attendance`` (dates or NaT),
        when ``context_at`` has it, ``community_services`` (text) and, when given, ``social_care``.
    """
    ids = pd.Index(list(dict.fromkeys(str(p) for p in person_ids)), dtype=object, name="person_id")
    context = context_at.assign(person_id=context_at["person_id"].astype(str)).set_index("person_id")
    context = context.reindex(ids)
    out = pd.DataFrame(index=ids)
    for column in ("last_emergency_admission", "last_ae_attendance"):
        out[column] = pd.to_datetime(context[column]).dt.date
    if "community_services" in context:
        out["community_services"] = context["community_services"].astype("object")
    if social_care is not None:
        out["social_care"] = social_care.reindex(ids).fillna("").astype("object")
    return out


def _number(frame: pd.DataFrame, column: str, default: float = 0) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(default, index=frame.index, dtype="float64")
    return pd.to_numeric(frame[column], errors="coerce").fillna(default)


def frailty_label(
    category: pd.Series, score: pd.Series | None, recorded: pd.Series | None = None
) -> pd.Series:
    """'Severe (eFI 0.361)' style frailty labels from the eFI category and score.

    The score has three decimals: 13 of 36 deficits (0.361) is severe frailty, but at two
    decimals it would read 0.36, the upper bound of moderate. The category and score are
    the eFI riskstrat computes from coded deficits; a score the practice recorded itself
    (``recorded``: the ``recorded_efi`` feature, when the GP data carry one) follows as
    "practice score 0.28", so the team sees which measure is which.
    """
    labels = category.map(lambda c: FRAILTY_LABELS[int(c)] if pd.notna(c) else "")
    if score is None:
        return labels
    shown = [
        f"{lab} (eFI {s:.3f})" if lab and pd.notna(s) else lab for lab, s in zip(labels, score, strict=True)
    ]
    if recorded is not None:
        shown = [
            f"{text}; practice score {r:.2f}" if text and pd.notna(r) else text
            for text, r in zip(shown, recorded, strict=True)
        ]
    return pd.Series(shown, index=category.index)


def condition_names(features: pd.DataFrame) -> pd.Series:
    """Names of each person's long-term conditions, in the reference order, up to four then '+N more'."""
    vocabulary = conditions()
    ltcs = vocabulary.loc[vocabulary["is_ltc"].astype(str).str.lower() == "true", ["condition", "label"]]
    present = [(f"ltc_{c}", label) for c, label in zip(ltcs["condition"], ltcs["label"], strict=True)]
    present = [(col, label) for col, label in present if col in features.columns]
    names = []
    for _, row in features[[c for c, _ in present]].iterrows():
        held = [label for col, label in present if pd.notna(row[col]) and row[col] > 0]
        extra = len(held) - MAX_CONDITION_NAMES
        text = ", ".join(held[:MAX_CONDITION_NAMES])
        names.append(f"{text} +{extra} more" if extra > 0 else text)
    return pd.Series(names, index=features.index, dtype="object")


def community_services(features: pd.DataFrame, days: int = COMMUNITY_DAYS) -> pd.Series:
    """Community services seen in the last ``days`` days with their contact counts, from the features.

    The fallback when the extract's ``community_contacts`` table is not at hand: the
    feature matrix counts only some services on their own (not virtual ward or therapy).
    """
    columns = [
        (s, f"community_{s}_{days}d") for s in COMMUNITY_SERVICES if f"community_{s}_{days}d" in features
    ]
    out = []
    for _, row in features[[c for _, c in columns]].iterrows():
        seen = [
            f"{service_label(service)} ({int(row[c])})"
            for service, c in columns
            if pd.notna(row[c]) and row[c] > 0
        ]
        out.append(", ".join(seen))
    return pd.Series(out, index=features.index, dtype="object")


def possessive(name: str) -> str:
    """The possessive of a place name: Walsall's, St Helens'."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def local_authority_short_name(code: str) -> str:
    """A local authority's name alone (Walsall), or its ONS code when the name is not shipped."""
    return local_authority_names().get(code, code)


def missing_quarters(returns: ReturnsCoverage, local_authority: str) -> list[date]:
    """The quarters (starts) whose return from ``local_authority`` was due and not received, oldest first."""
    return sorted(q for la, q in returns.missing if la == local_authority)


def returns_not_received(local_authority: str | None, returns: ReturnsCoverage, as_of: date) -> str:
    """The note that a person's social care is not known, e.g. Not known: Walsall's return for Apr-Jun 2026 not received.

    The features' rule (:func:`riskstrat.ingest.social_care.known_local_authorities`): known
    when the authority's return for the latest quarter due by ``as_of`` was received. Returns
    are rolling 12 months, so an older missing quarter is covered by a later return and is
    left to "About this list".

    Args:
        local_authority: The person's local authority (ONS code); None or blank: not known, no note.
        returns: The returns received (:func:`riskstrat.ingest.social_care.social_care_returns`);
            a local authority it does not cover sends none: "Not known: no return from <name> received".
        as_of: The data date.

    Returns:
        The note naming the quarters no received return covers, or "" when care is known.
    """
    if local_authority is None or pd.isna(local_authority) or not str(local_authority):
        return ""
    code = str(local_authority)
    name = local_authority_short_name(code)
    if code not in returns.latest:
        return f"Not known: no return from {name} received"
    quarters = unreported_quarters(returns, code, as_of)
    if not quarters:
        return ""
    labels = [quarter_label(q) for q in quarters]
    if len(labels) > 2 and all(next_quarter(a) == b for a, b in itertools.pairwise(quarters)):
        listed = f"{labels[0]} to {labels[-1]}"  # a run of quarters, kept short for print
    else:
        listed = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
    plural = "return" if len(labels) == 1 else "returns"
    return f"Not known: {possessive(name)} {plural} for {listed} not received"


def _day(value: pd.Timestamp) -> str:
    """'3 Oct': a date in the last 90 days (the year goes without saying)."""
    return f"{value.day} {value:%b}"


def _continuous_since(spans: pd.DataFrame, as_of: pd.Timestamp) -> pd.Timestamp | None:
    """Start of the unbroken run of ``spans`` (start, end) that is in place at ``as_of``; None if none.

    Successive service events (a package reviewed and re-issued) join up when one starts by
    the day after the last ended, so "since" is when the support began, not its latest review.
    """
    begin: pd.Timestamp | None = None
    until = pd.Timestamp.min
    for start, end in sorted(zip(spans["start"], spans["end"], strict=True), key=lambda span: span[0]):
        end = pd.Timestamp.max if pd.isna(end) else end
        if begin is None or start > until + pd.Timedelta(days=1):
            begin, until = start, end
        else:
            until = max(until, end)
    return begin if begin is not None and until > as_of else None


def social_care_facts(events: pd.DataFrame, as_of: date) -> list[str]:
    """What one person's social care events say at ``as_of``, in plain words (most lasting first).

    Args:
        events: The person's events: ``event_type``, ``client_type``, ``service_type``,
            ``service_component`` and ``start`` / ``end`` Timestamps (``end`` NaT: open),
            none starting after ``as_of``.
        as_of: The data date. A service is in place at it when it ends after it.

    Returns:
        Phrases such as "long-term home care since Mar 2025", "reablement ended 12 Nov",
        "assessment 3 Oct", "is an unpaid carer"; empty when nothing is current.
    """
    t = pd.Timestamp(as_of)
    recent = t - pd.Timedelta(days=SOCIAL_CARE_RECENT_DAYS)
    facts: list[str] = []
    services = events[events["event_type"] == SERVICE_EVENT]
    long_term = services[services["service_type"].isin(LONG_TERM_SERVICE_TYPES)]
    kinds = long_term["service_component"].map(SUPPORT_WORDS)
    kinds = kinds.fillna(long_term["service_type"].map(LONG_TERM_WORDS))
    current = {
        kind: since
        for kind, spans in long_term.groupby(kinds, sort=True)
        if (since := _continuous_since(spans, t)) is not None
    }
    if current:
        ordered = sorted(current.items(), key=lambda kind_since: (kind_since[1], kind_since[0]))
        facts.append("long-term " + ", ".join(f"{kind} since {since:%b %Y}" for kind, since in ordered))
    reablement = services[services["service_type"] == REABLEMENT]
    ongoing = reablement[
        (reablement["end"].isna() | (reablement["end"] > t)) & (reablement["start"] > recent)
    ]
    ended = reablement["end"][(reablement["end"] > recent) & (reablement["end"] <= t)]
    if len(ongoing):
        facts.append(f"in reablement since {_day(ongoing['start'].min())}")
    elif len(ended):
        facts.append(f"reablement ended {_day(ended.max())}")
    asks = events[
        events["event_type"].isin(REQUEST_EVENT_TYPES)
        & (events["client_type"] == SERVICE_USER_CLIENT)
        & (events["start"] > recent)
    ]
    if len(asks):
        # The latest; an assessment the same day as its request is the further step.
        latest = (
            asks.assign(_step=asks["event_type"] == "assessment").sort_values(["start", "_step"]).iloc[-1]
        )
        what = "assessment" if latest["event_type"] == "assessment" else "request for support"
        facts.append(f"{what} {_day(latest['start'])}")
    year_ago = t - pd.Timedelta(days=SOCIAL_CARE_YEAR_DAYS)
    carer = events[
        (events["client_type"] == CARER_CLIENT) & (events["end"].isna() | (events["end"] > year_ago))
    ]
    if len(carer):
        facts.append("is an unpaid carer")
    return facts


def social_care_text(
    events: pd.DataFrame,
    person_ids: Collection[str],
    as_of: date,
    local_authorities: Mapping[str, str] | pd.Series | None = None,
    returns: ReturnsCoverage | None = None,
) -> pd.Series:
    """The "Social care" cell of each listed person, e.g. "Long-term home care since Mar 2025; is an unpaid carer".

    Args:
        events: ``social_care_events`` rows of (at least) the listed people, as the
            contract gives them (read for the listed people only); later events are ignored.
        person_ids: The listed people (repeats are shown once, in first-listed order).
        as_of: The data date.
        local_authorities: person_id -> ONS code of the local authority where they live
            (None: no "Not known" notes).
        returns: The local authorities' returns (:func:`returns_not_received`; None: no
            "Not known" notes).

    Returns:
        Text indexed by ``person_id``: "Not known: ..." first when the person's local
        authority's return for a due quarter in the last 12 months was not received, then
        :func:`social_care_facts`, joined by "; "; "" when there is nothing to say.
    """
    ids = pd.Index(list(dict.fromkeys(str(p) for p in person_ids)), dtype=object, name="person_id")
    frame = pd.DataFrame(
        {
            "person_id": events["person_id"].astype(str),
            "event_type": events["event_type"],
            "client_type": events["client_type"],
            "service_type": events.get("service_type"),
            "service_component": events.get("service_component"),
            "start": pd.to_datetime(events["event_start_date"]),
            "end": pd.to_datetime(events.get("event_end_date")),
        }
    )
    frame = frame[frame["person_id"].isin(ids) & (frame["start"] <= pd.Timestamp(as_of))]
    by_person = dict(tuple(frame.groupby("person_id", sort=False)))
    places = local_authorities if local_authorities is not None else {}
    texts = []
    for person in ids:
        parts = []
        if returns is not None and local_authorities is not None:
            parts.append(returns_not_received(places.get(person), returns, as_of))
        if person in by_person:
            parts += social_care_facts(by_person[person], as_of)
        text = "; ".join(part for part in parts if part)
        texts.append(text[:1].upper() + text[1:])
    return pd.Series(texts, index=ids, dtype="object", name="social_care")


def last_decision_text(decision: object, week: object) -> str:
    """'Not appropriate now (05/01/2026)': a decision's wording and its list's week; blank when none."""
    if decision is None or pd.isna(decision) or not str(decision):
        return ""
    if week is None or pd.isna(week):
        return str(decision)
    return f"{decision} ({pd.Timestamp(week):%d/%m/%Y})"


def build_rows(
    listed: pd.DataFrame,
    features: pd.DataFrame,
    reasons: pd.DataFrame,
    change: pd.DataFrame,
    context: pd.DataFrame | None,
    as_of: date,
    reasons_count: int = 3,
    flag_caseload: bool = False,
) -> pd.DataFrame:
    """One MDT's rows, in rank order, with the headings the MDT sees.

    Args:
        listed: The MDT's selection (rank, person_id, practice_code, probability, risk_band, caseload_team
            and, when decisions have come back, last_decision and last_decision_date).
        features: Feature matrix rows of (at least) the listed people.
        reasons: :func:`riskstrat.worklists.reasons.top_reasons` for (at least) the listed people.
        change: :func:`riskstrat.worklists.history.change_since_last_week` for the list.
        context: :func:`worklist_context` (None: the last A&E date is taken from
            ``days_since_last_ae`` and the last emergency admission is left blank;
            without its ``community_services`` they come from the features; with its
            ``social_care`` the rows have the "Social care" column).
        as_of: The data date.
        reasons_count: Reason columns.
        flag_caseload: Add the "On caseload" column.

    Returns:
        The rows; dates are ``datetime.date`` (or None), risk is per cent to 1 dp.
    """
    ids = listed["person_id"].astype(str)
    feats = features.assign(person_id=features["person_id"].astype(str)).set_index("person_id").reindex(ids)
    why = reasons.reindex(ids)
    moved = change.reindex(ids)
    rows = pd.DataFrame(index=ids)
    rows["Rank"] = listed["rank"].astype("int64").to_numpy()
    rows["Person ID"] = ids.to_numpy()
    rows["Practice"] = listed["practice_code"].astype(str).to_numpy()
    rows["Risk (%)"] = np.round(listed["probability"].astype(float).to_numpy() * 100, 1)
    rows["Risk band"] = listed["risk_band"].astype(str).to_numpy()
    for i, heading in enumerate(reason_columns(reasons_count), start=1):
        column = f"reason_{i}"
        rows[heading] = why[column].fillna("").astype(str) if column in why else ""
    if "age_band" in feats:
        rows["Age band"] = feats["age_band"].astype("object").where(feats["age_band"].notna(), "")
    else:
        rows["Age band"] = ""
    sex = feats["sex"].astype("object") if "sex" in feats else pd.Series("", index=ids, dtype="object")
    rows["Sex"] = sex.map(lambda s: STATED_GENDER_LABELS.get(str(s), str(s)) if pd.notna(s) else "")
    rows["Frailty"] = (
        frailty_label(feats["efi_category"], feats.get("efi_score"), feats.get(RECORDED_EFI))
        if "efi_category" in feats
        else ""
    )
    rows["Long-term conditions"] = _number(feats, "ltc_count").astype("int64")
    rows["Main long-term conditions"] = condition_names(feats)
    rows["Care home"] = np.where(_number(feats, "care_home") > 0, "Yes", "No")
    if context is not None:
        ctx = context.reindex(ids)
        rows["Last emergency admission"] = ctx["last_emergency_admission"].astype("object")
        rows["Last A&E attendance"] = ctx["last_ae_attendance"].astype("object")
    else:
        days = _number(feats, "days_since_last_ae", np.nan)
        rows["Last emergency admission"] = None
        rows["Last A&E attendance"] = [None if pd.isna(d) else as_of - timedelta(days=int(d)) for d in days]
    for column in ("Last emergency admission", "Last A&E attendance"):
        rows[column] = [None if pd.isna(v) else v for v in rows[column]]
    rows["A&E attendances (12 months)"] = _number(feats, "ae_attendances_365d").astype("int64")
    if GP_APPOINTMENTS in feats:
        rows["GP appointments (12 months)"] = _number(feats, GP_APPOINTMENTS).astype("int64")
    if context is not None and "community_services" in context:
        seen = context["community_services"].reindex(ids)
        rows["Community services (90 days)"] = seen.fillna("").astype(str).to_numpy()
    else:
        rows["Community services (90 days)"] = community_services(feats, COMMUNITY_DAYS)
    if context is not None and "social_care" in context:
        # Only when the ICS supplies social care data: without it the column is left out, not blank.
        rows[SOCIAL_CARE] = context["social_care"].reindex(ids).fillna("").astype(str).to_numpy()
    if flag_caseload:
        team = listed["caseload_team"] if "caseload_team" in listed else pd.Series(pd.NA, index=listed.index)
        rows["On caseload"] = [str(t) if pd.notna(t) else "" for t in team]
    rows["Change since last week"] = moved["change"].fillna("new").astype(str)
    rows["Weeks on list"] = moved["weeks_on_list"].fillna(1).astype("int64")
    decided = listed.get("last_decision", pd.Series(None, index=listed.index, dtype="object"))
    when = listed.get("last_decision_date", pd.Series(None, index=listed.index, dtype="object"))
    rows[LAST_DECISION] = [last_decision_text(d, w) for d, w in zip(decided, when, strict=True)]
    return rows.reset_index(drop=True)
