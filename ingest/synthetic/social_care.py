"""Adult social care in the synthetic population: the CLD returns' events, from the latent health path.

Every event is a consequence or a marker of the same latent state the other tables are
drawn from (``health.py``), never of anything later than its own date:

- **support at home** (``long_term_community``) starts in the first month a person's need
  (latent frailty index, age over 75, dementia, a decline episode) passes their own
  eligibility threshold, for the share the local authority arranges; adults with a
  learning disability or a serious mental illness get long-term support too;
- **care-home placements** (``long_term_residential`` / ``_nursing``) start at the latent
  care-home move for the local-authority-funded share and last until death;
- **reablement** (``short_term_reablement``, up to six weeks) starts within days of a share
  of emergency discharges at 65+, more often for the frail and in a decline episode;
- **requests and assessments** precede each new long-term service and follow emergency
  discharges, the onset of falls or a fragility fracture and the start of decline episodes
  (days to weeks later); **reviews** come yearly while long-term support lasts;
- **carers**: for a share of people supported at home, another registered adult of the same
  LSOA (else the same district) is their carer, with assessments, support and reviews of
  their own (``client_type`` carer).

A decline episode triples the emergency risk for two to four months and is otherwise
seen only through the events it causes, so a request or a new package during one, and
reablement given to the frailest, tell a model something the health records do not.
There is no causal effect of social care on health: the truth is unchanged.

The events are then written as the CLD adapter leaves the quarterly returns: each local
authority's return lists the events active in its quarter, the latest received return
of each event is kept, and an event still open at the end of that return's quarter has no
end date. Returns are expected up to the last quarter due by the extract date
(:func:`riskstrat.ingest.social_care.expected_quarters`); the settings name
returns that never arrived and local authorities whose latest return is late.

Draws come from a stream of their own (:data:`SOCIAL_CARE_STREAM`), so switching social
care on or off changes no other table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from riskstrat.ingest.contract import SOCIAL_CARE_EVENTS, SOCIAL_CARE_RETURNS
from riskstrat.ingest.social_care import expected_quarters, quarter_end
from riskstrat.ingest.synthetic.health import CARE_HOME, CONDITIONS, EpisodeSpans
from riskstrat.ingest.synthetic.settings import SocialCare
from riskstrat.ingest.synthetic.timeline import DAYS_PER_YEAR, Timeline, to_day

SOCIAL_CARE_STREAM = (1 << 20) + 24
"""Spawn key of the social care stream, derived from the chunk's seed (draws nothing from the chunk's own)."""

AGE_NEED_PER_YEAR = 0.01
"""Need score added per year of age over 75."""
DEMENTIA_NEED = 0.15
"""Need score added while the person has dementia."""
DECLINE_NEED = 0.08
"""Need score added during a decline episode."""
SEVERE_FRAILTY = 0.36
"""Latent frailty index from which frailty counts as severe (Clegg et al. 2016)."""

EVENT_KEY = (
    "la_code", "person_id", "event_type", "event_start_date", "client_type", "service_type", "service_component",
)  # fmt: skip
"""What tells one event from another in the returns (the CLD adapter keeps one row per key)."""

_DEMENTIA = CONDITIONS.index("dementia")
_LEARNING_DISABILITY = CONDITIONS.index("learning_disability")
_SMI = CONDITIONS.index("serious_mental_illness")
_FALLS = (CONDITIONS.index("falls"), CONDITIONS.index("fragility_fracture"))
_SENSORY = (CONDITIONS.index("visual_impairment"), CONDITIONS.index("hearing_impairment"))


@dataclass(frozen=True)
class CareInputs:
    """One chunk's people and latent paths, as social care needs them (row i = person i).

    Attributes:
        timeline: The monthly grid.
        person_id: Pseudonymised IDs.
        birth_day, entry_day, visible_to: Day numbers: birth, start of the registration in the
            history, and the last day the extract sees the person (death, leaving or the extract date).
        lsoa_code: LSOA of residence.
        la_code: Local authority (LAD 2019 code) of the LSOA.
        onset_day: Latent condition onsets, shape (people, conditions).
        death_day: Latent death day (+inf = after the grid).
        age, frailty, episode: Per person-month (people, months): age, latent frailty index,
            decline-episode multiplier (1 = none).
        episodes: The decline episodes.
        discharges: (person, discharge day) of each primary emergency spell.
    """

    timeline: Timeline
    person_id: np.ndarray
    birth_day: np.ndarray
    entry_day: np.ndarray
    visible_to: np.ndarray
    lsoa_code: np.ndarray
    la_code: np.ndarray
    onset_day: np.ndarray
    death_day: np.ndarray
    age: np.ndarray
    frailty: np.ndarray
    episode: np.ndarray
    episodes: EpisodeSpans
    discharges: tuple[np.ndarray, np.ndarray]


class _Events:
    """Events accumulated as numpy columns (person = row index; days; codes as objects)."""

    COLUMNS = ("person", "event_type", "start", "end", "client_type", "service_type", "component",
               "reason", "accommodation")  # fmt: skip

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {name: [] for name in self.COLUMNS}

    def add(self, person, event_type, start, end, client_type="service_user", service_type=None,
            component=None, reason=None, accommodation=None) -> None:  # fmt: skip
        person = np.asarray(person, dtype=np.int64)
        n = person.size

        def column(value, dtype):
            return np.broadcast_to(np.asarray(value, dtype=dtype), (n,)).copy() if n else np.empty(0, dtype)

        self.parts["person"].append(person)
        self.parts["event_type"].append(column(event_type, object))
        self.parts["start"].append(column(start, float))
        self.parts["end"].append(column(end, float))
        self.parts["client_type"].append(column(client_type, object))
        self.parts["service_type"].append(column(service_type, object))
        self.parts["component"].append(column(component, object))
        self.parts["reason"].append(column(reason, object))
        self.parts["accommodation"].append(column(accommodation, object))

    def columns(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(parts) for name, parts in self.parts.items()}


def social_care_stream(seed_seq: np.random.SeedSequence) -> np.random.Generator:
    """The chunk's social care stream: derived from its seed by :data:`SOCIAL_CARE_STREAM`."""
    return np.random.default_rng(
        np.random.SeedSequence(seed_seq.entropy, spawn_key=(*seed_seq.spawn_key, SOCIAL_CARE_STREAM))
    )


def social_care_events(
    inputs: CareInputs, settings: SocialCare, extract_date: date, rng: np.random.Generator
) -> pd.DataFrame:
    """The chunk's ``social_care_events`` table, as the CLD adapter leaves the quarterly returns.

    Args:
        inputs: The chunk's people and latent paths.
        settings: Social care settings.
        extract_date: The extract date (returns are due up to it).
        rng: The chunk's social care stream (:func:`social_care_stream`).

    Returns:
        Contract columns, sorted by person and event start.
    """
    return social_care_tables(inputs, settings, extract_date, rng)[SOCIAL_CARE_EVENTS.name]


def social_care_tables(
    inputs: CareInputs, settings: SocialCare, extract_date: date, rng: np.random.Generator
) -> dict[str, pd.DataFrame]:
    """The chunk's ``social_care_events`` and ``social_care_returns`` (the returns received).

    Args and the events as :func:`social_care_events`. ``social_care_returns`` lists every
    received return of the chunk's local authorities, with the chunk's events active in its
    quarter as ``rows`` (chunks' rows for one return are summed by the readers).
    """
    events = _Events()
    services = long_term_support(inputs, settings, rng, events)
    reablement(inputs, settings, rng, events)
    requests_and_assessments(inputs, settings, rng, events)
    reviews(inputs, services, rng, events)
    carers(inputs, settings, services, rng, events)
    columns = _visible(inputs, events.columns())
    return {
        SOCIAL_CARE_EVENTS.name: as_returns(inputs, columns, settings, extract_date),
        SOCIAL_CARE_RETURNS.name: returns_received(inputs, columns, settings, extract_date),
    }


# -- long-term support ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Services:
    """Long-term services of service users: person, start and end days (inf = open), at home or not, where."""

    person: np.ndarray
    start: np.ndarray
    end: np.ndarray
    at_home: np.ndarray
    accommodation: np.ndarray


def long_term_support(
    inputs: CareInputs, settings: SocialCare, rng: np.random.Generator, events: _Events
) -> _Services:
    """Support at home (need passing a threshold; learning disability; mental illness) and placements.

    Each new service from the history's start is preceded by a request and an assessment.
    """
    tl, n = inputs.timeline, inputs.person_id.size
    onset, boundaries = inputs.onset_day, tl.boundaries
    care_home_day = onset[:, CARE_HOME]
    # Death or leaving the area (the extract sees neither after); still here at the extract: open.
    end_of_life = np.where(inputs.visible_to < tl.extract_day, inputs.visible_to, np.inf)
    adult_day = inputs.birth_day + 18 * DAYS_PER_YEAR
    # Need: latent frailty, age over 75, dementia and decline episodes, against a personal threshold.
    dementia = onset[:, _DEMENTIA][:, None] < boundaries[1:][None, :]
    need = (
        inputs.frailty
        + AGE_NEED_PER_YEAR * np.clip(inputs.age - 75, 0, None)
        + DEMENTIA_NEED * dementia
        + DECLINE_NEED * (inputs.episode > 1)
    )
    threshold = settings.need_threshold + settings.need_threshold_sd * rng.normal(0, 1, n)
    eligible = (need >= threshold[:, None]) & (inputs.age >= 18)
    first = eligible.argmax(axis=1)
    u_day, u_before, u_funded, u_component = (rng.random(n) for _ in range(4))
    before_grid = boundaries[0] - np.floor(u_before * 3 * DAYS_PER_YEAR)  # eligible since before the history
    in_month = boundaries[first] + np.floor(u_day * tl.days_in_month[np.minimum(first, tl.months - 1)])
    start = np.where(first == 0, before_grid, in_month)
    ended = start + rng.exponential(1.0, n) * DAYS_PER_YEAR / max(settings.support_end_rate, 1e-9)
    ld = np.isfinite(onset[:, _LEARNING_DISABILITY]) & (u_funded < settings.learning_disability_share)
    smi = np.isfinite(onset[:, _SMI]) & ~ld & (rng.random(n) < settings.mental_health_share)
    at_home = eligible.any(axis=1) & (u_funded < settings.funded_share) & ~ld & ~smi & (start < care_home_day)
    home = np.flatnonzero(at_home)
    home_end = np.minimum(np.minimum(ended, care_home_day), end_of_life)[home]
    component = np.where(u_component[home] < settings.direct_payment_share, "direct_payment", "home_care")
    _service(inputs, events, rng, home, start[home], home_end, "long_term_community", component.astype(object),
             "own_home", new=True)  # fmt: skip

    # Adults with a learning disability (supported living, home care, day care) or a serious mental illness.
    ld_person = np.flatnonzero(ld)
    ld_start = np.maximum(adult_day[ld_person], boundaries[0] - np.floor(u_before[ld_person] * 3000))
    ld_component = np.array(["supported_living", "home_care", "day_care"], dtype=object)[
        np.searchsorted([0.5, 0.8], u_component[ld_person], side="right")
    ]
    _service(inputs, events, rng, ld_person, ld_start, end_of_life[ld_person], "long_term_community",
             ld_component, _accommodation_of(ld_component), reason="learning_disability", new=False)  # fmt: skip
    smi_person = np.flatnonzero(smi)
    # As for learning disability, support running since before the history began is dated at most
    # about 8 years before it: an illness that began decades ago did not bring decades of one package.
    smi_start = np.maximum.reduce([
        adult_day[smi_person],
        onset[smi_person, _SMI] + np.floor(u_day[smi_person] * 5 * DAYS_PER_YEAR),
        boundaries[0] - np.floor(u_before[smi_person] * 3000),
    ])  # fmt: skip
    smi_component = np.array(["supported_living", "home_care", "other"], dtype=object)[
        np.searchsorted([0.4, 0.7], u_component[smi_person], side="right")
    ]
    _service(inputs, events, rng, smi_person, smi_start, end_of_life[smi_person], "long_term_community",
             smi_component, _accommodation_of(smi_component), reason="mental_health", new=True)  # fmt: skip

    # Care-home placements: the latent move, for the local-authority-funded share; until death.
    placed = np.flatnonzero(
        (care_home_day <= inputs.visible_to) & (rng.random(n) < settings.placement_funded_share)
    )
    month = np.minimum(tl.month_of(care_home_day[placed]), tl.months - 1)
    severe = inputs.frailty[placed, month] >= SEVERE_FRAILTY
    nursing = rng.random(placed.size) < np.minimum(settings.nursing_share * np.where(severe, 2.0, 1.0), 0.9)
    # A placement from before the history is dated at most about 8 years before it, as support above.
    placed_start = np.maximum(care_home_day[placed], boundaries[0] - np.floor(u_before[placed] * 3000))
    _service(inputs, events, rng, placed, placed_start, end_of_life[placed],
             np.where(nursing, "long_term_nursing", "long_term_residential").astype(object),
             np.where(nursing, "nursing", "residential").astype(object), "care_home", new=True)  # fmt: skip

    person = np.concatenate([home, ld_person, smi_person, placed])
    return _Services(
        person=person,
        start=np.concatenate([start[home], ld_start, smi_start, placed_start]),
        end=np.concatenate([home_end, end_of_life[ld_person], end_of_life[smi_person], end_of_life[placed]]),
        at_home=np.concatenate([np.ones(home.size + ld_person.size + smi_person.size, bool),
                                np.zeros(placed.size, bool)]),
        accommodation=np.concatenate([np.full(home.size, "own_home", dtype=object), _accommodation_of(ld_component),
                                      _accommodation_of(smi_component),
                                      np.full(placed.size, "care_home", dtype=object)]),
    )  # fmt: skip


def _accommodation_of(component: np.ndarray) -> np.ndarray:
    return np.where(component == "supported_living", "supported_accommodation", "own_home").astype(object)


def _service(inputs, events, rng, person, start, end, service_type, component, accommodation,
             reason=None, new=True) -> None:  # fmt: skip
    """Add long-term services (open = end after the extract); ``new`` ones get a request and assessment first."""
    start = np.floor(start)
    if reason is None:
        reason = primary_support_reason(inputs, person, start, rng)
    end = np.where(end > inputs.timeline.extract_day, np.inf, np.floor(end))
    events.add(person, "service", start, end, service_type=service_type, component=component, reason=reason,
               accommodation=accommodation)  # fmt: skip
    if new:
        request = start - rng.integers(21, 71, person.size)
        assessment = request + rng.integers(3, 15, person.size)
        assessed = np.minimum(assessment + rng.integers(1, 15, person.size), start)
        # Requested and assessed while still at home (a placement too).
        events.add(person, "request", request, request, reason=reason, accommodation="own_home")
        events.add(person, "assessment", assessment, assessed, reason=reason, accommodation="own_home")


def primary_support_reason(
    inputs: CareInputs, person: np.ndarray, day: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The CLD primary support reason at ``day``: from conditions present then, else physical care mostly."""
    onset = inputs.onset_day
    u = rng.random(person.size)
    reason = np.array(["physical_personal_care", "physical_access_mobility", "social_support"], dtype=object)[
        np.searchsorted([0.72, 0.95], u, side="right")
    ]
    sensory = (onset[person[:, None], list(_SENSORY)] <= day[:, None]).all(axis=1) & (u < 0.3)
    reason[sensory] = "sensory"
    reason[onset[person, _SMI] <= day] = "mental_health"
    reason[onset[person, _DEMENTIA] <= day] = "memory_cognition"
    reason[onset[person, _LEARNING_DISABILITY] <= day] = "learning_disability"
    return reason


# -- short-term support, requests and reviews ----------------------------------------------------


def _month_state(inputs: CareInputs, person: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, ...]:
    """(age, latent frailty, in a decline episode, in a care home) of each person on each day."""
    tl = inputs.timeline
    month = np.minimum(tl.month_of(day), tl.months - 1)
    return (
        inputs.age[person, month],
        inputs.frailty[person, month],
        inputs.episode[person, month] > 1,
        inputs.onset_day[person, CARE_HOME] <= day,
    )


def reablement(inputs: CareInputs, settings: SocialCare, rng: np.random.Generator, events: _Events) -> None:
    """Short-term reablement (ST-Max) within days of a share of emergency discharges at 65+, from home."""
    person, discharge = inputs.discharges
    age, frailty, declining, care_home = _month_state(inputs, person, discharge)
    chance = np.minimum(settings.reablement_share * (1 + 4 * frailty) * np.where(declining, 1.5, 1.0), 0.8)
    chosen = (
        (age >= 65) & ~care_home & (discharge < inputs.death_day[person]) & (rng.random(person.size) < chance)
    )
    person, discharge = person[chosen], discharge[chosen].astype(float)
    start = discharge + rng.integers(0, settings.reablement_start_days + 1, person.size)
    low, high = settings.reablement_days
    end = np.minimum(start + rng.integers(low, high + 1, person.size), inputs.death_day[person])
    reason = primary_support_reason(inputs, person, start, rng)
    # The hospital's discharge team makes the request on the day of discharge.
    events.add(person, "request", discharge, discharge, reason=reason, accommodation="own_home")
    events.add(person, "service", start, np.where(end > inputs.timeline.extract_day, np.inf, end),
               service_type="short_term_reablement", component="reablement", reason=reason,
               accommodation="own_home")  # fmt: skip


def requests_and_assessments(
    inputs: CareInputs, settings: SocialCare, rng: np.random.Generator, events: _Events
) -> None:
    """Requests after emergency discharges, falls and decline episodes at 65+, most followed by an assessment."""
    tl = inputs.timeline
    person, discharge = inputs.discharges
    age, frailty, _, _ = _month_state(inputs, person, discharge)
    chance = np.minimum(settings.request_after_admission_share * (1 + 2 * frailty), 1.0)
    chosen = (age >= 65) & (rng.random(person.size) < chance)
    after_admission = (person[chosen], discharge[chosen] + rng.integers(1, 29, chosen.sum()))
    # Onset of falls or a fragility fracture.
    fall_person, fall_condition = np.nonzero(
        (inputs.onset_day[:, list(_FALLS)] >= tl.history_start)
        & (inputs.onset_day[:, list(_FALLS)] <= tl.extract_day)
    )
    fall_day = np.floor(inputs.onset_day[:, list(_FALLS)][fall_person, fall_condition])
    fall_age, _, _, _ = _month_state(inputs, fall_person, fall_day)
    chosen = (fall_age >= 65) & (rng.random(fall_person.size) < settings.request_after_fall_share)
    after_fall = (fall_person[chosen], fall_day[chosen] + rng.integers(3, 43, chosen.sum()))
    # Early in a decline episode.
    spans = inputs.episodes
    first_day = tl.boundaries[np.minimum(spans.start, tl.months - 1)]
    decline_day = first_day + rng.integers(0, 45, spans.person.size)
    decline_age = inputs.age[spans.person, np.minimum(spans.start, tl.months - 1)]
    chosen = (decline_age >= 65) & (rng.random(spans.person.size) < settings.request_in_decline_share)
    in_decline = (spans.person[chosen], decline_day[chosen])

    person = np.concatenate([after_admission[0], after_fall[0], in_decline[0]])
    day = np.concatenate([after_admission[1], after_fall[1], in_decline[1]]).astype(float)
    _, _, _, care_home = _month_state(inputs, person, day)
    reason = primary_support_reason(inputs, person, day, rng)
    accommodation = np.where(care_home, "care_home", "own_home").astype(object)
    events.add(person, "request", day, day + rng.integers(0, 8, person.size), reason=reason,
               accommodation=accommodation)  # fmt: skip
    assessed = rng.random(person.size) < settings.assessment_share
    a_day = day[assessed] + rng.integers(7, 29, assessed.sum())
    events.add(person[assessed], "assessment", a_day, a_day + rng.integers(1, 29, assessed.sum()),
               reason=reason[assessed], accommodation=accommodation[assessed])  # fmt: skip


def _yearly(start: np.ndarray, end: np.ndarray, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    """(index, day) of each anniversary of ``start`` in [first, min(end, last)] (whole years after start)."""
    low = np.maximum(np.ceil((first - start) / 365.0), 1)
    high = np.floor((np.minimum(end, last) - start) / 365.0)
    count = np.clip(high - low + 1, 0, None).astype(np.int64)
    index = np.repeat(np.arange(start.size), count)
    k = low[index] + (np.arange(index.size) - np.repeat(np.cumsum(count) - count, count))
    return index, start[index] + 365.0 * k


def reviews(inputs: CareInputs, services: _Services, rng: np.random.Generator, events: _Events) -> None:
    """A review about every year while long-term support lasts (from the history's start)."""
    tl = inputs.timeline
    index, day = _yearly(services.start, services.end, tl.history_start, tl.extract_day)
    day = np.floor(day + rng.integers(-30, 31, index.size))
    day = np.minimum(day, services.end[index])
    person = services.person[index]
    reason = primary_support_reason(inputs, person, day, rng)
    accommodation = services.accommodation[index]
    events.add(person, "review", day, day + rng.integers(0, 15, index.size), reason=reason,
               accommodation=accommodation)  # fmt: skip


def carers(
    inputs: CareInputs, settings: SocialCare, services: _Services, rng: np.random.Generator, events: _Events
) -> None:
    """Carers of a share of people supported at home: another adult of the same LSOA (else district).

    The carer has their own assessment, then respite or a direct payment, and a review every
    year while the person they care for is supported.
    """
    tl = inputs.timeline
    chosen = np.flatnonzero(services.at_home & (rng.random(services.person.size) < settings.carer_share))
    cared_for = services.person[chosen]
    first = np.maximum(services.start[chosen], tl.history_start)
    assessed = np.floor(first + rng.integers(0, 91, chosen.size))
    carer = np.full(chosen.size, -1)
    for place in (inputs.lsoa_code, inputs.la_code):
        missing = np.flatnonzero(carer < 0)
        carer[missing] = _someone_nearby(inputs, place, cared_for[missing], assessed[missing], rng)
    found = carer >= 0
    carer, cared_for, assessed = carer[found], cared_for[found], assessed[found]
    end = services.end[chosen][found]
    n = carer.size
    events.add(carer, "assessment", assessed, assessed + rng.integers(1, 29, n), client_type="carer",
               accommodation="own_home")  # fmt: skip
    respite = rng.random(n) < 0.6
    support = assessed + rng.integers(14, 61, n)
    events.add(carer, "service", support, support + np.where(respite, rng.integers(1, 15, n), 0),
               client_type="carer", service_type="short_term_other",
               component=np.where(respite, "respite", "direct_payment").astype(object),
               accommodation="own_home")  # fmt: skip
    index, day = _yearly(assessed, end, tl.history_start, tl.extract_day)
    day = np.floor(day + rng.integers(-30, 31, index.size))
    events.add(carer[index], "review", day, day + rng.integers(0, 15, index.size), client_type="carer",
               accommodation="own_home")  # fmt: skip


def _someone_nearby(
    inputs: CareInputs, place: np.ndarray, cared_for: np.ndarray, day: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Another person of the same ``place``, an adult seen in the extract on ``day`` (-1 when none is found)."""
    order = np.argsort(place, kind="stable")
    sorted_place = place[order]
    low = np.searchsorted(sorted_place, place[cared_for], side="left")
    high = np.searchsorted(sorted_place, place[cared_for], side="right")
    found = np.full(cared_for.size, -1)
    for _ in range(4):  # a few tries each; someone unsuitable is skipped
        todo = np.flatnonzero(found < 0)
        pick = order[low[todo] + np.floor(rng.random(todo.size) * (high[todo] - low[todo])).astype(np.int64)]
        age = (day[todo] - inputs.birth_day[pick]) / DAYS_PER_YEAR
        ok = (
            (pick != cared_for[todo])
            & (age >= 18)
            & (inputs.entry_day[pick] <= day[todo])
            & (day[todo] <= inputs.visible_to[pick])
        )
        found[todo[ok]] = pick[ok]
    return found


# -- what the extract holds ----------------------------------------------------------------------


def _visible(inputs: CareInputs, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Events the ICB sees: while the person lives in the area (registered), up to the extract date.

    A service open when the person dies or leaves ends then; one that began before a person
    moved in starts on arrival (the new local authority's package). Earlier services of people
    registered from the history's start are kept with their start date (open when returns begin).
    """
    tl = inputs.timeline
    person, start, end = columns["person"], columns["start"], columns["end"]
    moved_in = inputs.entry_day[person] > tl.history_start
    long_running = columns["event_type"] == "service"
    start = np.where(moved_in & long_running, np.maximum(start, inputs.entry_day[person]), start)
    visible_to = inputs.visible_to[person]
    left = visible_to < tl.extract_day
    end = np.where(left & (end > visible_to), visible_to, end)
    keep = (start <= visible_to) & (end >= start) & (long_running | (start >= inputs.entry_day[person]))
    columns = {name: values[keep] for name, values in columns.items()}
    columns["start"], columns["end"] = start[keep], end[keep]
    return columns


def received_returns(
    la_codes: list[str], settings: SocialCare, history_start: date, extract_date: date
) -> tuple[list[date], np.ndarray]:
    """The due quarters and which arrived, shape (local authorities, quarters), as the settings say."""
    quarters = expected_quarters(settings.first_quarter or history_start, extract_date)
    received = np.ones((len(la_codes), len(quarters)), dtype=bool)
    for missing in settings.missing_returns:
        if missing.la_code in la_codes and missing.quarter in quarters:
            received[la_codes.index(missing.la_code), quarters.index(missing.quarter)] = False
    for late in settings.late_las:
        if late in la_codes and quarters:
            received[la_codes.index(late), -1] = False
    return quarters, received


def returns_received(
    inputs: CareInputs, columns: dict[str, np.ndarray], settings: SocialCare, extract_date: date
) -> pd.DataFrame:
    """``social_care_returns``: each received return of the chunk's local authorities and its rows.

    Recorded from the returns themselves, not from the events each one keeps after the
    latest submission wins (a received return whose events all reappear later keeps none).
    """
    la_codes = sorted(set(inputs.la_code.tolist()))
    history_start = date(1970, 1, 1) + timedelta(days=int(inputs.timeline.history_start))
    quarters, received = received_returns(la_codes, settings, history_start, extract_date)
    rows = np.zeros((len(la_codes), len(quarters)), dtype=np.int64)
    if quarters and columns["person"].size:
        q_start = np.array([to_day(q) for q in quarters], dtype=float)
        q_end = np.array([to_day(quarter_end(q)) for q in quarters], dtype=float)
        la = np.searchsorted(la_codes, inputs.la_code[columns["person"]])
        for index in range(len(quarters)):  # events active in the quarter: a few dozen quarters
            active = (columns["start"] <= q_end[index]) & ~(columns["end"] < q_start[index])
            rows[:, index] = np.bincount(la[active], minlength=len(la_codes))
    la_index, quarter_index = np.nonzero(received)
    frame = pd.DataFrame(
        {
            "la_code": _text(np.asarray(la_codes, dtype=object)[la_index]),
            "reporting_period_start": pd.Series(
                np.array(quarters, dtype="datetime64[D]")[quarter_index].astype("datetime64[s]")
                if quarters
                else np.empty(0, "datetime64[s]")
            ),
            "rows": rows[la_index, quarter_index],
        }
    )
    return frame[list(SOCIAL_CARE_RETURNS.column_names)]


def as_returns(
    inputs: CareInputs, columns: dict[str, np.ndarray], settings: SocialCare, extract_date: date
) -> pd.DataFrame:
    """Each event in the latest received return of its local authority it was active in.

    A return lists the events active in its quarter; an event active in no received
    return is not in the extract. Its end date shows only if it ended by the end of that
    return's quarter (otherwise it was still open then).
    """
    la_codes = sorted(set(inputs.la_code.tolist()))
    history_start = date(1970, 1, 1) + timedelta(days=int(inputs.timeline.history_start))
    quarters, received = received_returns(la_codes, settings, history_start, extract_date)
    person, start, end = columns["person"], columns["start"], columns["end"]
    if not quarters or person.size == 0:
        return _frame(inputs, {name: values[:0] for name, values in columns.items()}, np.empty(0, int), [])
    q_start = np.array([to_day(q) for q in quarters], dtype=float)
    q_end = np.array([to_day(quarter_end(q)) for q in quarters], dtype=float)
    # Latest received quarter at or before each quarter, per local authority (-1: none).
    latest = np.where(received, np.arange(len(quarters))[None, :], -1)
    latest = np.maximum.accumulate(latest, axis=1)
    la = np.searchsorted(la_codes, inputs.la_code[person])
    last_active = np.searchsorted(q_start, np.minimum(end, q_end[-1]), side="right") - 1
    first_active = np.maximum(np.searchsorted(q_start, start, side="right") - 1, 0)
    quarter = np.where(last_active >= 0, latest[la, np.maximum(last_active, 0)], -1)
    keep = (quarter >= 0) & (quarter >= first_active) & (start <= q_end[-1])
    columns = {name: values[keep] for name, values in columns.items()}
    quarter = quarter[keep]
    columns["end"] = np.where(columns["end"] <= q_end[quarter], columns["end"], np.nan)
    return _frame(inputs, columns, quarter, quarters)


def _frame(inputs: CareInputs, columns: dict[str, np.ndarray], quarter: np.ndarray, quarters: list[date]):
    order = np.lexsort((columns["start"], columns["person"]))
    person = columns["person"][order]
    period = (
        np.array(quarters, dtype="datetime64[D]")[quarter[order]]
        if quarters
        else np.empty(0, "datetime64[D]")
    )
    frame = pd.DataFrame(
        {
            "person_id": _text(inputs.person_id[person]),
            "la_code": _text(inputs.la_code[person]),
            "reporting_period_start": pd.Series(period.astype("datetime64[s]")),
            "event_type": _text(columns["event_type"][order]),
            "event_start_date": _dates(columns["start"][order]),
            "event_end_date": _dates(columns["end"][order]),
            "client_type": _text(columns["client_type"][order]),
            "service_type": _text(columns["service_type"][order]),
            "service_component": _text(columns["component"][order]),
            "primary_support_reason": _text(columns["reason"][order]),
            "accommodation_status": _text(columns["accommodation"][order]),
        }
    )
    # The returns tell events apart by these: two on the same day would be one event (e.g. a second
    # request the same day), so keep the first, as the adapter's round trip then gives this table back.
    frame = frame[~frame.duplicated(EVENT_KEY, keep="first")].reset_index(drop=True)
    return frame[list(SOCIAL_CARE_EVENTS.column_names)]


def _text(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    return pd.array(
        pa.array(np.asarray(values, dtype=object), type=pa.string(), from_pandas=True), dtype="str"
    )


def _dates(day: np.ndarray) -> pd.Series:
    day = np.asarray(day, dtype=float)
    valid = np.isfinite(day)
    values = np.where(valid, day, 0).astype(np.int64).astype("datetime64[D]").astype("datetime64[s]")
    return pd.Series(values).where(valid)


__all__ = [
    "SOCIAL_CARE_STREAM",
    "CareInputs",
    "received_returns",
    "returns_received",
    "social_care_events",
    "social_care_stream",
    "social_care_tables",
]
