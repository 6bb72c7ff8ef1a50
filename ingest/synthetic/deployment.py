"""A simulated past deployment: weekly lists, enrolment and a known effect on emergency admissions.

Issue 22's estimators need a history whose truth is known. With ``deployment`` on in
``configs/synthetic.yaml`` (the default, with no effect), the generator simulates a year of
weekly lists before the extract date:

1. **Scores** (pass 1, ``generate.deployment_population``): each person's latent path and
   rates are drawn exactly as for their events (same seeds), and at every deployment week's
   data date (the Sunday before its Monday) the person's score is
   ``1 - exp(-rate * noise)``, where ``rate`` is their true annual emergency admission rate plus
   their annual death hazard in that month (the outcome the monitoring and the impact evaluation
   read is "emergency admission or death") and ``noise ~ lognormal(0, score_noise)`` is fixed per
   person (a model's error).
   People not alive and registered at the data date have no score.
2. **Lists** (:func:`simulate_deployment`, pure numpy/pandas): one MDT per neighbourhood of
   the practice map (named as ``configs/mdts.yaml``'s default resolves them: the neighbourhood's
   name). Each week, the MDT's eligible people (scored, aged ``min_age`` or more, not enrolled
   on one of the last ``enrolment_weeks`` weeks' lists) are ranked by score, ties broken as the
   real lists break them (SHA-256 of the person ID, then the ID), and the top
   ``capacity_people`` listed; with ``lottery_places`` the last places are drawn among the pool
   exactly as the real lottery draws them (:func:`lottery_seed`, :func:`draw_lottery`). Each
   listed person is enrolled with probability ``enrolment_share``, from a day or few after the
   week's Monday for ``enrolment_weeks`` weeks.
3. **Events** (pass 2): every chunk's events are drawn as without the deployment; then each
   primary emergency admission (an admitted A&E attendance or a direct emergency admission)
   whose day falls inside one of the person's enrolment periods is dropped with probability
   ``admission_effect`` (a uniform per admission from a stream of its own: the same seed with
   effect 0 and 0.2 gives the same population but for the dropped admissions), with its A&E
   attendance and the readmissions that followed it. With ``admission_effect: 0`` no event
   changes; only the caseload table gains the enrolments.
4. **Truth** (:func:`deployment_truth`): for every row of the cut-off record, the probability of
   at least one primary emergency admission in ``(data_date, data_date + truth_horizon_days]``
   with no enrolment ever (``p_none``) and given the person's actual enrolments (``p_actual``),
   from the rates in closed form. It covers primary emergency admissions (not readmissions,
   nor the short admissions before some deaths) and ignores death and leaving in the window, so
   it approximates the outcome the evaluation counts.

``ingest`` cannot import ``worklists``: everything here returns plain frames in the formats of
``worklists/<week>/history.parquet``, ``assignment.parquet`` and the decision history;
``pipelines/generate.py`` writes them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd

from riskstrat.ingest.synthetic.settings import Deployment
from riskstrat.ingest.synthetic.timeline import DAYS_PER_YEAR, Timeline, cumulative_at, to_day

OUTCOME = "emergency_admission"
"""The outcome the simulated lists rank by."""
SCORE_MODEL = "synthetic deployment score"
"""How stored scores of simulated weeks name their 'model' (interfaces B)."""
DECISION_SOURCE = "synthetic-deployment"
"""``source_digest`` of the simulated decisions (interfaces E)."""
ENROLLED = "added_to_caseload"
"""The decision recorded for an enrolled person; other listed people get :data:`NOT_ENROLLED`."""
NOT_ENROLLED = "not_discussed"
TEAM_SUFFIX = " proactive care"
"""Caseload team of an enrolment: ``"<neighbourhood> proactive care"``."""
DECISION_HOUR = 18
"""Simulated decisions are imported at 18:00 UTC on the list's Monday."""
START_DAYS = (1, 5)
"""An enrolment starts 1 to 4 days after its list's Monday (Tuesday to Friday)."""

NOISE_STREAM = (1 << 20) + 16
"""Spawn key (under each chunk's seed) of the score noise; the truth's stream is ``1 << 20``."""
THINNING_STREAM = (1 << 20) + 17
"""Spawn key (under each chunk's seed) of the uniforms that decide which admissions enrolment prevents."""
ENROLMENT_STREAM = (1 << 20) + 18
"""Spawn key (under the run's seed) of the enrolment draws."""

ASSIGNMENT_COLUMNS: tuple[str, ...] = (
    "week",
    "data_date",
    "mdt",
    "person_id",
    "practice_code",
    "outcome",
    "eligible_rank",
    "probability",
    "cutoff_probability",
    "capacity",
    "listed",
    "lottery_pool",
    "lottery_won",
    "lottery_seed",
)
"""The cut-off record's columns (interfaces C; ``worklists.assignment.ASSIGNMENT_COLUMNS``)."""

HISTORY_COLUMNS: tuple[str, ...] = ("week", "mdt", "person_id", "practice_code", "rank", "probability")
"""History columns but the risk band (``worklists.history.HISTORY_COLUMNS``; the band is added when written)."""

DECISION_COLUMNS: tuple[str, ...] = (
    "person_id",
    "mdt",
    "week",
    "decision",
    "issued_probability",
    "imported_at",
    "source_digest",
)
"""The decision history's columns (``worklists.decisions.DECISION_HISTORY_COLUMNS``)."""

SCORE_COLUMNS: tuple[str, ...] = (
    "week",
    "data_date",
    "person_id",
    "practice_code",
    "mdt",
    "p_emergency_admission",
)
"""A stored week's scores (interfaces B)."""

TRUTH_COLUMNS: tuple[str, ...] = ("week", "mdt", "person_id", "listed", "enrolled", "p_none", "p_actual")
"""``truth/deployment.parquet`` (interfaces F)."""


def data_date_of(week: date) -> date:
    """A simulated week's data date: the Sunday before its Monday."""
    return week - timedelta(days=1)


def deployment_weeks(settings: Deployment, extract_date: date) -> list[date]:
    """The simulated weeks (Mondays), oldest first."""
    last = settings.last_week(extract_date)
    count = (last - settings.start_week).days // 7 + 1
    return [settings.start_week + timedelta(days=7 * k) for k in range(max(count, 0))]


def tagged_generator(seed_seq: np.random.SeedSequence, tag: int) -> np.random.Generator:
    """A stream derived from ``seed_seq`` by spawn key ``tag``, drawing nothing from the stream itself."""
    return np.random.default_rng(
        np.random.SeedSequence(seed_seq.entropy, spawn_key=(*seed_seq.spawn_key, tag))
    )


def chunk_scores(
    emergency_rate: np.ndarray,
    death_rate: np.ndarray,
    timeline: Timeline,
    entry_day: np.ndarray,
    exit_day: np.ndarray,
    death_day: np.ndarray,
    noise: np.ndarray,
    data_days: np.ndarray,
) -> np.ndarray:
    """One chunk's deployment scores at every data date.

    Args:
        emergency_rate: Annual emergency admission rate per person and month (people, months).
        death_rate: Annual death hazard per person and month (people, months): the score is of
            "emergency admission or death", the outcome the realised performance counts.
        timeline: The monthly grid.
        entry_day: First day each person is in the data.
        exit_day: Day each person leaves the area (inf if never).
        death_day: Day of death (inf if none).
        noise: Each person's multiplicative error.
        data_days: Day numbers of the data dates.

    Returns:
        float32 (people, weeks): ``1 - exp(-(emergency + death) * noise)`` with the month's annual
        rates, NaN when not alive and registered.
    """
    month = np.minimum(timeline.month_of(np.asarray(data_days)), timeline.months - 1)
    rate = emergency_rate[:, month] + death_rate[:, month]
    score = -np.expm1(-rate * noise[:, None])
    day = np.asarray(data_days, dtype=float)[None, :]
    alive = (entry_day[:, None] <= day) & (day < exit_day[:, None]) & (death_day[:, None] > day)
    return np.where(alive, score, np.nan).astype(np.float32)


@dataclass(frozen=True)
class DeploymentPopulation:
    """Pass 1: everyone's scores at every simulated week, in the order chunks are generated.

    Attributes:
        person_id: Person IDs.
        practice_code: Practice at the extract date (practices do not change in the synthetic history).
        mdt: The MDT whose list covers the practice (its neighbourhood's name).
        birth_day: Day of birth.
        scores: float32 (people, weeks); NaN = not alive and registered at the data date.
        chunk_starts: Index of each chunk's first person, plus the total (chunks + 1 values).
    """

    person_id: np.ndarray
    practice_code: np.ndarray
    mdt: np.ndarray
    birth_day: np.ndarray
    scores: np.ndarray
    chunk_starts: np.ndarray


def lottery_seed(seed: int, week: date, mdt: str) -> str:
    """The seed of one MDT's draw in one week, as the real lottery makes it (interfaces D)."""
    return hashlib.sha256(f"{seed}|{week.isoformat()}|{mdt}".encode()).hexdigest()


def draw_lottery(pool: np.ndarray, places: int, seed: str) -> np.ndarray:
    """Which pool members win: the ``places`` with the smallest ``sha256(f"{seed}|{person_id}")``.

    The same rule as ``worklists.selection.draw_lottery`` (a test checks they agree).
    """
    keys = np.array([hashlib.sha256(f"{seed}|{pid}".encode()).hexdigest() for pid in pool], dtype=object)
    won = np.zeros(len(keys), dtype=bool)
    won[np.argsort(keys, kind="stable")[:places]] = True
    return won


def _tie_keys(person_id: np.ndarray) -> np.ndarray:
    """The lists' tie-break key: the first 16 hex digits of SHA-256(person_id)."""
    return np.array([hashlib.sha256(str(p).encode()).hexdigest()[:16] for p in person_id], dtype=object)


@dataclass
class ChunkDeployment:
    """What pass 2 needs for one chunk: enrolment periods and the cut-off record's rows (chunk-local people).

    Attributes:
        effect: ``admission_effect``.
        period_person, period_start, period_end: Each enrolment: the person (row in the chunk),
            first day and the day after the last (admissions on days ``start <= day < end`` are in it).
        period_team: The enrolment's caseload team.
        truth_person, truth_day, truth_row: Each cut-off record row of the chunk's people: the
            person, the data date's day number and the row's position in the whole record.
        horizon_days: ``truth_horizon_days``.
    """

    effect: float
    period_person: np.ndarray
    period_start: np.ndarray
    period_end: np.ndarray
    period_team: np.ndarray
    truth_person: np.ndarray
    truth_day: np.ndarray
    truth_row: np.ndarray
    horizon_days: int

    def enrolled_on(self, person: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Whether each (person, day) falls inside one of the person's enrolment periods."""
        return in_periods(person, day, self.period_person, self.period_start, self.period_end)

    def prevented(self, person: np.ndarray, day: np.ndarray, uniform: np.ndarray) -> np.ndarray:
        """Which admissions enrolment prevents: inside an enrolment and ``uniform < effect``."""
        if self.effect <= 0 or self.period_person.size == 0:
            return np.zeros(np.shape(person), dtype=bool)
        return self.enrolled_on(person, day) & (uniform < self.effect)


def in_periods(
    person: np.ndarray, day: np.ndarray, p_person: np.ndarray, p_start: np.ndarray, p_end: np.ndarray
) -> np.ndarray:
    """Whether each (person, day) lies in one of that person's periods ``[start, end)`` (periods do not overlap)."""
    person = np.asarray(person, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    if p_person.size == 0 or person.size == 0:
        return np.zeros(person.shape, dtype=bool)
    span = np.int64(1 << 24)  # day numbers are below 2**24 (year 47,900)
    keys = p_person.astype(np.int64) * span + p_start.astype(np.int64)
    order = np.argsort(keys, kind="stable")
    keys, ends, owner = keys[order], p_end.astype(np.int64)[order], p_person.astype(np.int64)[order]
    at = np.searchsorted(keys, person * span + day, side="right") - 1
    found = at >= 0
    at = np.maximum(at, 0)
    return found & (owner[at] == person) & (day < ends[at])


@dataclass
class SimulatedDeployment:
    """The simulated deployment: lists, enrolments and the cut-off record.

    Attributes:
        settings: The deployment settings.
        weeks: The simulated weeks (Mondays).
        population: Pass 1's scores.
        assignments: The cut-off record of every week and MDT (:data:`ASSIGNMENT_COLUMNS`, ``week``
            and ``data_date`` as dates), plus ``person`` (index in ``population``) and ``enrolled``.
        enrolments: ``person``, ``person_id``, ``mdt``, ``week``, ``start_day``, ``end_day``.
        extract_day: The extract date's day number.
    """

    settings: Deployment
    weeks: tuple[date, ...]
    population: DeploymentPopulation
    assignments: pd.DataFrame
    enrolments: pd.DataFrame
    extract_day: int

    def history(self, week: date) -> pd.DataFrame:
        """The week's published lists as history rows (:data:`HISTORY_COLUMNS`; the risk band is added on writing)."""
        rows = self.assignments.loc[(self.assignments["week"] == week) & self.assignments["listed"]]
        rows = rows.sort_values(["mdt", "eligible_rank"], kind="stable")
        rank = rows.groupby("mdt", sort=False).cumcount().to_numpy() + 1
        return pd.DataFrame(
            {
                "week": week.isoformat(),
                "mdt": rows["mdt"].to_numpy(dtype=object),
                "person_id": rows["person_id"].to_numpy(dtype=object),
                "practice_code": rows["practice_code"].to_numpy(dtype=object),
                "rank": rank.astype("int64"),
                "probability": rows["probability"].to_numpy(dtype="float64"),
            }
        )

    def assignment(self, week: date) -> pd.DataFrame:
        """The week's cut-off record (:data:`ASSIGNMENT_COLUMNS`)."""
        rows = self.assignments.loc[self.assignments["week"] == week, list(ASSIGNMENT_COLUMNS)]
        return rows.reset_index(drop=True)

    def decisions(self) -> pd.DataFrame:
        """The MDTs' simulated decisions (:data:`DECISION_COLUMNS`): enrolled people added to the caseload, others not discussed."""
        listed = self.assignments.loc[self.assignments["listed"]]
        imported = [datetime.combine(w, time(DECISION_HOUR)) for w in listed["week"]]
        frame = pd.DataFrame(
            {
                "person_id": listed["person_id"].to_numpy(dtype=object),
                "mdt": listed["mdt"].to_numpy(dtype=object),
                "week": [w.isoformat() for w in listed["week"]],
                "decision": np.where(listed["enrolled"].to_numpy(dtype=bool), ENROLLED, NOT_ENROLLED).astype(
                    object
                ),
                "issued_probability": listed["probability"].to_numpy(dtype="float64"),
                "imported_at": pd.to_datetime(pd.Series(imported, dtype="datetime64[us]")).to_numpy(),
                "source_digest": DECISION_SOURCE,
            },
            columns=list(DECISION_COLUMNS),
        )
        return frame.sort_values(["mdt", "week", "person_id"], ignore_index=True)

    def scored_weeks(self) -> list[date]:
        """The weeks whose whole population's scores are stored: every ``scores_every_weeks``-th week."""
        return list(self.weeks[:: self.settings.scores_every_weeks])

    def scores(self, week: date) -> pd.DataFrame:
        """The whole scored population of one week (:data:`SCORE_COLUMNS`): everyone alive and registered.

        ``week`` and ``data_date`` are datetime64 (written as date32).
        """
        column = self.weeks.index(week)
        values = self.population.scores[:, column]
        scored = ~np.isnan(values)
        n = int(scored.sum())
        return pd.DataFrame(
            {
                "week": np.full(n, np.datetime64(week, "D")),
                "data_date": np.full(n, np.datetime64(data_date_of(week), "D")),
                "person_id": self.population.person_id[scored],
                "practice_code": self.population.practice_code[scored],
                "mdt": self.population.mdt[scored],
                "p_emergency_admission": values[scored].astype("float64"),
            }
        )

    def chunk(self, index: int) -> ChunkDeployment:
        """Pass 2's view of chunk ``index``: its people's enrolment periods and cut-off record rows."""
        first, stop = self.population.chunk_starts[index], self.population.chunk_starts[index + 1]
        enrolments = self.enrolments
        mine = (enrolments["person"] >= first) & (enrolments["person"] < stop)
        own = enrolments.loc[mine]
        rows = self.assignments["person"].between(first, stop - 1).to_numpy()
        record = self.assignments.loc[rows]
        return ChunkDeployment(
            effect=self.settings.admission_effect,
            period_person=(own["person"].to_numpy(dtype=np.int64) - first),
            period_start=own["start_day"].to_numpy(dtype=np.int64),
            period_end=own["end_day"].to_numpy(dtype=np.int64),
            period_team=(own["mdt"].astype(str) + TEAM_SUFFIX).to_numpy(dtype=object),
            truth_person=record["person"].to_numpy(dtype=np.int64) - first,
            truth_day=np.array([to_day(d) for d in record["data_date"]], dtype=np.int64),
            truth_row=np.flatnonzero(rows),
            horizon_days=self.settings.truth_horizon_days,
        )

    def truth(self, frames: list[pd.DataFrame]) -> pd.DataFrame:
        """``truth/deployment.parquet`` (:data:`TRUTH_COLUMNS`) from every chunk's :func:`deployment_truth`."""
        found = (
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame(columns=["row", "p_none", "p_actual"])
        )
        found = found.set_index("row").reindex(np.arange(len(self.assignments)))
        record = self.assignments
        return pd.DataFrame(
            {
                "week": record["week"].to_numpy(),
                "mdt": record["mdt"].to_numpy(dtype=object),
                "person_id": record["person_id"].to_numpy(dtype=object),
                "listed": record["listed"].to_numpy(dtype=bool),
                "enrolled": record["enrolled"].to_numpy(dtype=bool),
                "p_none": found["p_none"].to_numpy(dtype="float64"),
                "p_actual": found["p_actual"].to_numpy(dtype="float64"),
            }
        )

    def metadata(self) -> dict:
        """The deployment settings and weeks, for the truth file's metadata (JSON-able)."""
        return {
            "settings": self.settings.model_dump(mode="json"),
            "weeks": [w.isoformat() for w in self.weeks],
            "outcome": OUTCOME,
            "truth": "probability of >= 1 primary emergency admission (admitted A&E attendance or direct "
            "emergency admission; not readmissions) in (data_date, data_date + truth_horizon_days]; "
            "p_none: never enrolled; p_actual: given the person's enrolments",
        }


def simulate_deployment(
    population: DeploymentPopulation, settings: Deployment, weeks: list[date], seed: int, extract_date: date
) -> SimulatedDeployment:
    """Draw up every simulated week's lists, enrol people, and keep the cut-off record.

    Args:
        population: Pass 1's scores.
        settings: The deployment settings.
        weeks: The simulated weeks (:func:`deployment_weeks`).
        seed: The run's seed (enrolment draws and the lottery's seed).
        extract_date: The extract date.

    Returns:
        The deployment.
    """
    rng = tagged_generator(np.random.SeedSequence(seed), ENROLMENT_STREAM)
    capacity, places = settings.capacity_people, settings.lottery_places
    pool_size = settings.lottery_pool if places else 0
    depth = max(capacity + settings.people_below, capacity - places + pool_size)
    # Each MDT's people in the lists' tie-break order, so a stable sort by score breaks ties as they do.
    tie = _tie_keys(population.person_id)
    teams: dict[str, np.ndarray] = {}
    for name in sorted({str(m) for m in population.mdt}):
        members = np.flatnonzero(population.mdt == name)
        order = np.lexsort((population.person_id[members].astype(str), tie[members]))
        teams[name] = members[order]
    blocked_until = np.full(population.person_id.size, -1, dtype=np.int64)
    records: list[dict[str, np.ndarray]] = []
    enrolments: list[dict[str, np.ndarray]] = []
    for w, week in enumerate(weeks):
        data_day = to_day(data_date_of(week))
        monday = to_day(week)
        for name, members in teams.items():
            score = population.scores[members, w]
            age = np.floor((data_day - population.birth_day[members]) / DAYS_PER_YEAR)
            eligible = ~np.isnan(score) & (age >= settings.min_age) & (blocked_until[members] < w)
            people, values = members[eligible], score[eligible].astype(np.float64)
            k = min(depth, people.size)
            if k == 0:
                continue
            threshold = np.partition(-values, k - 1)[k - 1]
            near = np.flatnonzero(-values <= threshold)
            near = near[np.lexsort((near, -values[near]))][:k]  # by score, then tie-break order
            people, values = people[near], values[near]
            rank = np.arange(1, k + 1)
            listed = rank <= capacity
            pool = np.zeros(k, dtype=bool)
            won = np.zeros(k, dtype=bool)
            draw_seed = ""
            if places and k > capacity - places:
                pool = (rank > capacity - places) & (rank <= capacity - places + pool_size)
                draw_seed = lottery_seed(seed, week, name)
                won[pool] = draw_lottery(population.person_id[people[pool]], places, draw_seed)
                listed = (rank <= capacity - places) | won
            keep = listed | (rank <= capacity + settings.people_below) | pool
            enrol = rng.random(int(listed.sum())) < settings.enrolment_share
            start = monday + rng.integers(*START_DAYS, int(listed.sum()))
            enrolled = np.zeros(k, dtype=bool)
            enrolled[np.flatnonzero(listed)[enrol]] = True
            chosen = people[enrolled]
            blocked_until[chosen] = w + settings.enrolment_weeks
            enrolments.append(
                {
                    "person": chosen,
                    "week": np.full(chosen.size, w),
                    "mdt": np.full(chosen.size, name, dtype=object),
                    "start_day": start[enrol],
                    "end_day": start[enrol] + 7 * settings.enrolment_weeks,
                }
            )
            cutoff = values[capacity - 1] if k >= capacity else np.nan
            records.append(
                {
                    "week": np.full(int(keep.sum()), w),
                    "mdt": np.full(int(keep.sum()), name, dtype=object),
                    "person": people[keep],
                    "eligible_rank": rank[keep],
                    "probability": values[keep],
                    "cutoff_probability": np.full(int(keep.sum()), cutoff),
                    "listed": listed[keep],
                    "lottery_pool": pool[keep],
                    "lottery_won": won[keep],
                    "lottery_seed": np.where(pool[keep], draw_seed, "").astype(object),
                    "enrolled": enrolled[keep],
                }
            )
    assignments = _assignment_frame(records, population, weeks, capacity)
    enrolled_frame = _enrolment_frame(enrolments, population, weeks)
    return SimulatedDeployment(
        settings, tuple(weeks), population, assignments, enrolled_frame, to_day(extract_date)
    )


def _assignment_frame(
    records: list[dict[str, np.ndarray]], population: DeploymentPopulation, weeks: list[date], capacity: int
) -> pd.DataFrame:
    keys = ("week", "mdt", "person", "eligible_rank", "probability", "cutoff_probability", "listed",
            "lottery_pool", "lottery_won", "lottery_seed", "enrolled")  # fmt: skip
    if records:
        cols = {k: np.concatenate([r[k] for r in records]) for k in keys}
    else:
        cols = {k: np.empty(0, dtype=object if k in ("mdt", "lottery_seed") else np.int64) for k in keys}
    week = np.array([*weeks, date.min], dtype=object)[cols["week"].astype(np.int64)]
    person = cols["person"].astype(np.int64)
    return pd.DataFrame(
        {
            "week": week,
            "data_date": np.array([data_date_of(w) for w in week], dtype=object),
            "mdt": cols["mdt"].astype(object),
            "person_id": population.person_id[person].astype(object),
            "practice_code": population.practice_code[person].astype(object),
            "outcome": OUTCOME,
            "eligible_rank": cols["eligible_rank"].astype("int64"),
            "probability": cols["probability"].astype("float64"),
            "cutoff_probability": cols["cutoff_probability"].astype("float64"),
            "capacity": np.full(person.size, capacity, dtype="int64"),
            "listed": cols["listed"].astype(bool),
            "lottery_pool": cols["lottery_pool"].astype(bool),
            "lottery_won": cols["lottery_won"].astype(bool),
            "lottery_seed": cols["lottery_seed"].astype(object),
            "person": person,
            "enrolled": cols["enrolled"].astype(bool),
        }
    )


def _enrolment_frame(
    enrolments: list[dict[str, np.ndarray]], population: DeploymentPopulation, weeks: list[date]
) -> pd.DataFrame:
    if enrolments:
        cols = {k: np.concatenate([e[k] for e in enrolments]) for k in enrolments[0]}
    else:
        cols = {k: np.empty(0, dtype=np.int64) for k in ("person", "week", "mdt", "start_day", "end_day")}
    person = cols["person"].astype(np.int64)
    return pd.DataFrame(
        {
            "person": person,
            "person_id": population.person_id[person].astype(object),
            "mdt": cols["mdt"].astype(object),
            "week": np.array([*weeks, date.min], dtype=object)[cols["week"].astype(np.int64)],
            "start_day": cols["start_day"].astype(np.int64),
            "end_day": cols["end_day"].astype(np.int64),
        }
    )


def deployment_truth(emergency_rate: np.ndarray, timeline: Timeline, chunk: ChunkDeployment) -> pd.DataFrame:
    """The truth of one chunk's cut-off record rows: p_none and p_actual (see the module docstring).

    An admission on day ``k`` happens at a time in ``[k, k + 1)``, so the window
    ``(d, d + H]`` of days is ``[d + 1, d + H + 1)`` in time, and an enrolment
    ``[start, end)`` of days is the same interval in time.

    Args:
        emergency_rate: The chunk's annual emergency admission rates (people, months).
        timeline: The monthly grid.
        chunk: The chunk's deployment.

    Returns:
        ``row`` (position in the whole cut-off record), ``p_none``, ``p_actual``.
    """
    person, day = chunk.truth_person, chunk.truth_day.astype(float)
    if person.size == 0:
        return pd.DataFrame({"row": np.empty(0, np.int64), "p_none": np.empty(0), "p_actual": np.empty(0)})
    rate = emergency_rate[person]
    begin, end = day + 1, day + chunk.horizon_days + 1
    expected = cumulative_at(rate, timeline, end) - cumulative_at(rate, timeline, begin)
    enrolled = np.zeros(person.size)
    if chunk.effect > 0 and chunk.period_person.size:
        # Every (row, period of the same person) pair: few, since few people are enrolled.
        rows = pd.DataFrame({"i": np.arange(person.size), "person": person})
        periods = pd.DataFrame(
            {"person": chunk.period_person, "start": chunk.period_start, "stop": chunk.period_end}
        )
        pairs = rows.merge(periods, on="person")
        if len(pairs):
            i = pairs["i"].to_numpy()
            lo = np.maximum(begin[i], pairs["start"].to_numpy(dtype=float))
            hi = np.minimum(end[i], pairs["stop"].to_numpy(dtype=float))
            overlap = hi > lo
            i, lo, hi = i[overlap], lo[overlap], hi[overlap]
            inside = cumulative_at(rate[i], timeline, hi) - cumulative_at(rate[i], timeline, lo)
            np.add.at(enrolled, i, inside)
    return pd.DataFrame(
        {
            "row": chunk.truth_row,
            "p_none": -np.expm1(-expected),
            "p_actual": -np.expm1(-(expected - chunk.effect * enrolled)),
        }
    )


def enrolment_caseload(
    chunk: ChunkDeployment, person_text, visible_to: np.ndarray, extract_day: int
) -> pd.DataFrame:
    """The chunk's enrolments as caseload rows (contract columns; dates as datetime64[s]).

    An enrolment ends early when the person dies or leaves; one still running at the extract
    date has no end; one that would start after the person died or left is not shown.

    Args:
        chunk: The chunk's deployment.
        person_text: Callable giving person IDs of chunk rows (the event builder's ``person_text``).
        visible_to: Last day each person is in the data.
        extract_day: The extract date's day number.
    """
    person = chunk.period_person
    start = chunk.period_start.astype(float)
    end = (chunk.period_end - 1).astype(float)  # the last enrolled day
    last = visible_to[person]
    shown = start <= np.minimum(last, extract_day)
    end = np.minimum(end, last)
    end = np.where(end >= extract_day, np.nan, end)
    person, start, end, team = person[shown], start[shown], end[shown], chunk.period_team[shown]
    return pd.DataFrame(
        {
            "person_id": person_text(person),
            "team": pd.array(team.astype(str), dtype="str"),
            "start_date": _dates(start),
            "end_date": _dates(end),
        }
    )


def _dates(day: np.ndarray) -> pd.Series:
    valid = np.isfinite(day)
    values = np.where(valid, day, 0).astype(np.int64).astype("datetime64[D]").astype("datetime64[s]")
    return pd.Series(values).where(valid)


__all__ = [
    "ASSIGNMENT_COLUMNS",
    "ChunkDeployment",
    "DeploymentPopulation",
    "SimulatedDeployment",
    "chunk_scores",
    "deployment_truth",
    "deployment_weeks",
    "simulate_deployment",
]
