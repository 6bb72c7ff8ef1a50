"""Monitoring scenarios: failures a deployed risk tool meets between retrains.

Three scenarios, all off by default (``configs/synthetic.yaml``), each from a start date:

- ``feed_stop``: one practice's GP feed (appointments and prescriptions by default) stops
  reaching the extract: rows of its registered people dated from ``start_date`` are missing.
- ``coding_change``: after a coding change a share of one condition's gp_diagnoses records
  dated from ``start_date`` is missing.
- ``new_residents``: extra people (older, by default) move into one district and register over
  a few weeks from ``start_date``: a new housing estate, or an ageing population.

The first two are applied to each chunk's finished tables with a random stream of their own,
so every other row (and the truth) is exactly as without them. New residents are extra rows of
the population plan, generated in chunks of their own with their own seeds, so the people of the
ordinary chunks are exactly as without them too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from riskstrat.errors import RiskstratError
from riskstrat.ingest.contract import CONTRACT
from riskstrat.ingest.synthetic.practices import assign_practices
from riskstrat.ingest.synthetic.settings import SyntheticSettings
from riskstrat.ingest.synthetic.timeline import DAYS_PER_YEAR, Timeline, to_day

SCENARIO_STREAM = (1 << 20) + 1
"""Spawn key of the record scenarios' random stream (the truth's stream is ``1 << 20``)."""
NEW_RESIDENTS_TAG = 0x6E6577
"""Mixed into the run's seed for the new residents' draws and chunk seeds."""
ARRIVAL_COLUMN = "arrival_day"
"""Column of the plan's residents holding a new resident's registration day (NaN for everyone else)."""


def scenario_generator(rng: np.random.Generator) -> np.random.Generator:
    """The record scenarios' stream, derived from a chunk's seed without drawing from its stream."""
    seed = rng.bit_generator.seed_seq
    key = (*seed.spawn_key, SCENARIO_STREAM)
    return np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=key))


# -- feed stop and coding change (finished tables) -----------------------------------------------
def feed_stop_practice(settings: SyntheticSettings, practices: pd.DataFrame, residents: pd.DataFrame) -> str:
    """The practice whose feed stops: the configured one, or the one with the most planned people.

    Args:
        settings: Synthetic settings (``feed_stop.practice_code``).
        practices: The plan's practices (``practice_code`` per row).
        residents: The plan's residents (``practice_index``).

    Returns:
        The practice code.

    Raises:
        RiskstratError: The configured practice is not one of the generated practices.
    """
    codes = practices["practice_code"].to_numpy()
    chosen = settings.feed_stop.practice_code
    if chosen is None:
        counts = np.bincount(residents["practice_index"].to_numpy(), minlength=codes.size)
        return str(codes[int(np.argmax(counts))])
    if chosen not in set(codes):
        raise RiskstratError(
            f"feed_stop.practice_code {chosen} is not one of the {codes.size} generated practices",
            hint=f"leave it empty for the largest practice, or use a code from reference/practices.csv "
            f"(e.g. {codes[0]})",
        )
    return chosen


def _dated_from(frame: pd.DataFrame, table: str, start: Any) -> np.ndarray:
    column = CONTRACT[table].event_date
    return (frame[column] >= pd.Timestamp(start)).to_numpy(dtype=bool, na_value=False)


def apply_record_scenarios(
    tables: dict[str, pd.DataFrame],
    settings: SyntheticSettings,
    person_id: np.ndarray,
    practice_code: np.ndarray,
    stopped_practice: str | None,
    rng: np.random.Generator,
) -> dict[str, pd.DataFrame]:
    """Apply the feed-stop and coding-change scenarios to one chunk's finished tables.

    Args:
        tables: The chunk's contract tables.
        settings: Synthetic settings.
        person_id: The chunk's person IDs.
        practice_code: Each person's practice code (same order).
        stopped_practice: The feed-stop practice (None when the scenario is off).
        rng: The chunk's stream; only a stream derived from its seed is drawn from.

    Returns:
        The tables, with the scenarios' rows removed (others unchanged, in order).
    """
    tables = dict(tables)
    stop = settings.feed_stop
    if stop.enabled and stopped_practice is not None:
        registered = person_id[practice_code == stopped_practice]
        for name in stop.tables:
            frame = tables[name]
            lost = frame["person_id"].isin(registered).to_numpy() & _dated_from(frame, name, stop.start_date)
            tables[name] = frame[~lost].reset_index(drop=True)
    change = settings.coding_change
    if change.enabled:
        stream = scenario_generator(rng)
        frame = tables["gp_diagnoses"]
        hit = (frame["condition"] == change.condition).to_numpy(dtype=bool, na_value=False) & _dated_from(
            frame, "gp_diagnoses", change.start_date
        )
        lost = hit & (stream.random(len(frame)) < change.share_lost)
        tables["gp_diagnoses"] = frame[~lost].reset_index(drop=True)
    return tables


# -- new residents (the population plan) -------------------------------------------------------
def new_residents(
    settings: SyntheticSettings,
    timeline: Timeline,
    lsoas: pd.DataFrame,
    practices: pd.DataFrame,
    existing_ids: np.ndarray,
    people: int,
    seed: int,
) -> tuple[pd.DataFrame, tuple[np.random.SeedSequence, ...]]:
    """Draw the new residents' homes, ages, practices, IDs and registration days.

    Args:
        settings: Synthetic settings (``new_residents``).
        timeline: The history's timeline.
        lsoas: Footprint LSOAs.
        practices: The plan's practices.
        existing_ids: Everyone else's person IDs (new IDs never repeat them).
        people: The population size the share applies to.
        seed: The run's seed.

    Returns:
        Rows like the plan's residents (``lsoa_index``, ``age`` at the extract date,
        ``practice_index``, ``person_id``) plus ``arrival_day``, and one seed per chunk of them.
        Empty (and no seeds) when the scenario is off.
    """
    scenario = settings.new_residents
    if not scenario.enabled:
        return pd.DataFrame(), ()
    count = max(1, round(scenario.share * people))
    root = np.random.SeedSequence([seed, NEW_RESIDENTS_TAG])
    n_chunks = -(-count // settings.chunk_size)
    plan_seed, *chunk_seeds = root.spawn(1 + n_chunks)
    rng = np.random.default_rng(plan_seed)
    lad = scenario.lad_code or settings.lad_codes[0]
    local = np.flatnonzero(lsoas["lad_code"].to_numpy() == lad)
    weights = lsoas["population"].to_numpy(dtype=float)[local]
    lsoa_index = rng.choice(local, size=count, p=weights / weights.sum())
    start = to_day(scenario.start_date)
    arrival = start + rng.integers(0, 7 * scenario.arrival_weeks, count)
    arrival = np.minimum(arrival, timeline.extract_day)
    age_on_arrival = rng.uniform(scenario.age_min, scenario.age_max + 1, count)
    age_at_extract = age_on_arrival + (timeline.extract_day - arrival) / DAYS_PER_YEAR
    practice_index = assign_practices(lsoa_index, lsoas, practices, rng)
    rows = pd.DataFrame(
        {
            "lsoa_index": lsoa_index,
            "age": age_at_extract,
            "practice_index": practice_index,
            "person_id": _new_ids(count, set(existing_ids), rng),
            ARRIVAL_COLUMN: arrival.astype(float),
        }
    )
    return rows, tuple(chunk_seeds)


def _new_ids(count: int, taken: set[str], rng: np.random.Generator) -> np.ndarray:
    """'P' + 9 digits like everyone's, none repeating an existing ID."""
    drawn = rng.integers(100_000_000, 1_000_000_000, 2 * count + 100)
    _, first = np.unique(drawn, return_index=True)
    first.sort()
    ids = [f"P{n}" for n in drawn[first]]
    fresh = [i for i in ids if i not in taken][:count]
    return np.array(fresh, dtype=object)


def with_new_residents(
    residents: pd.DataFrame,
    chunk_seeds: tuple[np.random.SeedSequence, ...],
    arrivals: pd.DataFrame,
    arrival_seeds: tuple[np.random.SeedSequence, ...],
) -> tuple[pd.DataFrame, tuple[np.random.SeedSequence, ...]]:
    """The plan's residents and chunk seeds with the new residents' rows and chunks appended."""
    if arrivals.empty:
        return residents, tuple(chunk_seeds)
    residents = residents.assign(**{ARRIVAL_COLUMN: np.nan})
    return pd.concat([residents, arrivals], ignore_index=True), (*chunk_seeds, *arrival_seeds)


def chunk_rows(residents: pd.DataFrame, index: int, size: int) -> pd.DataFrame:
    """The residents of chunk ``index``: ordinary chunks first, then the new residents' own chunks."""
    if ARRIVAL_COLUMN not in residents.columns:
        return residents.iloc[index * size : (index + 1) * size]
    arriving = residents[ARRIVAL_COLUMN].notna().to_numpy()
    ordinary = int((~arriving).sum())
    ordinary_chunks = max(1, -(-ordinary // size))
    if index < ordinary_chunks:
        return residents.iloc[index * size : min((index + 1) * size, ordinary)]
    start = ordinary + (index - ordinary_chunks) * size
    return residents.iloc[start : start + size]


def arrive(people: Any, rows: pd.DataFrame) -> Any:
    """Start the new residents' registration on their arrival day (they stay registered).

    Args:
        people: The chunk's person arrays (``generate._People``).
        rows: The chunk's rows of the plan's residents.

    Returns:
        ``people`` with ``entry_day`` and ``registration_start`` set to the arrival day and
        no move out, for the rows that arrive; unchanged without new residents.
    """
    if ARRIVAL_COLUMN not in rows.columns:
        return people
    arrival = rows[ARRIVAL_COLUMN].to_numpy(dtype=float)
    arriving = np.isfinite(arrival)
    if not arriving.any():
        return people
    day = np.where(arriving, arrival, 0).astype(np.int64)
    return dataclasses.replace(
        people,
        entry_day=np.where(arriving, day, people.entry_day).astype(np.int64),
        registration_start=np.where(arriving, day, people.registration_start),
        exit_day=np.where(arriving, np.inf, people.exit_day),
    )


__all__ = [
    "apply_record_scenarios",
    "arrive",
    "chunk_rows",
    "feed_stop_practice",
    "new_residents",
    "scenario_generator",
    "with_new_residents",
]
