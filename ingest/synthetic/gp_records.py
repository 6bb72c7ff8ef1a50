"""GP record detail of the synthetic population: resolved codes and recorded eFI scores.

Drawn only from the generator's own ``gp`` stream (``_EventBuilder.detail_rng["gp"]``),
so every other table is the same as without them.

- **Resolved codes.** Some people with a recorded condition get a resolved code some
  years later (asthma, depression: about 8%; hypertension, diabetes, COPD: about 2%);
  about 30% of those have the condition recorded again later. The latent condition
  persists, so a resolved code is realistic under-recording: the register (latest
  diagnosis after the latest resolved code) misses people who still have it. Only
  conditions with a resolved code in the shipped ``snomed_conditions`` list are resolved
  (anxiety has none shipped, so it is never resolved here).
- **Recorded eFI scores.** Practices record an eFI score about yearly for people aged
  65 and over (from July 2017, when the GP contract asked for frailty identification);
  70% of people are registered where this is done. The value is the person's latent
  frailty index that month (deficits / 36, without polypharmacy), to two decimals.
- In the under-recording scenario, resolved codes, re-recordings and eFI scores dated in
  the gap are lost with the share of diagnoses not recorded (``share_not_recorded``).
"""

from __future__ import annotations

from datetime import date

import numpy as np

from riskstrat.ingest.synthetic.timeline import DAYS_PER_YEAR, Timeline, to_day

RESOLVE_SHARE: dict[str, float] = {
    "asthma": 0.08,
    "depression": 0.08,
    "anxiety": 0.08,
    "alcohol_dependence": 0.05,
    "atrial_fibrillation": 0.03,
    "hypertension": 0.02,
    "diabetes": 0.02,
    "copd": 0.02,
}
"""Share of people with a recorded condition who later get its resolved code."""
RERECORD_SHARE = 0.3
"""Share of resolved conditions recorded again later."""
RESOLVE_AFTER_YEARS = 3.0
"""Mean years (exponential, after a 6-month minimum) from the first recording to the resolved code."""
RERECORD_AFTER_YEARS = 2.0
"""Mean years (exponential, after a 3-month minimum) from the resolved code to the new recording."""
EFI_RECORDING_SHARE = 0.7
"""Share of people whose practice records an eFI score yearly once they are 65."""
EFI_FROM = date(2017, 7, 1)
EFI_MIN_AGE = 65
RECORDED_EFI = "recorded_efi"
"""The condition of a recorded eFI score (ingest/reference/conditions.csv)."""


def resolvable(conditions: tuple[str, ...]) -> dict[str, float]:
    """:data:`RESOLVE_SHARE` restricted to conditions the shipped list has a resolved code for."""
    from riskstrat.ingest.codelists import codelist

    table = codelist("snomed_conditions")
    with_code = set(table.loc[table["status"] == "resolved", "value"])
    return {name: share for name, share in RESOLVE_SHARE.items() if name in with_code and name in conditions}


def resolved_codes(
    person: np.ndarray,
    condition: np.ndarray,
    day: np.ndarray,
    visible_to: np.ndarray,
    conditions: tuple[str, ...],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Resolved codes, and later re-recordings, of first GP recordings.

    Args:
        person: Person index of each first recording of a condition.
        condition: Its condition, as an index into ``conditions``.
        day: Its day number.
        visible_to: Last day each person's record is visible (death, deregistration, extract).
        conditions: Condition names by index.
        rng: The generator's ``gp`` stream.

    Returns:
        ``(person, condition, day, resolved)`` of the extra rows; ``resolved`` is True for
        a resolved code and False for a re-recording.
    """
    shares = resolvable(conditions)
    share_of = np.array([shares.get(name, 0.0) for name in conditions])
    # Drawn for every person and condition, then read at the recordings: a person's draws do
    # not depend on anyone else's recordings (the under-recording scenario leaves others alone).
    shape = (visible_to.size, len(conditions))
    chosen = (rng.random(shape) < share_of[None, :])[person, condition]
    wait = rng.exponential(RESOLVE_AFTER_YEARS * DAYS_PER_YEAR, shape)[person, condition]
    again = (rng.random(shape) < RERECORD_SHARE)[person, condition]
    again_wait = rng.exponential(RERECORD_AFTER_YEARS * DAYS_PER_YEAR, shape)[person, condition]
    resolved_day = np.floor(day + 182 + wait)
    again_day = np.floor(resolved_day + 91 + again_wait)
    resolved = chosen & (resolved_day <= visible_to[person])
    recorded_again = resolved & again & (again_day <= visible_to[person])
    return (
        np.concatenate([person[resolved], person[recorded_again]]),
        np.concatenate([condition[resolved], condition[recorded_again]]),
        np.concatenate([resolved_day[resolved], again_day[recorded_again]]).astype(np.int64),
        np.concatenate([np.ones(resolved.sum(), bool), np.zeros(recorded_again.sum(), bool)]),
    )


def efi_records(
    birth_day: np.ndarray,
    entry_day: np.ndarray,
    visible_to: np.ndarray,
    frailty: np.ndarray,
    timeline: Timeline,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Yearly recorded eFI scores of people aged 65+ whose practice records them.

    Args:
        birth_day: Day of birth of each person.
        entry_day: Day each person's record starts (registration or the history start).
        visible_to: Last day each person's record is visible (death, deregistration, extract).
        frailty: Latent eFI per person and month, shape (people, months).
        timeline: The monthly grid.
        rng: The generator's ``gp`` stream.

    Returns:
        ``(person, day, score)``, the score rounded to two decimals.
    """
    n = birth_day.size
    start = max(timeline.history_start, to_day(EFI_FROM))
    years = max(int(np.ceil((timeline.extract_day - start) / DAYS_PER_YEAR)) + 1, 1)
    recorded = rng.random(n) < EFI_RECORDING_SHARE
    offset = rng.integers(0, 365, n)
    jitter = rng.integers(-20, 21, (n, years))
    day = start + offset[:, None] + np.round(np.arange(years) * DAYS_PER_YEAR)[None, :] + jitter
    aged = day >= birth_day[:, None] + EFI_MIN_AGE * DAYS_PER_YEAR
    seen = (day >= np.maximum(entry_day[:, None], start)) & (day <= visible_to[:, None])
    keep = recorded[:, None] & aged & seen & (day <= timeline.extract_day)
    person, year = np.nonzero(keep)
    when = day[person, year].astype(np.int64)
    month = np.minimum(timeline.month_of(when), timeline.months - 1)
    return person, when, np.round(frailty[person, month], 2)
