"""Is the programme working? The effect of being listed, estimated at each MDT's capacity cut-off.

Every week each MDT takes exactly its capacity from a list ranked by risk, so the people
just above and just below the cut-off are alike except for being listed: a natural
experiment. Three designs, each a function over the recorded cut-offs (the assignment
rows of every published week), the MDTs' decisions and the outcomes:

1. **Regression discontinuity** (:func:`regression_discontinuity`): the jump in the chance
   of the outcome at the cut-off, pooled over MDTs and weeks, in risk distance to the
   cut-off (``probability - cutoff_probability``) or rank distance
   (``capacity + 0.5 - eligible_rank``). Local linear fits with a triangular kernel and
   the MSE-optimal bandwidth, capped at the cut-off record's depth (the record keeps only
   ``people_below`` people below each cut-off, so a wider bandwidth would compare a
   truncated, selected below side), robust bias-corrected interval (``rdrobust``), standard
   errors clustered by MDT-week (heteroskedasticity-robust if clustering fails).
   *Repeated eligibility*: a person enters once, at their first recorded week (above or
   below the cut-off); later weeks are dropped. People first recorded below may be
   listed later, which dilutes the estimate toward zero: it is the effect of being
   listed at that first week, an intention-to-treat. Lottery-pool rows are left out
   (there, being listed is random, not by risk), and so are the rare rows tied with the
   cut-off's risk on the wrong side of it.
2. **Lottery at the margin** (:func:`lottery_comparison`, when pool rows exist): winners
   against losers at their first draw, a difference in proportions with a Newcombe
   interval; with decisions, the effect of being taken on (a Wald ratio with a
   delta-method interval).
3. **Fuzzy regression discontinuity** (``fuzzy=True``): with the MDTs' decisions, listing
   as the instrument for being taken onto a caseload at that week's list, with its first
   stage (the share taken on among people listed near the cut-off).

Power: the smallest effect each design would detect (:func:`minimum_detectable_effect`,
2.8 standard errors at 80% power and 5% two-sided) and, when the lottery is off, what it
would detect if it were on (:func:`projected_lottery_mde`). :func:`impact_payload` turns
the estimates into the report's disclosure-controlled figures and plain sentences: no
person-level row leaves this module.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import ibis
import numpy as np
import pandas as pd
from scipy import stats

from riskstrat.evaluation import disclosure
from riskstrat.evaluation.disclosure import check_disclosed
from riskstrat.evaluation.fairness import wilson
from riskstrat.evaluation.impact_settings import ImpactSettings
from riskstrat.features.outcomes import outcome
from riskstrat.features.point_in_time import Tables
from riskstrat.features.settings import OutcomeSettings
from riskstrat.settings import Settings

TAKEN_ON = "added_to_caseload"
"""The decision code meaning the MDT took the person onto a caseload (``riskstrat.worklists.decisions``)."""

ASSIGNMENT_NEEDS: tuple[str, ...] = (
    "week",
    "data_date",
    "mdt",
    "person_id",
    "outcome",
    "eligible_rank",
    "probability",
    "cutoff_probability",
    "capacity",
    "listed",
    "lottery_pool",
    "lottery_won",
)
"""The columns of the cut-off record (``worklists/<week>/assignment.parquet``) the designs read."""

BINS_PER_SIDE = 4
"""Bins of distance to the cut-off on each side of the plot, within the bandwidth (wide enough
that a bin holds more than a disclosure-suppressed count)."""

DENSITY_RATIO = 2.0
"""People within the bandwidth on one side more than this many times those on the other (or
than the record's own split) raise the density caution."""

STATUSES = ("estimated", "too_short", "too_few", "no_history")
"""What an impact payload holds: an estimate, too few matured weeks, too few people near the
cut-off, or no recorded cut-offs at all."""


# --------------------------------------------------------------------------- the analysis rows


def matured_weeks(assignments: pd.DataFrame, data_date: date, horizon_days: int) -> list[date]:
    """The weeks whose follow-up (data date, data date + horizon] has ended by ``data_date``."""
    if assignments.empty:
        return []
    weeks = assignments[["week", "data_date"]].drop_duplicates()
    ends = pd.to_datetime(weeks["data_date"]) + pd.Timedelta(days=horizon_days)
    matured = weeks.loc[(ends <= pd.Timestamp(data_date)).to_numpy(), "week"]
    return sorted({_as_date(w) for w in matured})


def _as_date(value: Any) -> date:
    return pd.Timestamp(value).date()


def running_distance(rows: pd.DataFrame, kind: str) -> pd.Series:
    """Distance to the cut-off, positive on the listed side.

    Args:
        rows: Assignment rows (``probability``, ``cutoff_probability``, ``capacity``, ``eligible_rank``).
        kind: ``"risk"``: risk minus the cut-off's risk (the person at the cut-off is at 0, listed);
            ``"rank"``: ``capacity + 0.5 - eligible_rank`` (the last listed at +0.5, the next at -0.5).
    """
    if kind == "risk":
        return rows["probability"].astype(float) - rows["cutoff_probability"].astype(float)
    if kind == "rank":
        return rows["capacity"].astype(float) + 0.5 - rows["eligible_rank"].astype(float)
    raise ValueError(f"running variable {kind!r}: expected 'risk' or 'rank'")


def first_entries(assignments: pd.DataFrame) -> pd.DataFrame:
    """Each person's first recorded row (earliest week; within a week, the MDT first by name).

    Later weeks are dropped: being listed at the first week is the treatment the designs
    compare (an intention-to-treat), whatever happened in later weeks.
    """
    ordered = assignments.assign(_week=pd.to_datetime(assignments["week"])).sort_values(
        ["_week", "mdt", "eligible_rank"], kind="stable"
    )
    return ordered.drop_duplicates("person_id", keep="first").drop(columns="_week")


def taken_on(rows: pd.DataFrame, decisions: pd.DataFrame | None, code: str = TAKEN_ON) -> pd.Series:
    """1 where the MDT recorded ``code`` for the person on that MDT's list of that week, else 0.

    Returns NaN for rows of an MDT-week with no decision recorded at all (that list never came
    back, so nobody on it can be counted as not taken on).
    """
    if decisions is None or decisions.empty:
        return pd.Series(np.nan, index=rows.index)
    d = decisions.assign(
        week=decisions["week"].astype(str).str[:10], person_id=decisions["person_id"].astype(str)
    )
    returned = set(zip(d["mdt"].astype(str), d["week"], strict=True))
    taken = set(
        zip(
            d.loc[d["decision"] == code, "mdt"].astype(str),
            d.loc[d["decision"] == code, "week"],
            d.loc[d["decision"] == code, "person_id"],
            strict=True,
        )
    )
    weeks = rows["week"].map(lambda w: _as_date(w).isoformat())
    keys = list(zip(rows["mdt"].astype(str), weeks, rows["person_id"].astype(str), strict=True))
    values = [(1.0 if key in taken else 0.0) if (key[0], key[1]) in returned else np.nan for key in keys]
    return pd.Series(values, index=rows.index, dtype=float)


@dataclass
class AnalysisRows:
    """The rows the designs use, with what was left out (counts stay raw here; the payload discloses them).

    Attributes:
        rd: One row per person at their first recorded week outside any lottery pool:
            ``person_id``, ``week``, ``mdt``, ``x`` (distance), ``listed``, ``event``, ``cluster``
            (MDT-week), ``taken`` (0/1, NaN where the list's decisions never came back).
        lottery: One row per person at their first draw: ``person_id``, ``week``, ``mdt``,
            ``won``, ``event``, ``taken``.
        left_out: Rows left out, by reason: ``later_weeks``, ``lottery_pool``, ``no_cutoff``,
            ``tied_at_cutoff``.
        depths: One row per list (``cluster``, MDT-week): ``below``, how far below the cut-off
            the record reaches (the distance of its lowest recorded person), and ``above``,
            how far above (its highest listed person). Empty when not computed.
        record: Every recorded row outside a lottery pool (``cluster``, ``x``), first week or
            not: the record's own split either side of the cut-off, for the density check.
    """

    rd: pd.DataFrame
    lottery: pd.DataFrame
    left_out: dict[str, int] = field(default_factory=dict)
    depths: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["cluster", "below", "above"]))
    record: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["cluster", "x"]))

    def bandwidth_cap(self) -> float | None:
        """The widest bandwidth every contributing list's record covers on both sides, or None.

        The smallest depth (below or above) among the lists with a row in :attr:`rd`: within it,
        every person near the cut-off of every list was recorded.
        """
        if self.depths.empty or self.rd.empty:
            return None
        used = self.depths.loc[self.depths["cluster"].isin(set(self.rd["cluster"]))]
        if used.empty:
            return None
        cap = float(min(used["below"].min(), used["above"].min()))
        return cap if math.isfinite(cap) and cap > 0 else None


def analysis_rows(
    assignments: pd.DataFrame,
    outcomes: pd.DataFrame,
    decisions: pd.DataFrame | None,
    running_variable: str,
    taken_code: str = TAKEN_ON,
) -> AnalysisRows:
    """The regression discontinuity's and the lottery's rows from the matured assignment rows.

    Args:
        assignments: The cut-off records of the weeks to analyse (:data:`ASSIGNMENT_NEEDS`).
        outcomes: ``person_id``, ``data_date``, ``event`` (0/1) for the rows' (person, data date).
        decisions: The decision history (``person_id``, ``mdt``, ``week``, ``decision``), or None.
        running_variable: ``"risk"`` or ``"rank"``.
        taken_code: The decision meaning "taken onto a caseload".
    """
    missing = [c for c in ASSIGNMENT_NEEDS if c not in assignments.columns]
    if missing:
        raise ValueError(f"assignment rows lack column(s) {', '.join(missing)}")
    rows = assignments.assign(
        person_id=assignments["person_id"].astype(str),
        data_date=pd.to_datetime(assignments["data_date"]).dt.date,
        listed=assignments["listed"].astype(bool),
        lottery_pool=assignments["lottery_pool"].astype(bool),
        lottery_won=assignments["lottery_won"].astype(bool),
    )
    events = outcomes.assign(
        person_id=outcomes["person_id"].astype(str), data_date=pd.to_datetime(outcomes["data_date"]).dt.date
    )[["person_id", "data_date", "event"]].drop_duplicates(["person_id", "data_date"])
    rows = rows.merge(events, on=["person_id", "data_date"], how="left")
    rows["event"] = rows["event"].fillna(0).astype(int)
    rows["taken"] = taken_on(rows, decisions, taken_code)
    rows["cluster"] = rows["mdt"].astype(str) + "|" + rows["week"].map(lambda w: _as_date(w).isoformat())

    first = first_entries(rows)
    left_out = {"later_weeks": len(rows) - len(first)}
    pool = first["lottery_pool"]
    left_out["lottery_pool"] = int(pool.sum())
    rd = first.loc[~pool].copy()
    no_cutoff = rd["cutoff_probability"].isna() if running_variable == "risk" else rd["capacity"].isna()
    left_out["no_cutoff"] = int(no_cutoff.sum())
    rd = rd.loc[~no_cutoff]
    rd["x"] = running_distance(rd, running_variable)
    wrong_side = (rd["x"] >= 0) != rd["listed"]
    left_out["tied_at_cutoff"] = int(wrong_side.sum())
    rd = rd.loc[~wrong_side]

    in_pool = rows.loc[rows["lottery_pool"]]
    lottery = first_entries(in_pool).rename(columns={"lottery_won": "won"})
    keep = ["person_id", "week", "mdt", "event", "taken", "cluster"]
    return AnalysisRows(
        rd=rd[[*keep, "x", "listed", "eligible_rank", "capacity"]].reset_index(drop=True),
        lottery=lottery[[*keep, "won"]].reset_index(drop=True),
        left_out=left_out,
        depths=record_depths(rows, running_variable),
        record=_record_rows(rows, running_variable),
    )


def _with_cutoff(rows: pd.DataFrame, running_variable: str) -> pd.DataFrame:
    has = rows["cutoff_probability"].notna() if running_variable == "risk" else rows["capacity"].notna()
    out = rows.loc[has]
    return out.assign(x=running_distance(out, running_variable))


def record_depths(rows: pd.DataFrame, running_variable: str) -> pd.DataFrame:
    """How far each list's record reaches either side of its cut-off, in the running variable's units.

    The record keeps only the ``people_below`` people ranked after the cut-off, so below the
    lowest recorded person nobody is known: a bandwidth wider than ``below`` compares a
    truncated below side. In risk distance ``below`` is the cut-off's risk minus the lowest
    recorded risk of the list; in rank distance ``people_below - 0.5``.

    Args:
        rows: Assignment rows with ``cluster`` (MDT-week), every recorded row (pool rows too).
        running_variable: ``"risk"`` or ``"rank"``.

    Returns:
        ``cluster``, ``below``, ``above`` (0 where the list recorded nobody on that side).
    """
    if rows.empty:
        return pd.DataFrame(columns=["cluster", "below", "above"])
    d = _with_cutoff(rows, running_variable)
    below = (-d["x"].where(d["x"] < 0)).groupby(d["cluster"]).max()
    above = d["x"].where(d["x"] >= 0).groupby(d["cluster"]).max()
    out = pd.DataFrame({"below": below, "above": above}).fillna(0.0)
    return out.rename_axis("cluster").reset_index()


def _record_rows(rows: pd.DataFrame, running_variable: str) -> pd.DataFrame:
    if rows.empty:
        return pd.DataFrame(columns=["cluster", "x"])
    d = _with_cutoff(rows.loc[~rows["lottery_pool"]], running_variable)
    return d[["cluster", "x"]].reset_index(drop=True)


# --------------------------------------------------------------------------- the designs


@dataclass(frozen=True)
class RdFit:
    """A regression discontinuity estimate (raw; :func:`impact_payload` discloses it).

    Attributes:
        estimate: Conventional local-linear jump at the cut-off (listed minus not listed).
        lower: Robust bias-corrected interval, lower end.
        upper: Its upper end.
        se: Robust standard error (the one the interval uses).
        bandwidth: MSE-optimal bandwidth (the same each side), in the running variable's units.
        n_below: People within the bandwidth below the cut-off (not listed).
        n_above: People within the bandwidth above it (listed).
        events_below: Their events below.
        events_above: Their events above.
        intercept_below: The fitted outcome rate just below the cut-off.
        slope_below: The fitted slope below.
        intercept_above: The fitted rate just above.
        slope_above: The fitted slope above.
        vce: The variance estimator used (``CR1`` clustered by MDT-week, or ``HC1``).
        clusters: Number of MDT-week clusters (None when not clustered).
        first_stage: For a fuzzy fit, the jump in the share taken on (its estimate, lower, upper).
        n_sample: Rows the fit was given (both sides).
        bandwidth_mse: The MSE-optimal bandwidth before any cap (equal to ``bandwidth`` when uncapped).
        bandwidth_cap: The cap given (the cut-off record's depth), or None.
    """

    estimate: float
    lower: float
    upper: float
    se: float
    bandwidth: float
    n_below: int
    n_above: int
    events_below: int
    events_above: int
    intercept_below: float
    slope_below: float
    intercept_above: float
    slope_above: float
    vce: str
    clusters: int | None
    first_stage: tuple[float, float, float] | None = None
    n_sample: int = 0
    bandwidth_mse: float = float("nan")
    bandwidth_cap: float | None = None


class NotEstimable(Exception):
    """A design that cannot be estimated on these rows (too few, no variation); the message says why."""


def _rdrobust(
    y: np.ndarray,
    x: np.ndarray,
    level: float,
    cluster: np.ndarray | None,
    fuzzy: np.ndarray | None,
    cap: float | None = None,
) -> tuple[Any, float]:
    """The rdrobust fit and the MSE-optimal bandwidth; with ``cap``, h and b are capped at it."""
    from rdrobust import rdbwselect, rdrobust  # imported when used: it pulls in plotting libraries

    variance: dict[str, Any] = {"cluster": cluster} if cluster is not None else {"vce": "hc1"}
    # rdrobust prints notes ("Mass points detected ...") and warns; neither belongs in a run's log.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if cap is None:
            fit = rdrobust(y, x, c=0, fuzzy=fuzzy, kernel="tri", bwselect="mserd", level=level, **variance)
            return fit, float(np.asarray(fit.bws).reshape(2, 2)[0, 0])
        bws = np.asarray(
            rdbwselect(y, x, c=0, fuzzy=fuzzy, kernel="tri", bwselect="mserd", **variance).bws
        ).ravel()
        h_mse, b_mse = float(bws[0]), float(bws[2])
        h, b = min(h_mse, cap), min(b_mse, cap)
        fit = rdrobust(y, x, c=0, fuzzy=fuzzy, kernel="tri", h=h, b=b, level=level, **variance)
        return fit, h_mse


def regression_discontinuity(
    rows: pd.DataFrame, alpha: float = 0.05, fuzzy: bool = False, max_bandwidth: float | None = None
) -> RdFit:
    """The jump in the outcome at the cut-off (sharp), or the effect of being taken on (fuzzy).

    Args:
        rows: ``x`` (distance, listed at ``x >= 0``), ``event`` (0/1), ``cluster`` (MDT-week) and,
            for ``fuzzy``, ``taken`` (0/1; rows with NaN are left out).
        alpha: Two-sided error rate of the interval.
        fuzzy: Listing as the instrument for ``taken``.
        max_bandwidth: The widest bandwidth the cut-off record covers
            (:meth:`AnalysisRows.bandwidth_cap`): the MSE-optimal bandwidth (and the bias
            bandwidth) are capped at it and given to rdrobust explicitly. None: uncapped.

    Returns:
        The fit: conventional estimate, robust bias-corrected interval, bandwidth and the people
        and events within it on each side.

    Raises:
        NotEstimable: Too few rows on a side, no variation, or rdrobust refused.
    """
    data = rows.dropna(subset=["taken"]) if fuzzy else rows
    below, above = int((data["x"] < 0).sum()), int((data["x"] >= 0).sum())
    if min(below, above) < 10:
        raise NotEstimable(f"too few people on one side of the cut-off ({below} below, {above} above)")
    if data["event"].nunique() < 2:
        raise NotEstimable("every person near the cut-off had the same outcome")
    if fuzzy and data["taken"].nunique() < 2:
        raise NotEstimable("nobody near the cut-off was recorded as taken onto a caseload")
    y = data["event"].to_numpy(float)
    x = data["x"].to_numpy(float)
    t = data["taken"].to_numpy(float) if fuzzy else None
    level = 100 * (1 - alpha)
    clusters = data["cluster"].astype(str).to_numpy()
    try:
        (fit, h_mse), vce = _rdrobust(y, x, level, clusters, t, max_bandwidth), "CR1"
        n_clusters = int(pd.unique(clusters).size)
    except Exception:
        try:
            (fit, h_mse), vce, n_clusters = _rdrobust(y, x, level, None, t, max_bandwidth), "HC1", None
        except Exception as exc:
            raise NotEstimable(f"rdrobust could not fit these rows: {exc}") from None
    h = float(np.asarray(fit.bws).reshape(2, 2)[0, 0])
    within = np.abs(x) <= h
    estimate = float(np.asarray(fit.coef).ravel()[0])
    ci = np.asarray(fit.ci)
    lower, upper = float(ci[2, 0]), float(ci[2, 1])
    se = float(np.asarray(fit.se).ravel()[2])
    if not all(math.isfinite(v) for v in (estimate, lower, upper, se, h)):
        raise NotEstimable("rdrobust returned no finite estimate")
    # The sharp fits of the outcome on each side give the plot's lines and the rate just below.
    beta_l, beta_r = np.asarray(fit.beta_p_l).ravel(), np.asarray(fit.beta_p_r).ravel()
    first_stage = None
    if fuzzy:
        tau_t, ci_t = np.asarray(fit.tau_T).ravel(), np.asarray(fit.ci_T)
        first_stage = (float(tau_t[0]), float(ci_t[2, 0]), float(ci_t[2, 1]))
    return RdFit(
        estimate=estimate,
        lower=lower,
        upper=upper,
        se=se,
        bandwidth=h,
        n_below=int((within & (x < 0)).sum()),
        n_above=int((within & (x >= 0)).sum()),
        events_below=int(y[within & (x < 0)].sum()),
        events_above=int(y[within & (x >= 0)].sum()),
        intercept_below=float(beta_l[0]),
        slope_below=float(beta_l[1]) if beta_l.size > 1 else 0.0,
        intercept_above=float(beta_r[0]),
        slope_above=float(beta_r[1]) if beta_r.size > 1 else 0.0,
        vce=vce,
        clusters=n_clusters,
        first_stage=first_stage,
        n_sample=len(data),
        bandwidth_mse=h_mse,
        bandwidth_cap=max_bandwidth,
    )


@dataclass(frozen=True)
class LotteryResult:
    """Winners against losers at their first draw (raw).

    Attributes:
        n_winners: Winners (listed by the draw).
        n_losers: Losers (in the pool, not listed).
        events_winners: Their events.
        events_losers: The losers' events.
        difference: Winners' rate minus losers' rate.
        lower: Newcombe (hybrid score) interval, lower end.
        upper: Its upper end.
        se: Wald standard error of the difference.
        taken_winners: Share of winners taken onto a caseload (None without decisions).
        taken_losers: Share of losers taken on.
        iv: Effect of being taken on (Wald ratio), with its delta-method interval; None without
            decisions or when nobody was taken on.
    """

    n_winners: int
    n_losers: int
    events_winners: int
    events_losers: int
    difference: float
    lower: float
    upper: float
    se: float
    taken_winners: float | None = None
    taken_losers: float | None = None
    iv: tuple[float, float, float, float] | None = None


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2))


def newcombe_interval(e1: int, n1: int, e2: int, n2: int, alpha: float = 0.05) -> tuple[float, float]:
    """Newcombe's hybrid score interval for ``e1/n1 - e2/n2`` (from the two Wilson intervals)."""
    p1, p2 = e1 / n1, e2 / n2
    l1, u1 = wilson(e1, n1, 1 - alpha)
    l2, u2 = wilson(e2, n2, 1 - alpha)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def lottery_comparison(rows: pd.DataFrame, alpha: float = 0.05) -> LotteryResult:
    """Winners against losers of the lottery at the margin, at each person's first draw.

    Args:
        rows: ``won`` (bool), ``event`` (0/1), ``taken`` (0/1 or NaN where decisions never came back).
        alpha: Two-sided error rate.

    Raises:
        NotEstimable: With no winners or no losers.
    """
    won = rows["won"].astype(bool)
    n1, n2 = int(won.sum()), int((~won).sum())
    if min(n1, n2) == 0:
        raise NotEstimable(f"the lottery has {n1} winners and {n2} losers")
    y = rows["event"].to_numpy(float)
    e1, e2 = int(y[won].sum()), int(y[~won].sum())
    p1, p2 = e1 / n1, e2 / n2
    lower, upper = newcombe_interval(e1, n1, e2, n2, alpha)
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    result = dict(
        n_winners=n1,
        n_losers=n2,
        events_winners=e1,
        events_losers=e2,
        difference=p1 - p2,
        lower=lower,
        upper=upper,
        se=se,
    )
    decided = rows.dropna(subset=["taken"])
    w = decided["won"].astype(bool)
    if w.sum() and (~w).sum() and decided["taken"].sum() > 0:
        t, yd = decided["taken"].to_numpy(float), decided["event"].to_numpy(float)
        tw, tl = t[w].mean(), t[~w].mean()
        dy, dt = yd[w].mean() - yd[~w].mean(), tw - tl
        result.update(taken_winners=float(tw), taken_losers=float(tl))
        if abs(dt) > 1e-9:
            ratio = dy / dt

            def var(a: np.ndarray) -> float:
                return float(np.var(a, ddof=1)) / len(a) if len(a) > 1 else 0.0

            def cov(a: np.ndarray, b: np.ndarray) -> float:
                return float(np.cov(a, b, ddof=1)[0, 1]) / len(a) if len(a) > 1 else 0.0

            v = (
                var(yd[w])
                + var(yd[~w])
                + ratio**2 * (var(t[w]) + var(t[~w]))
                - 2 * ratio * (cov(yd[w], t[w]) + cov(yd[~w], t[~w]))
            ) / dt**2
            s = math.sqrt(max(v, 0.0))
            result["iv"] = (float(ratio), float(ratio - _z(alpha) * s), float(ratio + _z(alpha) * s), s)
    return LotteryResult(**result)


# --------------------------------------------------------------------------- power


def minimum_detectable_effect(se: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true effect found with probability ``power`` by a two-sided test at ``alpha``.

    ``(z_{1-alpha/2} + z_power) x se``: 2.8 standard errors at 5% and 80%.
    """
    return float((_z(alpha) + stats.norm.ppf(power)) * se)


def projected_lottery_mde(
    draws: int,
    places: int,
    pool: int,
    first_time_share: float,
    baseline: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> dict[str, float]:
    """What a lottery at the margin would detect over the same lists, were it on.

    Args:
        draws: Lists with a cut-off (MDTs x weeks).
        places: Last places filled by the draw.
        pool: People in each draw.
        first_time_share: Share of pool-ranked rows that are a person's first record
            (each person enters once).
        baseline: The outcome rate near the cut-off.
        alpha: Two-sided error rate.
        power: Power.

    Returns:
        ``winners``, ``losers`` (expected first-time people), ``se`` and ``mde``.
    """
    winners = draws * places * first_time_share
    losers = draws * max(pool - places, 0) * first_time_share
    if winners <= 0 or losers <= 0 or not 0 < baseline < 1:
        return {"winners": winners, "losers": losers, "se": float("nan"), "mde": float("nan")}
    se = math.sqrt(baseline * (1 - baseline) * (1 / winners + 1 / losers))
    return {
        "winners": winners,
        "losers": losers,
        "se": se,
        "mde": minimum_detectable_effect(se, alpha, power),
    }


def first_time_share(assignments: pd.DataFrame, places: int, pool: int) -> float:
    """Share of the rows ranked where a lottery's pool would be that are the person's first such row.

    The pool ranks are capacity - places + 1 .. capacity - places + pool of each list; a lottery
    compares people at their first draw, so a person who is near the cut-off week after week
    counts once.
    """
    if assignments.empty:
        return float("nan")
    rows = assignments.reset_index(drop=True)
    start = rows["capacity"] - places + 1
    in_pool = (rows["eligible_rank"] >= start) & (rows["eligible_rank"] < start + pool)
    if not in_pool.any():
        return float("nan")
    pooled = rows.loc[in_pool]
    return float(len(first_entries(pooled)) / len(pooled))


# --------------------------------------------------------------------------- outcomes from the extract


def _with_horizon(section: Settings, horizon_days: int) -> Settings:
    changes: dict[str, Any] = {"horizon_days": horizon_days}
    if "additional_horizons_days" in type(section).model_fields:
        changes["additional_horizons_days"] = ()
    return section.model_copy(update=changes)


def outcome_wording_at(name: str, outcome_settings: OutcomeSettings, horizon_days: int) -> str:
    """The outcome in words over the impact horizon, e.g. "an emergency hospital admission (or death) in the next 90 days"."""
    spec = outcome(name)
    return spec.wording(_with_horizon(outcome_settings.section(name), horizon_days))


def impact_outcomes(
    tables: Tables,
    pairs: pd.DataFrame,
    outcome_name: str,
    outcome_settings: OutcomeSettings,
    horizon_days: int,
) -> pd.DataFrame:
    """The outcome in (data date, data date + horizon] for each (person, data date), from the extract.

    The outcome's own label (the registry's, as ``configs/outcomes.yaml`` defines it: an
    emergency admission, or death when it counts) over the impact horizon.

    Args:
        tables: The extract (``patients``, ``apc_spells``; ``ae_attendances`` for attendance outcomes).
        pairs: ``person_id``, ``data_date``.
        outcome_name: A registered outcome.
        outcome_settings: The outcome settings.
        horizon_days: The follow-up.

    Returns:
        ``person_id``, ``data_date``, ``event`` (0/1), one row per pair.
    """
    spec = outcome(outcome_name)
    section = _with_horizon(outcome_settings.section(outcome_name), horizon_days)
    wanted = pairs.assign(
        person_id=pairs["person_id"].astype(str), data_date=pd.to_datetime(pairs["data_date"]).dt.date
    )[["person_id", "data_date"]].drop_duplicates()
    patients = tables["patients"]
    frames = []
    for as_of, group in wanted.groupby("data_date", sort=True):
        ids = ibis.memtable(pd.DataFrame({"_pid": group["person_id"].unique()}))
        people = patients.inner_join(ids, patients.person_id == ids._pid).select("person_id", "date_of_death")
        labels = spec.label(people, tables, as_of, section)
        found = labels.select("person_id", event=labels[outcome_name]).to_pandas()
        found["person_id"] = found["person_id"].astype(str)
        merged = group.merge(found, on="person_id", how="left")
        frames.append(merged)
    if not frames:
        return pd.DataFrame({"person_id": [], "data_date": [], "event": []})
    out = pd.concat(frames, ignore_index=True)
    out["event"] = out["event"].fillna(0).astype(int)
    return out[["person_id", "data_date", "event"]]


# --------------------------------------------------------------------------- the disclosed payload


def _pp(value: float) -> str:
    """A difference in proportions as signed percentage points: -0.0123 -> "-1.2"."""
    return f"{100 * value:+.1f}"


def _stat(value: float | None, built_from: Iterable[float], digits: int = 4) -> Any:
    return disclosure.statistic(value, list(built_from), digits)


def _side_bins(part: pd.DataFrame, side: str, reach: float, count: int) -> list[dict[str, Any]]:
    edges = np.linspace(0, reach, count + 1)
    which = np.clip(np.searchsorted(edges, part["x"].abs().to_numpy(), side="right") - 1, 0, count - 1)
    out = []
    for b in range(count):
        cell = part.loc[which == b]
        n, events = len(cell), int(cell["event"].sum())
        if n == 0:
            continue
        mid = (edges[b] + edges[b + 1]) / 2
        out.append(
            {
                "side": side,
                "x": round(float(-mid if side == "below" else mid), 6),
                "n": disclosure.count(n),
                "rate": disclosure.proportion(events, n),
            }
        )
    return out


def _bins(rows: pd.DataFrame, bandwidth: float) -> list[dict[str, Any]]:
    """Outcome rates in equal-width bins of distance each side, within the bandwidth, disclosed.

    Only the bandwidth is drawn: beyond it the record may be truncated (it keeps ``people_below``
    people below each cut-off). Each side has :data:`BINS_PER_SIDE` bins, or fewer, wider ones
    when that many would leave a bin's rate suppressed (a count of 1 to 7), so the dots show.
    """
    out: list[dict[str, Any]] = []
    for side, mask in (("below", rows["x"] < 0), ("above", rows["x"] >= 0)):
        part = rows.loc[mask]
        if part.empty:
            continue
        reach = min(bandwidth, float(part["x"].abs().max()))
        if reach <= 0:
            continue
        part = part.loc[part["x"].abs() <= reach]
        for count in range(BINS_PER_SIDE, 0, -1):
            bins = _side_bins(part, side, reach, count)
            if all(isinstance(b["rate"], float | int) for b in bins):
                break
        out.extend(bins)
    return out


def interval_words(alpha: float) -> str:
    """The interval's level in words: 0.05 -> "95%"."""
    return f"{100 * (1 - alpha):g}%"


def power_words(alpha: float, power: float) -> str:
    """The power statement's error rates in words: "80% power, 5% two-sided"."""
    return f"{100 * power:g}% power, {100 * alpha:g}% two-sided"


def _density(fit: RdFit, record: pd.DataFrame, clusters: set[str]) -> dict[str, Any]:
    """People within the bandwidth each side at their first week, against every recorded row's split.

    Near the cut-off the risk density is continuous, so every recorded row (each week's list,
    repeats included) splits about evenly; the first-week people can split unevenly when people
    first come near a cut-off from below (the first-time rule) or the record is truncated below.
    """
    part = record.loc[record["cluster"].isin(clusters) & (record["x"].abs() <= fit.bandwidth)]
    rec_below, rec_above = int((part["x"] < 0).sum()), int((part["x"] >= 0).sum())

    def lopsided(a: int, b: int) -> float:
        return max(a, b) / min(a, b) if min(a, b) > 0 else math.inf

    first = lopsided(fit.n_below, fit.n_above)
    shape = fit.n_below / fit.n_above if fit.n_above else math.inf
    implied = rec_below / rec_above if rec_above else math.inf
    against = (
        lopsided(fit.n_below * rec_above, fit.n_above * rec_below)
        if math.isfinite(shape) and math.isfinite(implied) and implied > 0
        else math.inf
    )
    uneven = first > DENSITY_RATIO or against > DENSITY_RATIO
    words = (
        f"Within the bandwidth, {_thousands(disclosure.count(fit.n_below))} people are below the cut-off and "
        f"{_thousands(disclosure.count(fit.n_above))} above at their first week; every recorded week together "
        f"holds {_thousands(disclosure.count(rec_below))} below and {_thousands(disclosure.count(rec_above))} above."
    )
    if uneven:
        words += (
            " People near the cut-off are unevenly split: the first-time rule or the record depth may bias "
            "the estimate."
        )
    return {
        "recorded_below": disclosure.count(rec_below),
        "recorded_above": disclosure.count(rec_above),
        "uneven": bool(uneven),
        "sentence": words,
    }


def _bandwidth_cap_words(fit: RdFit, running_variable: str) -> str:
    def amount(v: float) -> str:
        return f"{100 * v:.1f} percentage points of risk" if running_variable == "risk" else f"{v:.0f} places"

    if fit.bandwidth_cap is None:
        return "The bandwidth is the MSE-optimal one."
    if fit.bandwidth_mse > fit.bandwidth_cap:
        return (
            f"The MSE-optimal bandwidth ({amount(fit.bandwidth_mse)}) reaches past the people each week's record "
            f"keeps below the cut-off, so it is capped at the shallowest list's depth ({amount(fit.bandwidth_cap)})."
        )
    return (
        f"The MSE-optimal bandwidth ({amount(fit.bandwidth_mse)}) lies within every list's record "
        f"({amount(fit.bandwidth_cap)} deep), so it is not capped."
    )


def _fit_payload(fit: RdFit, rows: pd.DataFrame, alpha: float, power: float) -> dict[str, Any]:
    built = (
        fit.n_below,
        fit.n_above,
        fit.events_below,
        fit.events_above,
        fit.n_below - fit.events_below,
        fit.n_above - fit.events_above,
    )
    h = fit.bandwidth
    return {
        "estimate": _stat(fit.estimate, built),
        "lower": _stat(fit.lower, built),
        "upper": _stat(fit.upper, built),
        "se": _stat(fit.se, built),
        "mde": _stat(minimum_detectable_effect(fit.se, alpha, power), built),
        "bandwidth": round(h, 6),
        "bandwidth_mse": round(fit.bandwidth_mse, 6) if math.isfinite(fit.bandwidth_mse) else None,
        "bandwidth_cap": round(fit.bandwidth_cap, 6) if fit.bandwidth_cap is not None else None,
        "bandwidth_capped": bool(fit.bandwidth_cap is not None and fit.bandwidth_mse > fit.bandwidth_cap),
        "n_below": disclosure.count(fit.n_below),
        "n_above": disclosure.count(fit.n_above),
        "events_below": disclosure.count(fit.events_below),
        "events_above": disclosure.count(fit.events_above),
        "rate_below": _stat(fit.intercept_below, built),
        "rate_above": _stat(fit.intercept_above, built),
        "vce": "clustered by MDT-week (CR1)" if fit.vce == "CR1" else "heteroskedasticity-robust (HC1)",
        "clusters": fit.clusters,
        "fit": {
            "below": [
                [round(-h, 6), _stat(fit.intercept_below - fit.slope_below * h, built)],
                [0.0, _stat(fit.intercept_below, built)],
            ],
            "above": [
                [0.0, _stat(fit.intercept_above, built)],
                [round(h, 6), _stat(fit.intercept_above + fit.slope_above * h, built)],
            ],
        },
        "bins": _bins(rows, h),
    }


def _bandwidth_words(bandwidth: float, running_variable: str) -> str:
    if running_variable == "risk":
        return f"within {100 * bandwidth:.1f} percentage points of risk of the cut-off"
    return f"within {bandwidth:.0f} places of the cut-off"


def _effect_sentence(shown: dict[str, Any], wording: str, what: str, alpha: float = 0.05) -> str:
    """The estimate in plain words, e.g. "Being listed changed the chance of ... by -1.2 points (...)"."""
    est, lo, hi = shown["estimate"], shown["lower"], shown["upper"]
    if not all(isinstance(v, float | int) for v in (est, lo, hi)):
        return f"The estimate of {what} is withheld: it rests on a count of 1 to 7."
    if hi < 0:
        verdict = "fewer events: the interval excludes no effect"
    elif lo > 0:
        verdict = "more events: the interval excludes no effect"
    else:
        verdict = "the interval includes no effect"
    return (
        f"{what[:1].upper()}{what[1:]} changed the chance of {wording} by {_pp(est)} percentage points "
        f"({interval_words(alpha)} interval {_pp(lo)} to {_pp(hi)}; {verdict})."
    )


def _mde_sentence(mde: Any, alpha: float = 0.05, power: float = 0.8) -> str | None:
    if not isinstance(mde, float | int):
        return None
    if mde >= 1:
        return (
            "With this much list history no reduction could be detected: the smallest detectable change is "
            "more than 100 percentage points, so a null result here says nothing about the programme."
        )
    return (
        f"With this much list history the ICS could detect a reduction of {100 * mde:.1f} percentage "
        f"points or more ({power_words(alpha, power)}); a smaller effect would look like no effect."
    )


def _null_reading(shown: dict[str, Any]) -> str | None:
    lo, hi, mde = shown.get("lower"), shown.get("upper"), shown.get("mde")
    if not all(isinstance(v, float | int) for v in (lo, hi, mde)):
        return None
    if lo <= 0 <= hi:
        return (
            "An interval that includes no effect does not show that the programme does nothing: a reduction "
            f"of up to {100 * -min(lo, 0):.1f} points is still consistent with the data. Only effects of "
            f"about {100 * mde:.1f} points or more were likely to show."
        )
    return None


ASSUMPTIONS: tuple[str, ...] = (
    "People just above and just below the cut-off are alike in everything but being listed: their "
    "risks differ only slightly, and nobody chooses which side they fall on.",
    "The cut-off is set by capacity alone: each MDT takes exactly its capacity from the ranked list.",
    "Being listed affects only the listed person (no spill-over to people below the cut-off).",
)

THREATS: tuple[str, ...] = (
    "Manipulation of the cut-off: anyone moving people across it (editing risks, changing capacity to "
    "include or leave out particular people).",
    "MDTs adding people off the list, or taking on people below the cut-off for other reasons: the "
    "comparison group is then partly treated and the estimate shrinks toward zero.",
    "Capacity changing from week to week for reasons tied to who is near the cut-off.",
    "Spill-overs: a listed person's care changing what happens to people below the cut-off (shared "
    "carers, freed hospital beds), or the team's workload changing care for everyone.",
    "People first seen below the cut-off are often listed in a later week: the estimate is the effect "
    "of being listed at that first week (intention-to-treat), smaller than the effect of the care itself.",
)


def no_history_payload(
    outcome_name: str, wording: str, settings: ImpactSettings, ranked: bool = True
) -> dict[str, Any]:
    """The payload when no cut-off has been recorded yet.

    Args:
        outcome_name: The outcome asked about.
        wording: It in words.
        settings: The impact settings.
        ranked: Whether any configured MDT ranks its list by ``outcome_name``; when none does,
            the summary says there is no cut-off to evaluate (rather than "no history yet").
    """
    summary = (
        "No list history with a recorded cut-off yet: the impact evaluation starts once the "
        "weekly runs record their cut-offs."
        if ranked
        else f"No MDT ranks its list by {outcome_name} (configs/mdts.yaml outcome), so there is no "
        "cut-off to evaluate."
    )
    return {
        "status": "no_history",
        "outcome": outcome_name,
        "outcome_wording": wording,
        "horizon_days": settings.horizon_days,
        "weeks_recorded": 0,
        "weeks_matured": 0,
        "weeks_needed": settings.min_weeks,
        "ranked_by_an_mdt": ranked,
        "summary": summary,
    }


def too_short_payload(
    outcome_name: str, wording: str, weeks_recorded: int, weeks_matured: int, settings: ImpactSettings
) -> dict[str, Any]:
    """The payload when fewer than ``min_weeks`` weeks have ended their follow-up."""
    return {
        "status": "too_short",
        "outcome": outcome_name,
        "outcome_wording": wording,
        "horizon_days": settings.horizon_days,
        "weeks_recorded": weeks_recorded,
        "weeks_matured": weeks_matured,
        "weeks_needed": settings.min_weeks,
        "summary": (
            f"Too little list history to say yet: {weeks_recorded} week{'s' if weeks_recorded != 1 else ''} "
            f"of lists recorded, {weeks_matured} with their {settings.horizon_days}-day follow-up ended; "
            f"{settings.min_weeks} are needed."
        ),
    }


def impact_payload(
    rows: AnalysisRows,
    *,
    outcome_name: str,
    wording: str,
    settings: ImpactSettings,
    weeks: list[date],
    weeks_recorded: int,
    mdts: list[str],
    lottery_settings: Mapping[str, int] | None = None,
    draws: int = 0,
    pool_first_time_share: float = float("nan"),
    simulated_weeks: int = 0,
) -> dict[str, Any]:
    """Every design's estimate in disclosed figures and plain words: the report's "Is the programme working?".

    Args:
        rows: The analysis rows (:func:`analysis_rows`) of the matured weeks.
        outcome_name: The outcome measured.
        wording: It in words over the horizon (:func:`outcome_wording_at`).
        settings: The impact settings.
        weeks: The matured weeks analysed.
        weeks_recorded: Weeks with a recorded cut-off (matured or not).
        mdts: The MDTs covered.
        lottery_settings: ``places`` and ``pool`` of the lottery (for the projection when it is off).
        draws: Lists with a cut-off among the matured weeks (for the projection).
        pool_first_time_share: :func:`first_time_share` at the lottery's pool ranks.
        simulated_weeks: How many of ``weeks`` are a simulated past deployment (their manifest
            says ``"simulated": true``): the report says so.

    Returns:
        A JSON-ready payload with ``status`` ``"estimated"`` or ``"too_few"``; every count is
        disclosed (checked by :func:`~riskstrat.evaluation.disclosure.check_disclosed`).
    """
    alpha, power = settings.alpha, settings.power
    payload: dict[str, Any] = {
        "status": "estimated",
        "outcome": outcome_name,
        "outcome_wording": wording,
        "horizon_days": settings.horizon_days,
        "running_variable": settings.running_variable,
        "weeks_recorded": weeks_recorded,
        "weeks_matured": len(weeks),
        "weeks_needed": settings.min_weeks,
        "simulated_weeks": int(simulated_weeks),
        "interval": interval_words(alpha),
        "power_words": power_words(alpha, power),
        "first_week": weeks[0].isoformat() if weeks else None,
        "last_week": weeks[-1].isoformat() if weeks else None,
        "mdts": list(mdts),
        "n_people": disclosure.count(len(rows.rd)),
        "n_left_out": {k: disclosure.count(v) for k, v in rows.left_out.items()},
        "assumptions": list(ASSUMPTIONS),
        "threats": list(THREATS),
        "rd": None,
        "fuzzy": None,
        "lottery": None,
        "projected_lottery": None,
    }
    fit = None
    cap = rows.bandwidth_cap()
    try:
        fit = regression_discontinuity(rows.rd, alpha, max_bandwidth=cap)
    except NotEstimable as exc:
        payload["rd_problem"] = str(exc)
    if fit is not None and fit.n_below + fit.n_above < settings.min_people_near_cutoff:
        payload["rd_problem"] = (
            f"too few people near the cut-off ({disclosure.count(fit.n_below + fit.n_above)} within the "
            f"bandwidth; {settings.min_people_near_cutoff} are needed)"
        )
        fit = None
    if fit is not None:
        shown = _fit_payload(fit, rows.rd, alpha, power)
        shown["sentence"] = _effect_sentence(
            shown, wording, "being listed at the first week near the cut-off", alpha
        )
        shown["bandwidth_words"] = _bandwidth_words(fit.bandwidth, settings.running_variable)
        shown["bandwidth_cap_words"] = _bandwidth_cap_words(fit, settings.running_variable)
        shown["density"] = _density(fit, rows.record, set(rows.rd["cluster"]))
        shown["mde_sentence"] = _mde_sentence(shown["mde"], alpha, power)
        shown["null_reading"] = _null_reading(shown)
        payload["rd"] = shown
        try:
            fuzzy = regression_discontinuity(rows.rd, alpha, fuzzy=True, max_bandwidth=cap)
        except NotEstimable as exc:
            fuzzy = None
            if rows.rd["taken"].notna().any():
                payload["fuzzy_problem"] = str(exc)
        if fuzzy is not None and fuzzy.first_stage is not None:
            built = (fuzzy.n_below, fuzzy.n_above, fuzzy.events_below, fuzzy.events_above)
            fuzzy_shown = {
                "estimate": _stat(fuzzy.estimate, built),
                "lower": _stat(fuzzy.lower, built),
                "upper": _stat(fuzzy.upper, built),
                "se": _stat(fuzzy.se, built),
                "mde": _stat(minimum_detectable_effect(fuzzy.se, alpha, power), built),
                "first_stage": _stat(fuzzy.first_stage[0], built),
                "first_stage_lower": _stat(fuzzy.first_stage[1], built),
                "first_stage_upper": _stat(fuzzy.first_stage[2], built),
                "n_below": disclosure.count(fuzzy.n_below),
                "n_above": disclosure.count(fuzzy.n_above),
            }
            fuzzy_shown["sentence"] = _effect_sentence(
                fuzzy_shown, wording, "being taken onto a caseload (listing as the instrument)", alpha
            )
            payload["fuzzy"] = fuzzy_shown
    baseline = (
        fit.intercept_below if fit is not None else float(rows.rd["event"].mean() if len(rows.rd) else "nan")
    )
    if len(rows.lottery):
        try:
            lot = lottery_comparison(rows.lottery, alpha)
        except NotEstimable as exc:
            payload["lottery_problem"] = str(exc)
        else:
            built = (
                lot.n_winners,
                lot.n_losers,
                lot.events_winners,
                lot.events_losers,
                lot.n_winners - lot.events_winners,
                lot.n_losers - lot.events_losers,
            )
            pooled = (lot.events_winners + lot.events_losers) / (lot.n_winners + lot.n_losers)
            null_se = math.sqrt(pooled * (1 - pooled) * (1 / lot.n_winners + 1 / lot.n_losers))
            shown_lot = {
                "n_winners": disclosure.count(lot.n_winners),
                "n_losers": disclosure.count(lot.n_losers),
                "events_winners": disclosure.count(lot.events_winners),
                "events_losers": disclosure.count(lot.events_losers),
                "rate_winners": disclosure.proportion(lot.events_winners, lot.n_winners),
                "rate_losers": disclosure.proportion(lot.events_losers, lot.n_losers),
                "estimate": _stat(lot.difference, built),
                "lower": _stat(lot.lower, built),
                "upper": _stat(lot.upper, built),
                "se": _stat(lot.se, built),
                "mde": _stat(minimum_detectable_effect(null_se, alpha, power), built),
                "iv": None,
            }
            shown_lot["sentence"] = _effect_sentence(
                shown_lot, wording, "winning a place in the lottery", alpha
            )
            if lot.iv is not None:
                shown_lot["iv"] = {
                    "estimate": _stat(lot.iv[0], built),
                    "lower": _stat(lot.iv[1], built),
                    "upper": _stat(lot.iv[2], built),
                    "taken_winners": _stat(lot.taken_winners, built),
                }
            payload["lottery"] = shown_lot
    if payload["lottery"] is None and lottery_settings:
        places, pool = int(lottery_settings.get("places", 5)), int(lottery_settings.get("pool", 10))
        projected = projected_lottery_mde(draws, places, pool, pool_first_time_share, baseline, alpha, power)
        payload["projected_lottery"] = {
            "places": places,
            "pool": pool,
            "n_winners": disclosure.count(projected["winners"]),
            "n_losers": disclosure.count(projected["losers"]),
            "mde": _stat(projected["mde"], ()),
        }
    payload["status"] = "estimated" if payload["rd"] or payload["lottery"] else "too_few"
    payload["summary"] = summary_sentence(payload)
    check_disclosed(payload)
    return payload


def summary_sentence(payload: Mapping[str, Any]) -> str:
    """One line for the report's summary page."""
    status = payload.get("status")
    simulated = int(payload.get("simulated_weeks") or 0)
    if status == "too_few":
        line = (
            "Not enough people near the cut-off yet to estimate the effect of being listed: "
            f"{payload.get('rd_problem') or 'no design could be estimated'}."
        )
        return line + (" " + simulated_sentence(simulated) if simulated else "")
    if status != "estimated":
        return str(payload.get("summary") or "No estimate yet.")
    # The lottery, when on, is a randomised comparison: it leads; else the regression discontinuity.
    design = payload["lottery"] or payload["rd"]
    est, lo, hi, mde = design["estimate"], design["lower"], design["upper"], design["mde"]
    if not all(isinstance(v, float | int) for v in (est, lo, hi)):
        return "The estimate is withheld: it rests on a count of 1 to 7."
    how = "winning a place in the lottery at the margin" if payload["lottery"] else "being listed"
    interval = payload.get("interval") or "95%"
    if hi < 0:
        verdict, reading = "Fewer events", "excludes no effect"
    elif lo > 0:
        verdict, reading = "More events", "excludes no effect"
    else:
        verdict, reading = "No clear effect", "includes no effect"
    line = (
        f"{verdict}: {how} changed the chance of {payload['outcome_wording']} by {_pp(est)} "
        f"percentage points ({interval} interval {_pp(lo)} to {_pp(hi)}, {reading})"
    )
    if isinstance(mde, float | int):
        line += f"; the smallest reduction this history could detect is {100 * mde:.1f} points"
    line += "."
    if simulated:
        line += " " + simulated_sentence(simulated)
    return line


def simulated_sentence(simulated_weeks: int) -> str:
    """Says that list history is a simulated past deployment (the report's summary and section 4)."""
    return (
        f"{simulated_weeks} of these weeks {'is' if simulated_weeks == 1 else 'are'} a simulated past deployment "
        "on synthetic data (its true effect is set in configs/synthetic.yaml)."
    )


def _thousands(value: object) -> str:
    """A disclosed count with thousands separators ("4,935"); a suppressed count as it is ("*")."""
    return f"{value:,}" if isinstance(value, int) else str(value)
