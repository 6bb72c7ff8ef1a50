"""Adult social care returns: quarters, local authorities, and which returns are missing.

Every local authority (LA) sends its Adult Social Care Client Level Data (CLD)
return to NHS England each quarter. A quarter whose return has not arrived is
not "no social care": features, the MDT row and the audit must read it as not
known. This module is the one home of that idea, as pure functions over
pandas that any later layer can import:

- :func:`quarter_start`, :func:`quarter_end`, :func:`expected_quarters`,
  :func:`quarter_label`: financial quarters (1 Apr, 1 Jul, 1 Oct, 1 Jan) and
  when a quarter's return is due (:data:`SOCIAL_CARE_RETURN_DUE_DAYS` after it ends).
- :func:`local_authority_of_lsoa`, :func:`expected_local_authorities`: the
  social-services authority of each LSOA (LAD 2019 code from the shipped IMD
  2019 file; two-tier shire districts, E07, through ``county_of_district``).
- :func:`social_care_returns`: one row per (LA, quarter) with the rows of that
  quarter's return, whether it was received and
  due, the missing LA-quarters and the latest quarter received per LA.
- :func:`data_cutoff`, :func:`known_local_authorities`, :func:`unreported_quarters`:
  the point-in-time rule. At an as-of date T the social care record is read as of
  the end of the latest quarter whose return is due by T (in training and scoring
  alike), and a person's social care is known when their LA's return for that
  quarter was received. Returns are rolling 12 months, so an older missing quarter
  is covered by any later return and does not make care unknown.

A return is "received" when the optional ``social_care_returns`` table lists it: the
CLD adapter records every (LA, quarter) return BEFORE it keeps each event's latest
submission, because LAs send rolling 12-month returns and a received return whose
events all reappear in a later one keeps no rows in ``social_care_events``. An extract
supplied in contract format without ``social_care_returns`` falls back to inferring
the returns from ``social_care_events`` (a quarter with rows there was received), which
can read such a return as missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache

import pandas as pd

from riskstrat.ingest.contract import SOCIAL_CARE_RETURN_DUE_DAYS
from riskstrat.ingest.reference import imd_lookup

RETURNS_TABLE = "social_care_returns"
"""The optional contract table of returns received (la_code, reporting_period_start, rows)."""
LA_CODE_PATTERN = r"^E(06|08|09|10)[0-9]{6}$"
"""ONS code of a social-services authority (the ``la_code`` of a CLD return)."""
DISTRICT_CODE_PATTERN = r"^E07[0-9]{6}$"
"""ONS code of a two-tier shire district: only ever a key of ``county_of_district``."""

MIN_SHARE_OF_PEOPLE = 0.01
"""An LA is expected to send returns when at least this share of registered people live in it."""
SOCIAL_SERVICES_PREFIXES: tuple[str, ...] = ("E06", "E08", "E09", "E10")
"""ONS code prefixes of social-services authorities: unitaries, metropolitan districts, London
boroughs (and the City of London) and shire counties."""
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def quarter_start(d: date) -> date:
    """The first day of the quarter holding ``d`` (1 Jan, 1 Apr, 1 Jul or 1 Oct)."""
    d = pd.Timestamp(d).date()
    return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


def next_quarter(start: date) -> date:
    """The first day of the quarter after the one starting ``start``."""
    start = quarter_start(start)
    return date(start.year + 1, 1, 1) if start.month == 10 else date(start.year, start.month + 3, 1)


def quarter_end(start: date) -> date:
    """The last day of the quarter holding ``start``."""
    return next_quarter(start) - timedelta(days=1)


def return_due(start: date) -> date:
    """The day the quarter's return is expected by (:data:`SOCIAL_CARE_RETURN_DUE_DAYS` after it ends)."""
    return quarter_end(start) + timedelta(days=SOCIAL_CARE_RETURN_DUE_DAYS)


def previous_quarter(start: date) -> date:
    """The first day of the quarter before the one holding ``start``."""
    return quarter_start(quarter_start(start) - timedelta(days=1))


def data_cutoff(as_of: date) -> date:
    """The last day of the latest quarter whose return is due by ``as_of``: the social care "as of" date.

    Every social care feature at ``as_of`` is computed as of this day, in training and
    scoring alike, so a past as-of date never sees a return that arrived after it and
    the scoring date is never short of the returns not yet due.
    """
    quarter = quarter_start(as_of)
    while return_due(quarter) > as_of:
        quarter = previous_quarter(quarter)
    return quarter_end(quarter)


def quarter_label(start: date) -> str:
    """The quarter for people: ``Apr-Jun 2026``."""
    start = quarter_start(start)
    return f"{_MONTHS[start.month - 1]}-{_MONTHS[start.month + 1]} {start.year}"


def expected_quarters(first: date, data_date: date) -> list[date]:
    """Quarter starts from ``first``'s quarter to the last quarter whose return is due by ``data_date``.

    A quarter is due when its end plus :data:`SOCIAL_CARE_RETURN_DUE_DAYS` is on or
    before ``data_date``; a quarter not yet due is never missing.
    """
    quarters = []
    quarter = quarter_start(first)
    while return_due(quarter) <= data_date:
        quarters.append(quarter)
        quarter = next_quarter(quarter)
    return quarters


@cache
def _lad_of_lsoa() -> dict[str, str]:
    lookup = imd_lookup()
    return dict(zip(lookup["lsoa_code"], lookup["lad_code"], strict=True))


@cache
def local_authority_names() -> dict[str, str]:
    """LAD 2019 code -> name, from the shipped IMD 2019 file (counties, E10, are not in it)."""
    lookup = imd_lookup().drop_duplicates("lad_code")
    return dict(zip(lookup["lad_code"], lookup["lad_name"], strict=True))


def local_authority_name(code: str) -> str:
    """The LA for people: ``Walsall (E08000030)``, or the code alone when the name is not shipped."""
    name = local_authority_names().get(code)
    return f"{name} ({code})" if name else code


def local_authority_of_lsoa(
    lsoa_codes: Iterable[str], county_of_district: Mapping[str, str] | None = None
) -> pd.Series:
    """The social-services authority of each LSOA 2011 code: its LAD 2019 code from the IMD 2019 file.

    For metropolitan districts, unitaries and London boroughs (E08, E06, E09) that is the
    authority that sends the CLD return. A two-tier shire district (E07) becomes its county
    (E10) only through ``county_of_district`` (``social_care.county_of_district`` in
    ``configs/sources.yaml``); without an entry it stays the district code.

    Returns:
        One code per input, in order (missing where the LSOA is not in the lookup).
    """
    codes = pd.Series(list(lsoa_codes), dtype="string")
    lad = codes.map(_lad_of_lsoa()).astype("string")
    if county_of_district:
        lad = lad.map(lambda code: county_of_district.get(code, code) if pd.notna(code) else code)
    return lad.astype("string")


def expected_local_authorities(
    lsoa_codes: Iterable[str],
    county_of_district: Mapping[str, str] | None = None,
    min_share: float = MIN_SHARE_OF_PEOPLE,
) -> list[str]:
    """The LAs expected to send returns: those where at least ``min_share`` of the people live.

    Args:
        lsoa_codes: One LSOA per registered person.
        county_of_district: Two-tier areas: district (E07) -> county (E10).
        min_share: Share of people an LA must hold.

    Returns:
        LA codes, most people first.
    """
    las = local_authority_of_lsoa(lsoa_codes, county_of_district).dropna()
    if las.empty:
        return []
    shares = las.value_counts(normalize=True)
    return [str(code) for code, share in shares.items() if share >= min_share]


RETURNS_COLUMNS: tuple[str, ...] = ("la_code", "quarter_start", "rows", "received", "due")


@dataclass
class ReturnsCoverage:
    """Which CLD returns arrived: one row per (LA, quarter).

    Attributes:
        frame: Columns ``la_code``, ``quarter_start`` (date), ``rows`` (the return's rows from
            ``social_care_returns``, else the events whose latest submission came in it),
            ``received`` (listed in ``social_care_returns``, else holding events) and ``due`` (the
            return was due by the data date), by LA then quarter.
        data_date: The date returns were due by.
        missing: Due quarters with no return, as (la_code, quarter_start).
        latest: LA -> the latest quarter received (None if none).
    """

    frame: pd.DataFrame
    data_date: date
    missing: list[tuple[str, date]] = field(default_factory=list)
    latest: dict[str, date | None] = field(default_factory=dict)

    @property
    def local_authorities(self) -> list[str]:
        """Every LA in the coverage, in order."""
        return list(dict.fromkeys(self.frame["la_code"]))

    def missing_lines(self) -> list[str]:
        """One line per missing LA-quarter: ``Walsall (E08000030): Apr-Jun 2026 (due 29 Aug 2026)``."""
        return [
            f"{local_authority_name(la)}: {quarter_label(q)} (due {return_due(q).day} {return_due(q):%b %Y})"
            for la, q in self.missing
        ]

    def headline(self) -> str:
        """One line for summaries: LAs, due quarters received, and the missing ones."""
        due = self.frame[self.frame["due"]]
        n_las = len(self.local_authorities)
        text = (
            f"social care returns: {n_las} local authorit{'y' if n_las == 1 else 'ies'}, "
            f"{int(due['received'].sum())} of {len(due)} due LA-quarters received"
        )
        if self.missing:
            shown = "; ".join(self.missing_lines()[:3])
            more = f" and {len(self.missing) - 3} more" if len(self.missing) > 3 else ""
            text += f"; missing: {shown}{more}"
        return text

    def to_dict(self) -> dict:
        """JSON-ready form (counts per LA and quarter only, never a person)."""
        return {
            "data_date": self.data_date.isoformat(),
            "headline": self.headline(),
            "missing": [{"la_code": la, "quarter_start": q.isoformat()} for la, q in self.missing],
            "latest": {la: q.isoformat() if q else None for la, q in self.latest.items()},
            "returns": [
                {
                    "la_code": r.la_code,
                    "quarter_start": r.quarter_start.isoformat(),
                    "rows": int(r.rows),
                    "received": bool(r.received),
                    "due": bool(r.due),
                }
                for r in self.frame.itertuples(index=False)
            ],
        }


def social_care_returns(
    events: pd.DataFrame,
    expected_las: Sequence[str],
    data_date: date,
    first: date | None = None,
) -> ReturnsCoverage:
    """Which LA-quarters' CLD returns are in ``social_care_events``, and which are missing.

    Args:
        events: ``social_care_returns`` (``la_code``, ``reporting_period_start``, ``rows``) when
            the extract has it, else ``social_care_events`` (at least ``la_code`` and
            ``reporting_period_start``; each row counts one, see the module note).
        expected_las: LAs that should send returns (the setting, or
            :func:`expected_local_authorities`); LAs found in the data are added.
        data_date: The date returns must be due by to count as missing.
        first: The first quarter expected (None: the earliest quarter in the data, else
            the last quarter due).

    Returns:
        The coverage: every LA by every quarter from ``first`` (due quarters, plus any
        later quarter already received).
    """
    quarters_found = pd.to_datetime(events["reporting_period_start"]).dt.date.map(quarter_start)
    # The returns table counts each return's rows; events are counted one per row.
    weights = events["rows"].to_numpy() if "rows" in events.columns else 1
    counts = (
        pd.DataFrame(
            {
                "la_code": events["la_code"].astype(str).to_numpy(),
                "quarter_start": quarters_found,
                "rows": weights,
            }
        )
        .groupby(["la_code", "quarter_start"])["rows"]
        .sum()
    )
    if first is None:
        due = expected_quarters(date(2000, 1, 1), data_date)
        first = min(quarters_found) if len(quarters_found) else (due[-1] if due else quarter_start(data_date))
    first = quarter_start(first)
    quarters = expected_quarters(first, data_date)
    received_later = sorted({q for q in quarters_found if q >= first and q not in quarters})
    quarters = sorted({*quarters, *received_later})
    las = list(dict.fromkeys([*map(str, expected_las), *sorted(counts.index.get_level_values(0).unique())]))
    rows = []
    for la in las:
        for quarter in quarters:
            received = (la, quarter) in counts.index  # listed in the returns table, or holding events
            n = int(counts.get((la, quarter), 0))
            rows.append((la, quarter, n, received, return_due(quarter) <= data_date))
    frame = pd.DataFrame(rows, columns=list(RETURNS_COLUMNS)).astype(
        {"rows": "int64", "received": bool, "due": bool}
    )
    missing = [
        (r.la_code, r.quarter_start) for r in frame.itertuples(index=False) if r.due and not r.received
    ]
    latest: dict[str, date | None] = {}
    for la in las:
        got = frame.loc[(frame["la_code"] == la) & frame["received"], "quarter_start"]
        latest[la] = max(got) if len(got) else None
    return ReturnsCoverage(frame, data_date, missing, latest)


def known_local_authorities(coverage: ReturnsCoverage, as_of: date) -> set[str]:
    """The LAs whose social care is known at ``as_of``: their latest return due by then was received.

    That is the return for the quarter ending :func:`data_cutoff` (``as_of``). A return covers the 12 months to its quarter's end, so an older missing quarter is
    covered by a later return received; only the latest due one decides.
    """
    quarter = quarter_start(data_cutoff(as_of))
    frame = coverage.frame
    chosen = (frame["quarter_start"] == quarter) & frame["received"]
    return {str(code) for code in frame.loc[chosen, "la_code"]}


def unreported_quarters(coverage: ReturnsCoverage, local_authority: str, as_of: date) -> list[date]:
    """The quarters (starts) that no received return of ``local_authority`` covers at ``as_of``.

    Empty when the LA is known (:func:`known_local_authorities`); else the quarters after
    its latest received one (before ``as_of``'s cutoff: at most a year of them, which is
    what the missing returns would have covered) up to the one ending at :func:`data_cutoff`.
    """
    if local_authority in known_local_authorities(coverage, as_of):
        return []
    last = quarter_start(data_cutoff(as_of))
    received = [
        q
        for q in coverage.frame.loc[
            (coverage.frame["la_code"] == local_authority) & coverage.frame["received"], "quarter_start"
        ]
        if q <= last
    ]
    quarters = [last]
    while len(quarters) < 4 and previous_quarter(quarters[0]) not in received:
        quarters.insert(0, previous_quarter(quarters[0]))
    return quarters
