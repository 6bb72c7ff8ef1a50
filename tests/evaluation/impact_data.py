"""Simulated cut-off records with a known jump at the cut-off, for the impact tests."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

WORDING = "an emergency hospital admission in the next 90 days"


def simulate(
    jump: float,
    *,
    mdts: int = 4,
    weeks: int = 12,
    capacity: int = 50,
    below: int = 50,
    seed: int = 0,
    lottery: bool = False,
    taken_share: float | None = None,
    repeat_share: float = 0.0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """Cut-off records, outcomes and decisions with a true jump of ``jump`` for listed people.

    With ``lottery`` the last 5 places go by a fair draw among the 10 people ranked
    capacity-4 .. capacity+5. With ``repeat_share``, that share of each week's people were
    recorded before (their later rows must be dropped).
    """
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    pid = 0
    seen: list[str] = []
    for w in range(weeks):
        week = date(2025, 1, 6) + timedelta(weeks=w)
        for m in range(mdts):
            n = capacity + below
            risk = np.sort(rng.uniform(0.2, 0.6, n))[::-1]
            draw = (
                set(rng.choice(np.arange(capacity - 4, capacity + 6), 5, replace=False)) if lottery else set()
            )
            for r in range(1, n + 1):
                if seen and rng.uniform() < repeat_share:
                    person = seen[int(rng.integers(len(seen)))]
                else:
                    pid += 1
                    person = f"p{pid}"
                    seen.append(person)
                pool = lottery and capacity - 4 <= r <= capacity + 5
                rows.append(
                    {
                        "week": week,
                        "data_date": week - timedelta(days=1),
                        "mdt": f"MDT {m}",
                        "person_id": person,
                        "practice_code": "A81001",
                        "outcome": "emergency_admission",
                        "eligible_rank": r,
                        "probability": float(risk[r - 1]),
                        "cutoff_probability": float(risk[capacity - 1]),
                        "capacity": capacity,
                        "listed": (r in draw) if pool else r <= capacity - (5 if lottery else 0),
                        "lottery_pool": pool,
                        "lottery_won": pool and r in draw,
                        "lottery_seed": "s" if lottery else "",
                    }
                )
    assignments = pd.DataFrame(rows).drop_duplicates(["week", "mdt", "person_id"])
    chance = 0.8 * assignments["probability"] + jump * assignments["listed"]
    event = (rng.uniform(size=len(assignments)) < chance).astype(int)
    outcomes = assignments[["person_id", "data_date"]].assign(event=event)
    decisions = None
    if taken_share is not None:
        listed = assignments.loc[assignments["listed"]]
        taken = rng.uniform(size=len(listed)) < taken_share
        decisions = listed[["person_id", "mdt", "week"]].assign(
            week=listed["week"].map(date.isoformat),
            decision=np.where(taken, "added_to_caseload", "not_discussed"),
        )
    return assignments, outcomes, decisions
