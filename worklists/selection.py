"""Who goes on each MDT's list: exclusions, ranking within the MDT and its weekly capacity.

The scored population is one row per person with ``person_id``, ``practice_code``,
``age``, one probability column per outcome named ``p_<outcome>``
(``p_emergency_admission``, ``p_frequent_attendance``) and the status flags
``deceased``, ``deregistered``, ``on_caseload`` (with ``caseload_team``) and
``type1_opt_out`` (see :func:`worklist_status`).

Ties are broken deterministically: higher probability first, then a stable hash
of the person_id (the first 16 hex digits of its SHA-256, ascending), then the
person_id itself. The hash keeps ties from favouring any ID scheme (such as
low practice-prefixed IDs) while giving the same order on every run.

What the MDT decided about a person on earlier lists (the decision history,
:mod:`riskstrat.worklists.decisions`) shapes its next lists, by the rules in
``decisions`` of ``configs/mdts.yaml`` (:func:`decisions_in_force`): a person
rested after "not appropriate now", "declined" or "already known to a service"
is left off for ``rest_weeks`` weeks after the list the decision was made on,
unless their risk has risen by ``return_if_risk_rises_by`` percentage points
since; a person "added to caseload" leaves the list for ``caseload_weeks`` weeks
whatever the MDT's ``exclusions.active_caseload`` says: they are now in the
caseload's care and take no place on the list (after that, the extract's
caseload table and ``active_caseload`` decide, as for anyone). Only the MDT's own
latest decision about a person counts. The places freed go to the next people by
risk.

A person with a type 1 opt-out is, for an MDT that leaves opt-outs off, removed
from its registered people before anything is counted or ranked: they are not in
its counts (so no count of opt-outs can be shown or worked out from the others),
not ranked and not among its leavers. When no MDT lists opt-outs they are not
scored at all: :func:`people_not_to_score` names them for the weekly flow to
drop before scoring.

Around the cut-off. Each selection also keeps the eligible ranking around the capacity
cut-off (:attr:`MdtSelection.near_cutoff`): every listed person and the next
``cutoff_record.people_below`` eligible people, with their rank among the eligible. It is
recorded with the published week (:mod:`riskstrat.worklists.assignment`) for the impact
evaluation and is never shown. With the optional lottery (``lottery`` in
``configs/mdts.yaml``, off by default) the last ``places`` places are filled by a seeded
draw among the ``pool`` eligible people ranked ``capacity - places + 1`` onwards
(:func:`draw_lottery`); the list still shows its people in risk order, ranked 1..capacity,
and nothing on it says who was drawn.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from riskstrat.errors import RiskstratError
from riskstrat.frames import Column, FrameSchema, Kind
from riskstrat.worklists.decisions import DECISION_EXCLUSIONS, DECISIONS
from riskstrat.worklists.settings import (
    CutoffRecordSettings,
    DecisionSettings,
    LotterySettings,
    Mdt,
    MdtSettings,
    RiskBandSettings,
)

STATUS_COLUMNS: tuple[str, ...] = ("deceased", "deregistered", "on_caseload", "type1_opt_out")
REQUIRED_COLUMNS: tuple[str, ...] = ("person_id", "practice_code", "age")

SCORED_POPULATION = FrameSchema(
    name="scored population",
    columns=(
        Column("person_id", Kind.TEXT),
        Column("practice_code", Kind.TEXT),
        Column("age", Kind.NUMBER),
        *(Column(name, Kind.BOOLEAN) for name in STATUS_COLUMNS),
        Column("caseload_team", Kind.TEXT, nullable=True, required=False),
    ),
    key=("person_id",),
    hint="Score with the champion model(s); add status with attach_status(worklist_status(...)).",
)
"""One row per person scored this week, with status flags (:func:`scored_population_schema` adds
one ``p_<outcome>`` probability per outcome)."""


def scored_population_schema(outcomes: Collection[str]) -> FrameSchema:
    """:data:`SCORED_POPULATION` with a probability column (empty where unscored) per outcome."""
    return SCORED_POPULATION.with_columns(
        *(Column(probability_column(o), Kind.PROBABILITY, nullable=True) for o in sorted(outcomes))
    )


def probability_column(outcome: str) -> str:
    """Name of the probability column for an outcome (``p_emergency_admission``)."""
    return f"p_{outcome}"


NEAR_CUTOFF_COLUMNS: tuple[str, ...] = (
    "person_id",
    "practice_code",
    "eligible_rank",
    "probability",
    "listed",
    "lottery_pool",
    "lottery_won",
)
""":attr:`MdtSelection.near_cutoff`: the eligible people around the cut-off, in eligible-rank order."""


def no_near_cutoff() -> pd.DataFrame:
    """An empty :attr:`MdtSelection.near_cutoff`."""
    return pd.DataFrame(
        {
            "person_id": pd.Series(dtype="object"),
            "practice_code": pd.Series(dtype="object"),
            "eligible_rank": pd.Series(dtype="int64"),
            "probability": pd.Series(dtype="float64"),
            "listed": pd.Series(dtype=bool),
            "lottery_pool": pd.Series(dtype=bool),
            "lottery_won": pd.Series(dtype=bool),
        }
    )


@dataclass
class MdtSelection:
    """One MDT's list and how it was drawn up.

    Attributes:
        excluded: Rule -> how many registered people it left off (each counted once, by the
            first rule that applies): deceased, deregistered, below_age_floor, no_score,
            added_to_caseload (by an MDT decision), active_caseload (when excluded) and rested.
        held_by_decision: Person ID -> the decision code that kept an otherwise eligible
            person off this week's list (added to the caseload, or rested): 'Left the list'
            gives it as the reason.
        near_cutoff: The eligible ranking around the cut-off (:data:`NEAR_CUTOFF_COLUMNS`):
            every listed person, the next ``people_below`` eligible people and every lottery
            pool member, by ``eligible_rank`` (1 = highest risk; ties broken as the list does).
            Recorded, never shown.
        cutoff_probability: The risk of the person at eligible rank ``capacity`` (NaN when
            fewer people are eligible).
        lottery_seed: The seed this week's draw used ("" when there was no draw).
    """

    mdt: Mdt
    listed: pd.DataFrame
    registered: int
    eligible: int
    capacity: int
    excluded: dict[str, int] = field(default_factory=dict)
    held_by_decision: dict[str, str] = field(default_factory=dict)
    near_cutoff: pd.DataFrame = field(default_factory=no_near_cutoff)
    cutoff_probability: float = math.nan
    lottery_seed: str = ""

    @property
    def lottery_losers(self) -> frozenset[str]:
        """The people in this week's draw who were not drawn (never shown: no list, no 'Left the list')."""
        near = self.near_cutoff
        lost = near["lottery_pool"].astype(bool) & ~near["lottery_won"].astype(bool)
        return frozenset(near.loc[lost, "person_id"].astype(str))

    def lottery_counts(self) -> dict[str, int]:
        """This week's draw in counts, for the manifest and the About sheet (empty when there was none)."""
        if not self.lottery_seed:
            return {}
        near = self.near_cutoff
        return {
            "lottery_pool": int(near["lottery_pool"].sum()),
            "lottery_drawn": int(near["lottery_won"].sum()),
        }


DECISION_STATE_COLUMNS: tuple[str, ...] = ("decision", "decision_week", "action", "issued_probability")
""":func:`decisions_in_force`: the MDT's latest decision per person, its list's week, the action in
force this week (rest, caseload or "" when none) and the risk on that list."""


def no_decisions() -> pd.DataFrame:
    """:func:`decisions_in_force` when the MDT has recorded no decision."""
    return pd.DataFrame(
        {c: pd.Series(dtype="object") for c in DECISION_STATE_COLUMNS},
        index=pd.Index([], name="person_id", dtype="object"),
    )


def decisions_in_force(
    decisions: pd.DataFrame, mdt: str, week: date, settings: DecisionSettings
) -> pd.DataFrame:
    """The MDT's latest decision about each person before ``week``, and what it does this week.

    A decision made on the list of week ``W`` rests the person (or counts them as on a
    caseload) on the lists of weeks ``W + 1`` to ``W + rest_weeks`` (``caseload_weeks``).

    Args:
        decisions: The decision history (:data:`~riskstrat.worklists.decisions.DECISION_HISTORY_COLUMNS`),
            all MDTs' or just this one's.
        mdt: The MDT's name.
        week: The week being drawn up; decisions on this or later weeks' lists are ignored,
            so a re-run of a week gives the same list.
        settings: The decision rules.

    Returns:
        Indexed by ``person_id`` (text): :data:`DECISION_STATE_COLUMNS`.
    """
    own = decisions.loc[decisions["mdt"] == mdt] if len(decisions) else decisions
    if len(own):
        weeks = pd.to_datetime(own["week"]).dt.date
        own = own.assign(decision_week=weeks).loc[weeks < week]
    if not len(own):
        return no_decisions()
    latest = own.sort_values(["decision_week", "imported_at"]).drop_duplicates("person_id", keep="last")
    age_weeks = latest["decision_week"].map(lambda w: (week - w).days / 7)
    action = latest["decision"].map(settings.actions).fillna("stay")
    limit = action.map({"rest": settings.rest_weeks, "caseload": settings.caseload_weeks}).fillna(0)
    in_force = action.where((action != "stay") & (age_weeks <= limit), "")
    return pd.DataFrame(
        {
            "decision": latest["decision"].astype(str).to_numpy(),
            "decision_week": latest["decision_week"].to_numpy(),
            "action": in_force.to_numpy(),
            "issued_probability": latest["issued_probability"].astype("float64").to_numpy(),
        },
        index=pd.Index(latest["person_id"].astype(str).to_numpy(), name="person_id"),
    )


def worklist_status(status_at: pd.DataFrame) -> pd.DataFrame:
    """The status of every patient as the worklists use it, from the computed status at T.

    Args:
        status_at: :func:`riskstrat.features.status.population_status_at`, run on the
            feature backend and brought to the driver (any row order; dates and flags
            as Arrow gives them).

    Returns:
        One row per person, sorted by ``person_id`` (text): ``person_id``, ``practice_code``,
        ``deceased``, ``deregistered``, ``on_caseload``, ``caseload_team`` (pandas
        ``string``) and ``type1_opt_out``. An opted-out person missing from patients
        keeps their row (null practice): a history row may hold them, and the flag keeps
        them off every excluding MDT's 'Left the list'.
    """
    status = status_at.assign(person_id=status_at["person_id"].astype(str))
    # A person appears once (patients' IDs are unique); the order is fixed so runs compare equal.
    status = status.drop_duplicates("person_id").sort_values("person_id", kind="stable")
    status = status.reset_index(drop=True)
    practice = status["practice_code"].astype(object)
    out = pd.DataFrame(
        {"person_id": status["person_id"], "practice_code": practice.where(practice.notna(), None)}
    )
    for column in ("deceased", "deregistered", "on_caseload"):
        out[column] = status[column].fillna(False).astype(bool)
    out["caseload_team"] = status["caseload_team"].astype("string")
    out["type1_opt_out"] = status["type1_opt_out"].fillna(False).astype(bool)
    return out


def type1_opt_outs(status: pd.DataFrame) -> frozenset[str]:
    """The people with a type 1 opt-out, read from their status flag.

    Args:
        status: :func:`worklist_status` of every patient (it also flags an opted-out
            person missing from patients; the National Data Opt-out does not count).

    Returns:
        Their person IDs as text.
    """
    return frozenset(status.loc[status["type1_opt_out"].astype(bool), "person_id"].astype(str))


def every_mdt_excludes_type1_opt_outs(settings: MdtSettings) -> bool:
    """Whether every MDT leaves type 1 opt-outs off (an MDT without its own exclusions takes the default)."""
    default = settings.default_mdt.exclusions
    if not settings.mdts:  # one MDT per neighbourhood, each with the default
        return default.type1_opt_out == "exclude"
    return all((m.exclusions or default).type1_opt_out == "exclude" for m in settings.mdts)


def people_not_to_score(settings: MdtSettings, status: pd.DataFrame) -> frozenset[str]:
    """The people the weekly run must drop before scoring: type 1 opt-outs, when no MDT lists them.

    A person who opts out is processed for a list no further than being excluded. When
    at least one MDT includes opt-outs everyone is scored, and each excluding MDT drops
    them in :func:`select_mdt`.

    Args:
        settings: The worklist settings.
        status: :func:`worklist_status` of every patient at the run date.

    Returns:
        Person IDs (text) to leave out of the feature rows that are scored; empty when
        some MDT includes opt-outs.
    """
    if not every_mdt_excludes_type1_opt_outs(settings):
        return frozenset()
    return type1_opt_outs(status)


def without_people(frame: pd.DataFrame, people: Collection[str]) -> pd.DataFrame:
    """``frame`` without the rows of ``people`` (by ``person_id`` as text), index renumbered.

    Args:
        frame: Any person-level frame with ``person_id`` (e.g. the feature matrix).
        people: Person IDs to drop.

    Returns:
        The remaining rows (``frame`` itself when there is no one to drop).
    """
    if not people:
        return frame
    keep = ~frame["person_id"].astype(str).isin(set(people))
    return frame.loc[keep].reset_index(drop=True)


def attach_status(scored: pd.DataFrame, status: pd.DataFrame) -> pd.DataFrame:
    """Add the status flags to the scored population (people without a status row get False).

    Args:
        scored: Scored population (person_id, practice_code, age, p_<outcome> ...).
        status: Output of :func:`worklist_status`.

    Returns:
        ``scored`` with ``deceased``, ``deregistered``, ``on_caseload``, ``caseload_team``, ``type1_opt_out``.

    Raises:
        RiskstratError: If ``status`` holds a person more than once.
    """
    keep = [c for c in (*STATUS_COLUMNS, "caseload_team") if c in status.columns]
    base = scored.drop(columns=[c for c in keep if c in scored.columns])
    # A plain uniqueness check: merge(validate="many_to_one") costs more than the merge itself.
    if not status["person_id"].is_unique:
        repeated = status["person_id"].duplicated()
        raise RiskstratError(
            f"patient status: {int(repeated.sum()):,} repeated person_id(s)",
            details=f"e.g. {status.loc[repeated, 'person_id'].iloc[0]}",
            hint="Build the status with worklist_status() from population_status_at, one row per person.",
        )
    merged = base.merge(status[["person_id", *keep]], on="person_id", how="left")
    for column in STATUS_COLUMNS:
        merged[column] = merged[column].fillna(False).astype(bool) if column in merged else False
    return merged


def lottery_seed(seed: int, week: date, mdt: str) -> str:
    """The seed of one MDT's draw in one week: ``sha256(f"{seed}|{week}|{mdt}")`` as hex.

    Args:
        seed: ``lottery.seed`` in ``configs/mdts.yaml``.
        week: The list's week (Monday).
        mdt: The MDT's name.

    Returns:
        64 hex digits; recorded with every pool member (``lottery_seed``).
    """
    return hashlib.sha256(f"{seed}|{week.isoformat()}|{mdt}".encode()).hexdigest()


def draw_lottery(pool: pd.Series, places: int, seed: str) -> np.ndarray:
    """Which pool members win the draw: the ``places`` with the smallest ``sha256(f"{seed}|{person_id}")``.

    Hashing each person's ID with the draw's seed orders the pool at random, the same way
    on any machine and with any library version, so anyone holding the seed and the pool
    can check the draw.

    Args:
        pool: The pool's person IDs (any order).
        places: How many win (all of them when the pool is no larger).
        seed: :func:`lottery_seed` of the week and MDT.

    Returns:
        A boolean array aligned with ``pool``: True for the winners.
    """
    keys = [hashlib.sha256(f"{seed}|{pid}".encode()).hexdigest() for pid in pool.astype(str)]
    order = np.argsort(np.array(keys, dtype=object), kind="stable")
    won = np.zeros(len(keys), dtype=bool)
    won[order[:places]] = True
    return won


def tie_break_key(person_ids: pd.Series) -> pd.Series:
    """Stable tie-break key: the first 16 hex digits of SHA-256(person_id), as text."""
    return person_ids.astype(str).map(lambda pid: hashlib.sha256(pid.encode()).hexdigest()[:16])


def risk_percentiles(probabilities: pd.Series) -> pd.Series:
    """Each person's percentile (0-100] among everyone scored: the share at or below their risk."""
    return probabilities.rank(method="max", pct=True) * 100


def risk_band(values: pd.Series, bands: RiskBandSettings) -> pd.Series:
    """Band names for percentiles or probabilities, as ``bands.basis`` says.

    Args:
        values: Percentiles (0-100) or probabilities (0-1), matching ``bands.basis``.
        bands: The band settings.

    Returns:
        The name of the first band whose ``min`` each value reaches, else ``bands.otherwise``.
    """
    out = pd.Series(bands.otherwise, index=values.index, dtype="string")
    assigned = pd.Series(False, index=values.index)
    for band in bands.bands:
        hit = (values >= band.min - 1e-12) & ~assigned
        out[hit] = band.name
        assigned |= hit
    return out


def _check_columns(scored: pd.DataFrame, outcomes: set[str]) -> None:
    needed = [*REQUIRED_COLUMNS, *STATUS_COLUMNS, *(probability_column(o) for o in sorted(outcomes))]
    missing = [c for c in needed if c not in scored.columns]
    if missing:
        raise RiskstratError(
            f"scored population: missing column(s) {', '.join(missing)}",
            hint="Score with the champion model(s); add status with attach_status(worklist_status(...)).",
        )
    duplicated = scored["person_id"].duplicated()
    if duplicated.any():
        example = scored.loc[duplicated, "person_id"].iloc[0]
        raise RiskstratError(
            f"scored population: {int(duplicated.sum()):,} repeated person_id(s)",
            details=f"e.g. {example}",
            hint="Score one row per person.",
        )


def practice_positions(scored: pd.DataFrame) -> dict[str, np.ndarray]:
    """Row positions of the people registered with each practice, found in one pass.

    Args:
        scored: Scored population with ``practice_code``.

    Returns:
        Practice code -> ascending row positions (``iloc``) of its people; people
        without a practice are left out, as no MDT can list them.
    """
    return scored.groupby("practice_code", sort=False).indices


def registered_with(
    scored: pd.DataFrame, practices: tuple[str, ...], positions: dict[str, np.ndarray]
) -> pd.DataFrame:
    """The rows of people registered with ``practices``, in the population's row order.

    Keeping the row order means :func:`select_mdt` ranks, breaks ties and counts
    exactly as if it had filtered the whole population itself.

    Args:
        scored: Scored population.
        practices: The MDT's practice codes.
        positions: :func:`practice_positions` of ``scored``.

    Returns:
        The rows of ``scored`` at those practices (labels kept).
    """
    found = [positions[p] for p in practices if p in positions]
    rows = np.unique(np.concatenate(found)) if found else np.array([], dtype=np.intp)
    return scored.iloc[rows]


def select_mdt(
    scored: pd.DataFrame,
    mdt: Mdt,
    bands: RiskBandSettings,
    decisions: pd.DataFrame | None = None,
    rules: DecisionSettings | None = None,
    *,
    week: date | None = None,
    lottery: LotterySettings | None = None,
    cutoff_record: CutoffRecordSettings | None = None,
) -> MdtSelection:
    """Draw up one MDT's list.

    Args:
        scored: Scored population with status flags and ``risk_percentile_<outcome>``
            (:func:`with_risk_percentiles`); the whole population or just the MDT's
            registered people (:func:`registered_with`): the list is the same.
        mdt: The MDT.
        bands: Risk band settings.
        decisions: :func:`decisions_in_force` for this MDT and week, or None (no decisions).
        rules: The decision rules (for the rise in risk that ends a rest); default settings if None.
        week: The list's week; needed when the lottery is on (it seeds the draw).
        lottery: The lottery settings; None or disabled: no draw (the audit's back-test
            judges the model's own ranking this way).
        cutoff_record: How many eligible people below the cut-off to keep in
            :attr:`MdtSelection.near_cutoff`; None: the default (50).

    Returns:
        The list, ranked 1..capacity, with ``rank``, ``probability``, ``risk_percentile``,
        ``risk_band``, ``outcome``, ``on_caseload`` / ``caseload_team`` kept for flagging, and
        ``last_decision`` (the wording of the MDT's latest decision, <NA> if none) and
        ``last_decision_date`` (the week of the list it was made on, None if none).
        When the MDT leaves type 1 opt-outs off they are not in any of its counts.

    Raises:
        RiskstratError: If the lottery is on and the MDT's capacity is below ``lottery.places``,
            or no week is given.
    """
    p_col = probability_column(mdt.outcome)
    rules = rules or DecisionSettings()
    state = decisions if decisions is not None else no_decisions()
    registered = scored.loc[scored["practice_code"].isin(mdt.practices)]
    if mdt.exclusions.type1_opt_out == "exclude":
        # Removed before anything is counted: no count of them is kept, shown or derivable.
        registered = registered.loc[~registered["type1_opt_out"].fillna(False).astype(bool)]
    person = registered["person_id"].astype(str)
    action = person.map(state["action"])
    # A rested person comes back early once their risk has risen enough since the decision.
    risen = registered[p_col].astype(float) >= person.map(state["issued_probability"]).astype(float) + (
        rules.return_if_risk_rises_by / 100 - 1e-9
    )
    excluded: dict[str, int] = {}
    keep = pd.Series(True, index=registered.index)
    rules_applied = [
        ("deceased", registered["deceased"]),
        ("deregistered", registered["deregistered"]),
        ("below_age_floor", registered["age"] < mdt.min_age),
        ("no_score", registered[p_col].isna()),
        # Added to the caseload by the MDT: in the caseload's care now, so off the list whatever
        # active_caseload says (the extract may not show them on a caseload for weeks).
        ("added_to_caseload", action.eq("caseload")),
    ]
    if mdt.exclusions.active_caseload == "exclude":
        rules_applied.append(("active_caseload", registered["on_caseload"]))
    rules_applied.append(("rested", action.eq("rest") & ~risen))
    held: dict[str, str] = {}
    for reason, hit in rules_applied:
        newly = hit.fillna(False).astype(bool) & keep
        excluded[reason] = int(newly.sum())
        keep &= ~newly
        if reason in DECISION_EXCLUSIONS:
            held.update(dict(zip(person[newly], person[newly].map(state["decision"]), strict=True)))
    eligible = registered.loc[keep]
    capacity = mdt.capacity(len(registered))
    draw = lottery if lottery is not None and lottery.enabled and capacity > 0 else None
    if draw is not None:
        _check_lottery(mdt, capacity, draw, week)
    depth = capacity + (cutoff_record or CutoffRecordSettings()).people_below
    if draw is not None:
        depth = max(depth, capacity - draw.places + draw.pool)
    probability = eligible[p_col].astype(float)
    # Only people at or above the depth-th risk can be listed or recorded near the cut-off:
    # sort (and hash) just those (nlargest, not a full sort, for a million people).
    cutoff = probability.nlargest(depth).min() if depth and len(probability) else np.inf
    candidates = eligible.loc[probability >= cutoff].copy()
    candidates["probability"] = probability[probability >= cutoff]
    candidates["_tie"] = tie_break_key(candidates["person_id"])
    candidates = candidates.sort_values(["probability", "_tie", "person_id"], ascending=[False, True, True])
    ranked = candidates.head(depth)
    eligible_rank = np.arange(1, len(ranked) + 1, dtype="int64")
    on_list = eligible_rank <= capacity
    pool = np.zeros(len(ranked), dtype=bool)
    won = np.zeros(len(ranked), dtype=bool)
    seed = ""
    if draw is not None and len(probability) >= capacity:  # fewer eligible than capacity: everyone listed
        first = capacity - draw.places + 1
        pool = (eligible_rank >= first) & (eligible_rank < first + draw.pool)
        seed = lottery_seed(draw.seed, week, mdt.name)  # type: ignore[arg-type]  # week checked above
        won[pool] = draw_lottery(ranked.loc[pool, "person_id"], draw.places, seed)
        on_list = (eligible_rank < first) | won
    near_cutoff = pd.DataFrame(
        {
            "person_id": ranked["person_id"].astype(str).to_numpy(),
            "practice_code": ranked["practice_code"].astype(str).to_numpy(),
            "eligible_rank": eligible_rank,
            "probability": ranked["probability"].to_numpy(dtype="float64"),
            "listed": on_list,
            "lottery_pool": pool,
            "lottery_won": won,
        }
    )
    at_cutoff = (
        float(ranked["probability"].iloc[capacity - 1]) if capacity and len(ranked) >= capacity else math.nan
    )
    listed = ranked.loc[on_list].drop(columns="_tie").reset_index(drop=True)
    listed.insert(0, "rank", np.arange(1, len(listed) + 1, dtype="int64"))
    listed["outcome"] = mdt.outcome
    listed["risk_percentile"] = listed[f"risk_percentile_{mdt.outcome}"].astype(float)
    basis = listed["risk_percentile"] if bands.basis == "percentile" else listed["probability"]
    listed["risk_band"] = risk_band(basis, bands)
    if mdt.exclusions.active_caseload != "flag":
        listed["caseload_team"] = pd.Series(pd.NA, index=listed.index, dtype="string")
    listed_ids = listed["person_id"].astype(str)
    listed["last_decision"] = listed_ids.map(state["decision"]).map(DECISIONS).astype("string")
    listed["last_decision_date"] = listed_ids.map(state["decision_week"]).astype(object)
    listed["last_decision_date"] = listed["last_decision_date"].where(
        listed["last_decision_date"].notna(), None
    )
    return MdtSelection(
        mdt=mdt,
        listed=listed,
        registered=len(registered),
        eligible=len(eligible),
        capacity=capacity,
        excluded=excluded,
        held_by_decision=held,
        near_cutoff=near_cutoff,
        cutoff_probability=at_cutoff,
        lottery_seed=seed,
    )


def _check_lottery(mdt: Mdt, capacity: int, lottery: LotterySettings, week: date | None) -> None:
    """Refuse a draw that cannot be made: more places than the list has, or no week to seed it."""
    if capacity < lottery.places:
        raise RiskstratError(
            f"MDT '{mdt.name}': its capacity this week is {capacity}, fewer than the {lottery.places} "
            "places the lottery fills",
            hint="Lower lottery.places in configs/mdts.yaml, or raise this MDT's capacity.",
        )
    if week is None:
        raise RiskstratError(
            f"MDT '{mdt.name}': the lottery is on but no week was given to seed its draw",
            hint="Pass the list's week to select_worklists/select_mdt.",
        )


def _check_file_names(mdts: list[Mdt]) -> None:
    """Refuse two MDTs whose files would share a name: one would overwrite the other's list."""
    seen: dict[str, str] = {}
    for mdt in mdts:
        if mdt.slug in seen:
            raise RiskstratError(
                f"MDTs '{seen[mdt.slug]}' and '{mdt.name}' would both be written to {mdt.slug}.xlsx",
                hint=(
                    "Give them names that differ in more than case and punctuation (in configs/mdts.yaml, "
                    "or the neighbourhood names of the practice reference file)."
                ),
            )
        seen[mdt.slug] = mdt.name


def with_risk_percentiles(scored: pd.DataFrame, outcomes: Collection[str]) -> pd.DataFrame:
    """A copy of the scored population with ICS-wide ``risk_percentile_<outcome>`` columns.

    Percentiles are taken across everyone scored who is alive and registered, so
    people who died or deregistered get none.

    Args:
        scored: Scored population with status flags (see the module docstring).
        outcomes: The outcomes the MDTs rank by.

    Returns:
        The copy, with ``person_id`` as text.
    """
    scored = scored.copy()
    scored["person_id"] = scored["person_id"].astype(str)
    current = ~(scored["deceased"].astype(bool) | scored["deregistered"].astype(bool))
    for outcome in sorted(outcomes):
        p_col = probability_column(outcome)
        pct = pd.Series(np.nan, index=scored.index)
        pct[current] = risk_percentiles(scored.loc[current, p_col].astype(float))
        scored[f"risk_percentile_{outcome}"] = pct
    return scored


def select_worklists(
    scored: pd.DataFrame,
    mdts: list[Mdt],
    bands: RiskBandSettings,
    decisions: Mapping[str, pd.DataFrame] | None = None,
    rules: DecisionSettings | None = None,
    *,
    week: date | None = None,
    lottery: LotterySettings | None = None,
    cutoff_record: CutoffRecordSettings | None = None,
) -> dict[str, MdtSelection]:
    """Draw up every MDT's list from the scored population.

    Percentiles for risk bands are taken across everyone scored who is alive and
    registered (ICS-wide), per outcome, so a band means the same in every MDT.

    Args:
        scored: Scored population with status flags (see the module docstring).
        mdts: The resolved MDTs.
        bands: Risk band settings.
        decisions: MDT name -> :func:`decisions_in_force` this week; None or a missing
            MDT: no decisions.
        rules: The decision rules (``decisions`` in ``configs/mdts.yaml``).
        week: The lists' week (seeds the lottery's draws; needed when it is on).
        lottery: ``lottery`` in ``configs/mdts.yaml``; None: no draw.
        cutoff_record: ``cutoff_record`` in ``configs/mdts.yaml``; None: the default.

    Returns:
        MDT name -> its selection, in the order of ``mdts``. Each list holds only
        people registered with that MDT's practices.
    """
    if not mdts:
        raise RiskstratError(
            "no MDTs to draw up lists for",
            hint="List mdts in configs/mdts.yaml, or give the practices in the practice reference file neighbourhoods.",
        )
    _check_file_names(mdts)
    outcomes = {m.outcome for m in mdts}
    _check_columns(scored, outcomes)
    scored = with_risk_percentiles(scored, outcomes)
    # Find each practice's people once, so each MDT works on its own rows only.
    positions = practice_positions(scored)
    decisions = decisions or {}
    return {
        mdt.name: select_mdt(
            registered_with(scored, mdt.practices, positions),
            mdt,
            bands,
            decisions.get(mdt.name),
            rules,
            week=week,
            lottery=lottery,
            cutoff_record=cutoff_record,
        )
        for mdt in mdts
    }
