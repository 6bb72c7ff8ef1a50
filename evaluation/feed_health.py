"""Feed health: is each source still sending what it usually sends, practice by practice?

Every weekly run counts each event table's rows per GP practice and week (and,
ICS-wide, per code group such as a diagnosis's condition) over the last
``baseline_weeks + recent_weeks`` weeks, in one aggregate query per table that
runs on DuckDB and on Spark. Each practice is compared with its own history:

* Its usual rate is its events per registered person over the baseline weeks
  (the ``baseline_weeks`` before the recent ones, so a stop does not hide in
  its own baseline); a week's expected events are that rate times the people
  registered that week, so a practice that grows is not a spike.
* How much its weeks vary beyond Poisson noise (over-dispersion, ``phi``) is
  estimated from the same baseline weeks (Pearson chi-square over the degrees of
  freedom, at least 1). A week's count is judged against a negative binomial
  with the expected mean and variance ``phi x expected x (1 + registered /
  baseline registered)``: the last factor carries the uncertainty of the
  baseline rate itself. The tail is averaged over the uncertainty of ``phi``
  (26 weeks estimate it only roughly; plugging in the estimate raised twice the
  stated false alarms on simulated practices twice as variable as Poisson).
* Each recent week is checked on its own, and the recent weeks pooled (a small
  practice's drop may be clear only over several weeks). A cell alarms when its
  ratio to the usual volume is beyond a threshold (warning, or critical past a
  second one) *and* its two-sided p-value is below ``false_alarm_rate`` divided
  by the number of cells checked in the run (Bonferroni), so a run with stable
  feeds alarms with probability at most ``false_alarm_rate``.
* Practices without a baseline (new practices) and cells expecting fewer than
  ``min_expected_events`` are reported, never alarmed.

Per source, the share of registered people with any record in the 365 days to
the data date is compared with the same share at the start of the baseline
(coverage), and a source whose latest event is older than ``stale_days`` is
critical (a stale feed). A source with no rows at all (an empty file, e.g. an
ICS with no community feed, or no file) is "not supplied": shown as such, never
alarmed; a source with rows but none recent stays critical (a stopped feed).
When the week's lists are for a Monday more than ``max_data_age_days`` after
the data date, the extract as a whole is old: a "stale" warning (it does not stop
a run).

Alarms are grouped: one per (table, direction, level), naming the practices,
the weeks and the size of the change. Their counts pass disclosure control
(``riskstrat.evaluation.disclosure``: 1-7 suppressed, others rounded to 5,
shares from the rounded counts), as the monitoring page shows them verbatim;
the cells hold exact counts. Practices are ODS codes, not people: no person ID
reaches a cell, an alarm or a message. Baseline weeks are taken as they are:
a bank-holiday or Christmas week, or a source that arrives a week or two late
(hospital data often do), shows as a drop unless its size is within what the
practice's own weeks vary by.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from scipy import stats

from riskstrat.errors import RiskstratError
from riskstrat.evaluation.alarms import Alarm, join_words, percent, weeks_phrase
from riskstrat.evaluation.disclosure import SMALL_COUNT_MAX, SUPPRESSED, count
from riskstrat.evaluation.monitoring_settings import FeedHealthSettings
from riskstrat.features.point_in_time import alive_at, registered_at
from riskstrat.ingest.contract import CONTRACT

COUNT_COLUMNS = ["table", "practice_code", "code_group", "week_end", "events"]
"""Columns of :func:`weekly_event_counts`."""

COVERAGE_DAYS = 365
"""Look-back of the coverage check: people with any record in the 365 days to the data date."""

CELL_COLUMNS = [
    "table",
    "practice_code",
    "code_group",
    "check",
    "week_end",
    "weeks",
    "events",
    "expected",
    "registered",
    "usual_per_week",
    "ratio",
    "phi",
    "p_value",
    "status",
    "direction",
    "level",
]
"""Columns of :attr:`FeedHealth.cells`: one row per checked (table, practice or code group, week or pooled weeks).

``check`` is "week" (one week) or "pooled" (the recent weeks together; ``week_end``
is the newest); ``status`` is "checked", "no baseline" (a new practice) or "too few
expected"; ``direction`` is "drop" or "spike"; ``level`` is None, "warning" or "critical".
"""


def week_ends(data_date: date, weeks: int) -> list[date]:
    """The last day of each of the ``weeks`` weeks to ``data_date``, newest first: data_date, data_date - 7, ..."""
    return [data_date - timedelta(days=7 * k) for k in range(weeks)]


def event_tables(tables: Mapping[str, ir.Table]) -> list[str]:
    """The tables of ``tables`` dated by an event in the contract (the caseload aside: it is a state, not a feed).

    Optional tables are left out too: the quarterly social care returns lag by design and
    have their own check (missing local-authority quarters, in the validation gate).
    """
    return [
        name
        for name in tables
        if name in CONTRACT
        and CONTRACT[name].event_date is not None
        and name != "caseload"
        and not CONTRACT[name].optional
    ]


def _event_day(table: ir.Table, name: str) -> ir.DateValue:
    """The contract's event date of ``name`` as a date (A&E arrivals are timestamps)."""
    value = table[CONTRACT[name].event_date]
    return value.date() if value.type().is_timestamp() else value


def weekly_event_counts(
    tables: Mapping[str, ir.Table],
    data_date: date,
    weeks: int,
    code_groups: Mapping[str, str],
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Events per table, practice and week, and ICS-wide per code group and week.

    One aggregate query per table over the last ``weeks`` weeks only: events
    dated in (week_end - 7 days, week_end] count in that week. A row's practice
    is the person's ``practice_code`` in ``patients``; only events dated on or
    after the person's registration start count (a new patient's earlier records,
    and anyone registering after the data date, belong to no week of this
    practice). Weeks with no events have no row (:func:`feed_health` fills them
    with zeros).

    Args:
        tables: Input tables by contract name, with ``patients`` (DuckDB or Spark).
        data_date: The extract's data date (the last day of the newest week).
        weeks: Weeks counted.
        code_groups: Table -> column whose values are counted ICS-wide (e.g. gp_diagnoses: condition).
        names: Tables counted; default every event table in ``tables`` (:func:`event_tables`).

    Returns:
        Columns table, practice_code (None on code-group rows), code_group (None on
        practice rows), week_end (date), events (int64).
    """
    names = list(names) if names is not None else event_tables(tables)
    patients = tables["patients"].select(
        "person_id", "practice_code", _start=tables["patients"].registration_start
    )
    first = data_date - timedelta(days=7 * weeks)
    frames = []
    for name in names:
        if name not in tables:
            raise RiskstratError(
                f"feed health: table {name!r} is not in the extract read",
                hint="Check configs/monitoring.yaml feed_health.tables against the extract's tables.",
            )
        events = tables[name]
        day = _event_day(events, name)
        dated = events.mutate(_day=day).filter(lambda t: (t._day > first) & (t._day <= data_date))
        dated = dated.mutate(_week=(ibis.literal(data_date).delta(dated._day, unit="day") // 7).cast("int64"))
        column = code_groups.get(name)
        if column is not None and column not in events.columns:
            raise RiskstratError(
                f"feed health: {name} has no column {column!r} to count code groups by",
                hint="Check configs/monitoring.yaml feed_health.code_groups.",
            )
        kept = ["person_id", "_day", "_week"] + ([column] if column is not None else [])
        # Only events dated while the person was registered with the practice: a new patient's
        # earlier history (GP2GP records) is not part of this practice's weekly feed, and the
        # registered count it is divided by does not include them before they joined.
        registered_events = (
            dated.select(*kept)
            .inner_join(patients, "person_id")
            .filter(lambda t: t._start.isnull() | (t._day >= t._start))
        )
        by_practice = (
            registered_events.group_by(["practice_code", "_week"])
            .aggregate(events=ibis._.count())
            .to_pandas()
        )
        by_practice["table"], by_practice["code_group"] = name, None
        frames.append(by_practice)
        if column is not None:
            by_code = (
                registered_events.filter(registered_events[column].notnull())
                .group_by([registered_events[column].cast("string").name("code_group"), "_week"])
                .aggregate(events=ibis._.count())
                .to_pandas()
            )
            by_code["table"], by_code["practice_code"] = name, None
            frames.append(by_code)
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in COUNT_COLUMNS}).astype(
            {"events": "int64"}
        )
    counts = pd.concat(frames, ignore_index=True)
    counts["week_end"] = [data_date - timedelta(days=7 * int(k)) for k in counts["_week"]]
    counts["events"] = counts["events"].astype("int64")
    counts = counts.astype({"practice_code": object, "code_group": object})
    counts = counts.where(counts.notna(), None)
    return counts[COUNT_COLUMNS].sort_values(["table", "week_end"], ignore_index=True)


def _registered(patients: ir.Table, day: date) -> ir.BooleanValue:
    return registered_at(patients, day) & alive_at(patients, day)


def registered_by_practice(tables: Mapping[str, ir.Table], week_ends: Sequence[date]) -> pd.DataFrame:
    """People alive and registered with each practice at each week's end (one pass over ``patients``).

    Returns:
        Columns practice_code, week_end (date), registered (int64).
    """
    patients = tables["patients"]
    ends = list(week_ends)
    if not ends:
        return pd.DataFrame({"practice_code": [], "week_end": [], "registered": []})
    sums = {f"w{k}": _registered(patients, day).cast("int64").sum() for k, day in enumerate(ends)}
    wide = patients.group_by("practice_code").aggregate(**sums).to_pandas()
    frame = wide.melt(id_vars="practice_code", var_name="_k", value_name="registered")
    frame["week_end"] = [ends[int(k[1:])] for k in frame["_k"]]
    frame["registered"] = frame["registered"].fillna(0).astype("int64")
    frame = frame[frame["registered"] > 0]
    return frame[["practice_code", "week_end", "registered"]].sort_values(
        ["practice_code", "week_end"], ignore_index=True
    )


def source_coverage(
    tables: Mapping[str, ir.Table],
    data_date: date,
    baseline_days: int = 182,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per source: who has any record, and how recent its latest event is.

    Args:
        tables: Input tables by contract name, with ``patients``.
        data_date: The extract's data date.
        baseline_days: Days back to the baseline's coverage (pass ``7 x baseline_weeks``).
        names: Tables checked; default every event table in ``tables``. A name not in
            ``tables`` (no file supplied) gets a row with ``supplied`` False.

    Returns:
        Columns table, supplied (False: no file, or a file with no rows), registered (people alive and registered at the data date),
        people_with_record (of them, with any event in the 365 days to it), share,
        baseline_date, baseline_registered, baseline_with_record, baseline_share (the
        same at ``baseline_days`` before), latest_event (date or None) and days_since_latest.
    """
    names = list(names) if names is not None else event_tables(tables)
    patients = tables["patients"]
    base = data_date - timedelta(days=baseline_days)
    people = patients.select(
        "person_id",
        now=_registered(patients, data_date).cast("int64"),
        then=_registered(patients, base).cast("int64"),
    )
    registered = people.aggregate(now=people.now.sum(), then=people.then.sum()).to_pandas().iloc[0]
    start_now = data_date - timedelta(days=COVERAGE_DAYS)
    start_then = base - timedelta(days=COVERAGE_DAYS)
    rows = []
    for name in names:
        if name not in tables:
            rows.append(_not_supplied(name, registered, base))
            continue
        events = tables[name]
        day = _event_day(events, name)
        dated = events.select("person_id", _day=day).filter(lambda t: t._day <= data_date)
        window = dated.filter(dated._day > min(start_then, start_now))
        per_person = window.group_by("person_id").aggregate(
            recent=(window._day > start_now).max(),
            earlier=((window._day > start_then) & (window._day <= base)).max(),
            latest=window._day.max(),
        )
        # Left join: the latest event counts whoever it belongs to.
        joined = per_person.left_join(people, "person_id")
        found = (
            joined.aggregate(
                with_now=(joined.recent.cast("int64") * joined.now.fill_null(0)).sum(),
                with_then=(joined.earlier.cast("int64") * joined.then.fill_null(0)).sum(),
                latest=joined.latest.max(),
            )
            .to_pandas()
            .iloc[0]
        )
        latest = found["latest"]
        if latest is None or pd.isna(latest):
            # Nothing in the window: look further back (a feed dead for more than a year).
            latest = dated.aggregate(latest=dated._day.max()).to_pandas()["latest"].iloc[0]
        latest_day = None if latest is None or pd.isna(latest) else pd.Timestamp(latest).date()
        if latest_day is None and int(events.count().to_pandas()) == 0:
            rows.append(_not_supplied(name, registered, base))
            continue
        rows.append(
            {
                "table": name,
                "supplied": True,
                "registered": int(registered["now"] or 0),
                "people_with_record": int(found["with_now"] or 0) if pd.notna(found["with_now"]) else 0,
                "baseline_date": base,
                "baseline_registered": int(registered["then"] or 0),
                "baseline_with_record": int(found["with_then"]) if pd.notna(found["with_then"]) else 0,
                "latest_event": latest_day,
                "days_since_latest": None if latest_day is None else (data_date - latest_day).days,
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["share"] = frame["people_with_record"] / frame["registered"].where(frame["registered"] > 0)
    frame["baseline_share"] = frame["baseline_with_record"] / frame["baseline_registered"].where(
        frame["baseline_registered"] > 0
    )
    return frame[
        [
            "table",
            "supplied",
            "registered",
            "people_with_record",
            "share",
            "baseline_date",
            "baseline_registered",
            "baseline_with_record",
            "baseline_share",
            "latest_event",
            "days_since_latest",
        ]
    ]


def _not_supplied(name: str, registered: pd.Series, base: date) -> dict[str, Any]:
    """The coverage row of a source with no rows at all (not supplied): nothing to judge."""
    return {
        "table": name,
        "supplied": False,
        "registered": int(registered["now"] or 0),
        "people_with_record": 0,
        "baseline_date": base,
        "baseline_registered": int(registered["then"] or 0),
        "baseline_with_record": 0,
        "latest_event": None,
        "days_since_latest": None,
    }


@dataclass
class FeedHealth:
    """What feed health found in one weekly run.

    Attributes:
        cells: Every checked cell (:data:`CELL_COLUMNS`).
        coverage: :func:`source_coverage` per source.
        alarms: Volume ("feed"), "stale" and "coverage" alarms.
        alpha: The per-cell significance level used (false_alarm_rate / cells tested).
    """

    cells: pd.DataFrame
    coverage: pd.DataFrame
    alarms: list[Alarm] = field(default_factory=list)
    alpha: float = float("nan")


PHI_DRAWS = 25
"""Quantiles of the over-dispersion's uncertainty averaged over in each p-value."""


def _two_sided_p(
    events: np.ndarray, expected: np.ndarray, pearson: np.ndarray, df: np.ndarray, inflation: np.ndarray
) -> np.ndarray:
    """Two-sided p-values of ``events`` against negative binomials of mean ``expected``.

    The variance is ``phi x expected x inflation``, where the over-dispersion ``phi``
    is uncertain: estimated from ``df`` baseline degrees of freedom with Pearson
    chi-square ``pearson``, so ``phi`` given the baseline is ``pearson / chi2(df)``
    (at least 1, Poisson). Each p-value averages the tail over
    :data:`PHI_DRAWS` evenly spaced quantiles of that distribution: plugging in the
    estimate alone would under-state the tails and raise false alarms when practices
    vary more than Poisson (a t-test's reasoning, for counts).
    """
    quantiles = (np.arange(PHI_DRAWS) + 0.5) / PHI_DRAWS
    df = np.maximum(df, 1)[:, None]
    phi = np.maximum(1.0, pearson[:, None] / stats.chi2.ppf(quantiles[None, :], df))
    phi = np.maximum(phi * inflation[:, None], 1 + 1e-9)
    mean = expected[:, None]
    size, prob = mean / (phi - 1), 1 / phi
    y = events[:, None]
    low = stats.nbinom.cdf(y, size, prob).mean(axis=1)
    high = stats.nbinom.sf(y - 1, size, prob).mean(axis=1)
    return np.minimum(1.0, 2 * np.minimum(low, high))


def _series_cells(
    events: np.ndarray,
    registered: np.ndarray,
    recent: int,
    min_baseline_weeks: int,
) -> list[dict]:
    """Cells of one weekly series (newest week first): each recent week and the recent weeks pooled.

    Args:
        events: Events per week, newest first (recent weeks, then baseline weeks).
        registered: People registered each week (same order).
        recent: How many of the weeks are recent.
        min_baseline_weeks: Baseline weeks with people registered needed to judge the series.
    """
    base_events, base_registered = events[recent:], registered[recent:]
    used = base_registered > 0
    weeks_used = int(used.sum())
    total_registered = float(base_registered[used].sum())
    rate = float(base_events[used].sum()) / total_registered if total_registered > 0 else float("nan")
    phi, pearson = 1.0, 0.0
    if weeks_used >= 2 and rate > 0:
        mu = rate * base_registered[used]
        pearson = float(np.sum((base_events[used] - mu) ** 2 / mu))
        phi = max(1.0, pearson / (weeks_used - 1))
    has_baseline = weeks_used >= min_baseline_weeks and np.isfinite(rate)
    cells = []
    spans = [[k] for k in range(recent)] + [list(range(recent))]
    for span in spans:
        observed = int(events[span].sum())
        people = float(registered[span].sum())
        expected = rate * people if has_baseline else float("nan")
        cells.append(
            {
                "check": "week" if len(span) == 1 else "pooled",
                "week_index": span[0],
                "weeks": len(span),
                "events": observed,
                "registered": int(people),
                "expected": expected,
                "phi": phi,
                "pearson": pearson,
                "df": max(1, weeks_used - 1),
                "inflation": 1 + people / total_registered if total_registered > 0 else float("nan"),
                "has_baseline": has_baseline,
            }
        )
    return cells


def _level(ratio: float, settings: FeedHealthSettings) -> tuple[str, str | None]:
    """Direction and level of a change of ``ratio`` (this volume / the usual one) by the thresholds alone."""
    if ratio < 1:
        if ratio <= settings.critical_ratio:
            return "drop", "critical"
        return "drop", "warning" if ratio <= settings.warning_ratio else None
    if ratio >= 1 / settings.critical_ratio:
        return "spike", "critical"
    return "spike", "warning" if ratio >= 1 / settings.warning_ratio else None


def _grid(
    counts: pd.DataFrame, registered: pd.DataFrame, ends: list[date], settings: FeedHealthSettings
) -> list[tuple[str, str | None, str | None, np.ndarray, np.ndarray]]:
    """Every weekly series to check: (table, practice_code, code_group, events newest first, registered)."""
    position = {day: k for k, day in enumerate(ends)}
    weeks = len(ends)
    counts = counts[counts["week_end"].isin(position)]
    registered = registered[registered["week_end"].isin(position)]
    practices = sorted(registered["practice_code"].dropna().unique())
    people = np.zeros((len(practices), weeks))
    row = {code: i for i, code in enumerate(practices)}
    for code, day, n in registered[["practice_code", "week_end", "registered"]].itertuples(index=False):
        if code in row:
            people[row[code], position[day]] += n
    ics_people = people.sum(axis=0)
    series = []
    for table in settings.tables:
        mine = counts[counts["table"] == table]
        by_practice = mine[mine["practice_code"].notna()]
        volume = np.zeros((len(practices), weeks))
        for code, day, n in by_practice[["practice_code", "week_end", "events"]].itertuples(index=False):
            if code in row:
                volume[row[code], position[day]] += n
        series.extend((table, code, None, volume[i], people[i]) for code, i in row.items())
        if table in settings.code_groups:
            by_code = mine[mine["code_group"].notna()]
            for group, part in by_code.groupby("code_group", sort=True):
                volume = np.zeros(weeks)
                for day, n in part[["week_end", "events"]].itertuples(index=False):
                    volume[position[day]] += n
                series.append((table, None, str(group), volume, ics_people))
    return series


def feed_health(
    counts: pd.DataFrame,
    registered: pd.DataFrame,
    coverage: pd.DataFrame,
    data_date: date,
    settings: FeedHealthSettings,
    week: date | None = None,
) -> FeedHealth:
    """Judge this run's weekly volumes, coverage and latest events (see the module docstring).

    Args:
        counts: :func:`weekly_event_counts` over at least ``baseline_weeks + recent_weeks`` weeks.
        registered: :func:`registered_by_practice` at the same week ends.
        coverage: :func:`source_coverage` at ``data_date``.
        data_date: The extract's data date (end of the newest week).
        settings: Feed-health settings.
        week: The Monday the lists are for; None: the extract's age is not checked.

    Returns:
        The checked cells, the coverage and the alarms.
    """
    ends = week_ends(data_date, settings.recent_weeks + settings.baseline_weeks)
    min_baseline = max(2, settings.baseline_weeks // 2)
    rows = []
    for table, practice, group, events, people in _grid(counts, registered, ends, settings):
        for cell in _series_cells(events, people, settings.recent_weeks, min_baseline):
            rows.append({"table": table, "practice_code": practice, "code_group": group, **cell})
    cells = pd.DataFrame(rows)
    if cells.empty:
        cells = pd.DataFrame(
            columns=[*CELL_COLUMNS, "week_index", "pearson", "df", "inflation", "has_baseline"]
        )
    cells["week_end"] = [ends[int(k)] for k in cells["week_index"]]
    cells["usual_per_week"] = cells["expected"] / cells["weeks"]
    with np.errstate(divide="ignore", invalid="ignore"):
        cells["ratio"] = cells["events"] / cells["expected"]
    cells["status"] = np.where(
        ~cells["has_baseline"].astype(bool),
        "no baseline",
        np.where(cells["expected"] < settings.min_expected_events, "too few expected", "checked"),
    )
    checked = (cells["status"] == "checked").to_numpy()
    p_values = np.full(len(cells), np.nan)
    if checked.any():
        p_values[checked] = _two_sided_p(
            cells.loc[checked, "events"].to_numpy(float),
            cells.loc[checked, "expected"].to_numpy(float),
            cells.loc[checked, "pearson"].to_numpy(float),
            cells.loc[checked, "df"].to_numpy(float),
            cells.loc[checked, "inflation"].to_numpy(float),
        )
    cells["p_value"] = p_values
    tested = int(checked.sum())
    alpha = settings.false_alarm_rate / tested if tested else float("nan")
    directions, levels = [], []
    for is_checked, ratio, p in zip(checked, cells["ratio"], cells["p_value"], strict=True):
        if not is_checked:
            directions.append(None)
            levels.append(None)
            continue
        direction, level = _level(float(ratio), settings)
        directions.append(direction)
        levels.append(level if p <= alpha else None)
    cells["direction"], cells["level"] = directions, levels
    nullable = {"practice_code": object, "code_group": object, "direction": object, "level": object}
    cells = cells[CELL_COLUMNS].astype(nullable)
    cells = cells.where(cells.notna(), None)
    alarms = _volume_alarms(cells, settings)
    alarms += _old_extract_alarms(data_date, week, settings)
    alarms += _stale_alarms(coverage, data_date, settings)
    alarms += _coverage_alarms(coverage, data_date, settings)
    return FeedHealth(cells=cells, coverage=coverage, alarms=alarms, alpha=alpha)


def _shown_ratio(events: float, expected: float) -> dict[str, Any]:
    """The events and their share of the usual volume as they may be shown (disclosure control).

    Events are shown as :func:`~riskstrat.evaluation.disclosure.count` shows them (1-7
    suppressed, others rounded to 5) and the share is computed from the shown count;
    a suppressed count is worded "under x%" (x from 8 events), never its exact share.
    """
    shown = count(events)
    if shown == SUPPRESSED:
        return {
            "events": shown,
            "ratio": shown,
            "words": f"under {percent((SMALL_COUNT_MAX + 1) / expected)}",
        }
    ratio = float(shown) / expected if expected > 0 else float("nan")
    return {"events": shown, "ratio": ratio, "words": percent(ratio)}


def _whole(value: float) -> str:
    return f"{value:,.0f}"


def _volume_alarms(cells: pd.DataFrame, settings: FeedHealthSettings) -> list[Alarm]:
    """One alarm per (table, kind of row, direction, level), each practice or code group at its worst level."""
    alarms = []
    flagged = cells[cells["level"].notna()]
    if flagged.empty:
        return alarms
    flagged = flagged.assign(
        _subject=flagged["practice_code"].where(flagged["practice_code"].notna(), flagged["code_group"]),
        _kind=np.where(flagged["practice_code"].notna(), "practice", "code_group"),
        _rank=flagged["level"].map({"warning": 1, "critical": 2}),
    )
    worst = flagged.groupby(["table", "_kind", "_subject", "direction"])["_rank"].transform("max")
    flagged = flagged[flagged["_rank"] == worst]
    for (table, kind, direction, level), group in flagged.groupby(
        ["table", "_kind", "direction", "level"], sort=True
    ):
        entries = []
        for subject, own in group.groupby("_subject", sort=True):
            weekly = own[own["check"] == "week"]
            chosen = weekly if len(weekly) else own
            if len(weekly):
                days = sorted(weekly["week_end"])
            else:
                newest = own["week_end"].iloc[0]
                days = [newest - timedelta(days=7 * k) for k in range(int(own["weeks"].iloc[0]))]
            events, expected = float(chosen["events"].sum()), float(chosen["expected"].sum())
            weeks = float(chosen["weeks"].sum())
            entries.append(
                {
                    "name": str(subject),
                    "exact": events / expected if expected > 0 else float("nan"),
                    **_shown_ratio(events, expected),
                    "usual_per_week": expected / weeks,
                    "weeks": [day.isoformat() for day in days],
                    "days": days,
                }
            )
        # Worst first: the biggest drop (or spike) leads the message.
        entries.sort(key=lambda e: e["exact"] if direction == "drop" else -e["exact"])
        days = sorted({day for entry in entries for day in entry["days"]})
        ratios = join_words([e.pop("words") for e in entries])
        usual = join_words([_whole(e["usual_per_week"]) for e in entries])
        if kind == "practice":
            names = join_words([e["name"] for e in entries])
            count = len(entries)
            who = f"{count} practice{'s' if count > 1 else ''} ({names})"
            their = "their" if count > 1 else "its"
            subject = table
            where = ""
        else:
            column = settings.code_groups.get(table, "code group")
            names = join_words([f"'{e['name']}'" for e in entries])
            who = f"{column} {names}"
            their = "their" if len(entries) > 1 else "its"
            subject = f"{table}.{column}"
            where = " ICS-wide"
        message = (
            f"{table}: {who} recorded {ratios} of {their} usual weekly volume{where} in "
            f"{weeks_phrase(days)} (usual {usual} a week)"
        )
        figures = {
            "table": table,
            "rows": kind,
            "direction": direction,
            "items": [{k: v for k, v in e.items() if k not in ("days", "exact")} for e in entries],
        }
        alarms.append(Alarm("feed", level, subject, message, figures))
    return alarms


def _old_extract_alarms(data_date: date, week: date | None, settings: FeedHealthSettings) -> list[Alarm]:
    """A "stale" warning when the week's Monday is more than ``max_data_age_days`` after the data date."""
    if week is None:
        return []
    age = (week - data_date).days
    if age <= settings.max_data_age_days:
        return []
    message = (
        f"extract: the data are {age} days older than this week's lists (data as at {data_date.isoformat()}, "
        f"lists for the week of {week.isoformat()}; more than {settings.max_data_age_days} days)"
    )
    figures = {
        "table": "extract",
        "data_date": data_date.isoformat(),
        "week": week.isoformat(),
        "days_old": age,
        "max_data_age_days": settings.max_data_age_days,
    }
    return [Alarm("stale", "warning", "extract", message, figures)]


def _stale_alarms(coverage: pd.DataFrame, data_date: date, settings: FeedHealthSettings) -> list[Alarm]:
    alarms = []
    for row in coverage.itertuples(index=False):
        if not getattr(row, "supplied", True):
            continue  # no rows at all: not supplied (e.g. no community feed), nothing to judge
        latest, days = row.latest_event, row.days_since_latest
        if latest is None or pd.isna(latest):
            message = f"{row.table}: holds no events dated on or before the data date {data_date.isoformat()}"
        elif days > settings.stale_days:
            message = (
                f"{row.table}: its latest event is dated {latest.isoformat()}, {days} days before the data date "
                f"{data_date.isoformat()} (more than {settings.stale_days}: the feed may have stopped)"
            )
        else:
            continue
        figures = {
            "table": row.table,
            "latest_event": None if latest is None or pd.isna(latest) else latest.isoformat(),
            "days_since_latest": None if days is None or pd.isna(days) else int(days),
            "stale_days": settings.stale_days,
        }
        alarms.append(Alarm("stale", "critical", row.table, message, figures))
    return alarms


def _coverage_alarms(coverage: pd.DataFrame, data_date: date, settings: FeedHealthSettings) -> list[Alarm]:
    alarms = []
    for row in coverage.itertuples(index=False):
        share, before = row.share, row.baseline_share
        if share is None or before is None or pd.isna(share) or pd.isna(before) or before <= 0:
            continue
        fall = 1 - share / before
        if fall < settings.coverage_drop:
            continue
        message = (
            f"{row.table}: {percent(share)} of registered people have a record in the {COVERAGE_DAYS} days to "
            f"{data_date.isoformat()}, down from {percent(before)} at {row.baseline_date.isoformat()} "
            f"(a fall of {percent(fall)})"
        )
        figures = {
            "table": row.table,
            "share": float(share),
            "baseline_share": float(before),
            "baseline_date": row.baseline_date.isoformat(),
            "fall": float(fall),
        }
        alarms.append(Alarm("coverage", "warning", row.table, message, figures))
    return alarms
