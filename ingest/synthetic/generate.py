"""Generate a synthetic population: contract tables, truth and the practice map.

Public entry points: :func:`generate_population` (everything in memory) and
:func:`iter_population` (chunk by chunk, for writing large populations).
People are drawn globally (homes, ages, practices, IDs), then their health and
events are generated in chunks of ``settings.chunk_size`` people, each chunk
with its own seed derived from the run's seed, so the same seed always gives
the same files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from riskstrat.ingest.contract import CONTRACT, EMERGENCY_ADMISSION_METHODS
from riskstrat.ingest.synthetic import complaints, gp_records, scenarios
from riskstrat.ingest.synthetic import events as ev
from riskstrat.ingest.synthetic.deployment import (
    NOISE_STREAM,
    THINNING_STREAM,
    ChunkDeployment,
    DeploymentPopulation,
    SimulatedDeployment,
    chunk_scores,
    data_date_of,
    deployment_truth,
    deployment_weeks,
    enrolment_caseload,
    simulate_deployment,
    tagged_generator,
)
from riskstrat.ingest.synthetic.diagnoses import spell_diagnoses
from riskstrat.ingest.synthetic.geography import (
    deprivation,
    footprint_lsoas,
    record_ethnic_category,
    sample_ethnic_group,
    sample_residents,
    sample_sex,
)
from riskstrat.ingest.synthetic.health import (
    CARE_HOME,
    CONDITION_PARAMETERS,
    CONDITIONS,
    LatentPaths,
    age_at,
    death_rate,
    draw_death_day,
    draw_episode_spans,
    draw_onsets,
    draw_propensity,
    episode_multiplier,
    frailty_index,
    presence_weight,
)
from riskstrat.ingest.synthetic.practices import assign_practices, build_practices
from riskstrat.ingest.synthetic.rates import ServiceRates, readmission_hazard, service_rates
from riskstrat.ingest.synthetic.settings import SyntheticSettings
from riskstrat.ingest.synthetic.social_care import CareInputs, social_care_stream, social_care_tables
from riskstrat.ingest.synthetic.timeline import (
    DAYS_PER_YEAR,
    Timeline,
    build_timeline,
    to_day,
)
from riskstrat.ingest.synthetic.truth import OracleInputs, oracle_subset, true_risk_at, with_onset_prior

NEVER = np.inf
_ACUTE_SECTIONS = ("0501", "0407", "1302", "0304", "0106", "1003")


@dataclass
class SyntheticPopulation:
    """A generated population.

    Attributes:
        tables: Every contract table by name, columns in contract order.
        truth: ``risk`` (true probabilities per as-of date) and ``people`` (latent attributes).
        practices: The practice-to-neighbourhood map (practice_code, practice_name,
            neighbourhood, lad_code, list_size).
    """

    tables: dict[str, pd.DataFrame]
    truth: dict[str, pd.DataFrame]
    practices: pd.DataFrame = field(default_factory=pd.DataFrame)
    deployment: SimulatedDeployment | None = None
    """The simulated past deployment (lists, enrolments), when ``settings.deployment`` is on."""


@dataclass(frozen=True)
class PopulationPlan:
    """Everything drawn for the whole population before health is generated."""

    settings: SyntheticSettings
    timeline: Timeline
    lsoas: pd.DataFrame
    practices: pd.DataFrame
    residents: pd.DataFrame
    chunk_seeds: tuple[np.random.SeedSequence, ...]


def plan_population(settings: SyntheticSettings, people: int, seed: int) -> PopulationPlan:
    """Draw homes, ages, practices and IDs for ``people`` people.

    Args:
        settings: Synthetic settings.
        people: How many people ever registered in the history.
        seed: Seed; the same seed gives the same population.

    Returns:
        The plan that chunks are generated from.
    """
    root = np.random.SeedSequence(seed)
    n_chunks = max(1, -(-people // settings.chunk_size))
    global_seed, *chunk_seeds = root.spawn(1 + n_chunks)
    rng = np.random.default_rng(global_seed)
    timeline = build_timeline(settings.history_start, settings.extract_date)
    lsoas = footprint_lsoas(settings)
    residents = sample_residents(lsoas, people, rng)
    residents_per_lad = lsoas["lad_code"].iloc[residents["lsoa_index"]].value_counts()
    practices = build_practices(lsoas, residents_per_lad, settings, rng)
    residents["practice_index"] = assign_practices(residents["lsoa_index"].to_numpy(), lsoas, practices, rng)
    residents["person_id"] = _person_ids(people, rng)
    # Monitoring scenario: new residents get chunks (and seeds) of their own, after everyone else's.
    arrivals, arrival_seeds = scenarios.new_residents(
        settings, timeline, lsoas, practices, residents["person_id"].to_numpy(), people, seed
    )
    residents, chunk_seeds = scenarios.with_new_residents(
        residents, tuple(chunk_seeds), arrivals, arrival_seeds
    )
    return PopulationPlan(settings, timeline, lsoas, practices, residents, tuple(chunk_seeds))


def _person_ids(people: int, rng: np.random.Generator) -> np.ndarray:
    """Unique 'P' + 9 digits, random-looking, determined by the seed."""
    drawn = rng.integers(100_000_000, 1_000_000_000, int(people * 1.05) + 100)
    _, first = np.unique(drawn, return_index=True)
    first.sort()
    return np.array([f"P{n}" for n in drawn[first[:people]]], dtype=object)


def generate_population(settings: SyntheticSettings, people: int, seed: int) -> SyntheticPopulation:
    """Generate a whole population in memory.

    Args:
        settings: Synthetic settings.
        people: How many people.
        seed: Seed; the same seed gives identical tables.

    Returns:
        Tables, truth and the practice map.
    """
    plan = plan_population(settings, people, seed)
    deployment = plan_deployment(plan, seed)
    chunks = list(iter_population(plan, deployment))
    tables = {
        name: pd.concat([c.tables[name] for c in chunks], ignore_index=True)
        for name in CONTRACT
        if name in chunks[0].tables  # an optional table the population does not generate is left out
    }
    truth = {
        name: pd.concat([c.truth[name] for c in chunks], ignore_index=True)
        for name in chunks[0].truth
        if name != "deployment"
    }
    if deployment is not None:
        truth["deployment"] = deployment.truth([c.truth["deployment"] for c in chunks])
    return SyntheticPopulation(tables, truth, practice_map(plan, tables["patients"]), deployment)


def practice_map(plan: PopulationPlan, patients: pd.DataFrame) -> pd.DataFrame:
    """The practice-to-neighbourhood map with list sizes (people registered at the extract date)."""
    registered = patients["registration_end"].isna()
    sizes = patients.loc[registered, "practice_code"].value_counts()
    practices = plan.practices[["practice_code", "practice_name", "neighbourhood", "lad_code"]].copy()
    practices["list_size"] = practices["practice_code"].map(sizes).fillna(0).astype("int64")
    return practices


def iter_population(
    plan: PopulationPlan, deployment: SimulatedDeployment | None = None
) -> Iterator[SyntheticPopulation]:
    """Generate the population chunk by chunk (each chunk's tables hold its people only).

    Args:
        plan: The population plan.
        deployment: The simulated deployment (:func:`plan_deployment`), whose enrolments
            join the caseload table and prevent admissions; each chunk's truth then has
            ``deployment`` rows (:meth:`SimulatedDeployment.truth` puts them together).
    """
    size = plan.settings.chunk_size
    offset = 0
    for index, seed in enumerate(plan.chunk_seeds):
        rows = scenarios.chunk_rows(plan.residents, index, size)
        own = deployment.chunk(index) if deployment is not None else None
        chunk = generate_chunk(plan, rows, np.random.default_rng(seed), id_offset=offset, deployment=own)
        offset += 10_000_000
        yield chunk


@dataclass
class _People:
    """Person-level arrays of one chunk."""

    person_id: np.ndarray
    birth_day: np.ndarray
    sex: np.ndarray
    depr: np.ndarray
    decile: np.ndarray
    ethnic_group: np.ndarray
    entry_day: np.ndarray
    registration_start: np.ndarray
    exit_day: np.ndarray
    lsoa_code: np.ndarray
    practice_index: np.ndarray


def _draw_people(plan: PopulationPlan, rows: pd.DataFrame, rng: np.random.Generator) -> _People:
    settings, timeline = plan.settings, plan.timeline
    n = len(rows)
    lsoa = plan.lsoas.iloc[rows["lsoa_index"].to_numpy()]
    age_at_extract = rows["age"].to_numpy()
    birth_day = np.floor(timeline.extract_day - age_at_extract * DAYS_PER_YEAR).astype(np.int64)
    decile = lsoa["imd_decile"].to_numpy()
    depr = deprivation(decile)
    ethnic = sample_ethnic_group(lsoa["lad_code"].to_numpy(), depr, settings, rng)
    start, extract = timeline.history_start, timeline.extract_day
    moved_in = (rng.random(n) < settings.moved_in_share) & (birth_day < start)
    entry = np.where(birth_day >= start, birth_day, start).astype(np.int64)
    entry = np.where(moved_in, rng.integers(start, extract - 30, n), entry)
    earlier = start - (rng.random(n) * 20 * DAYS_PER_YEAR).astype(np.int64)
    registration_start = np.where(entry > start, entry, np.maximum(birth_day, earlier))
    moved_out = rng.random(n) < settings.moved_out_share
    leave = entry + 30 + (rng.random(n) * np.clip(extract - entry - 30, 0, None)).astype(np.int64)
    exit_day = np.where(moved_out & (leave < extract), leave, NEVER)
    return _People(
        person_id=rows["person_id"].to_numpy(),
        birth_day=birth_day,
        sex=sample_sex(age_at_extract, rng),
        depr=depr,
        decile=decile,
        ethnic_group=ethnic,
        entry_day=entry,
        registration_start=registration_start,
        exit_day=exit_day,
        lsoa_code=lsoa["lsoa_code"].to_numpy(),
        practice_index=rows["practice_index"].to_numpy(),
    )


def _in_group(people: _People, column: str, value: str) -> np.ndarray:
    if column == "ethnic_group":
        return people.ethnic_group == value
    return (people.decile + 1) // 2 == int(value)


@dataclass
class _Latent:
    """One chunk's people, latent paths and rates: everything drawn before any event."""

    people: _People
    latent: LatentPaths
    rates: ServiceRates
    age: np.ndarray
    frailty: np.ndarray
    barrier: np.ndarray


def generate_chunk(
    plan: PopulationPlan,
    rows: pd.DataFrame,
    rng: np.random.Generator,
    id_offset: int = 0,
    deployment: ChunkDeployment | None = None,
) -> SyntheticPopulation:
    """Generate the health, events and truth of one chunk of people (and its part of a simulated deployment)."""
    settings, timeline = plan.settings, plan.timeline
    drawn = draw_latent(plan, rows, rng)
    people, latent, rates, age, frailty, barrier = (
        drawn.people, drawn.latent, drawn.rates, drawn.age, drawn.frailty, drawn.barrier
    )  # fmt: skip
    visible_to = np.minimum(np.minimum(latent.death_day, people.exit_day), timeline.extract_day)
    builder = _EventBuilder(
        plan, people, latent, rates, age, frailty, visible_to, rng, id_offset, deployment=deployment
    )
    tables = builder.build()
    truth = {
        "risk": _truth_risk(plan, people, latent, barrier, builder, _truth_generator(rng)),
        "people": _truth_people(people, latent, timeline, barrier, settings),
    }
    if deployment is not None:
        truth["deployment"] = deployment_truth(rates.emergency_admission, timeline, deployment)
    return SyntheticPopulation(tables, truth)


def draw_latent(plan: PopulationPlan, rows: pd.DataFrame, rng: np.random.Generator) -> _Latent:
    """Draw one chunk's people, latent paths and rates: the first draws of the chunk's stream.

    The simulated deployment's first pass calls it with a fresh generator from the same
    seed, so it sees exactly the paths the chunk's events are then drawn from.
    """
    settings, timeline = plan.settings, plan.timeline
    people = scenarios.arrive(_draw_people(plan, rows, rng), rows)  # new residents register on arrival
    n = people.birth_day.size
    male = people.sex == "1"
    morbidity = rng.normal(0, 1, n)
    onset = draw_onsets(people.birth_day, male, people.depr, people.ethnic_group, morbidity, rng)
    age = age_at(people.birth_day, timeline)
    frailty = frailty_index(onset, timeline)
    propensity, frequent_attender, fa_rate, fa_months, fa_start, fa_length = draw_propensity(
        onset, timeline, rng
    )
    episodes = draw_episode_spans(age, frailty, rng)
    episode = episode_multiplier(episodes, n, timeline.months)
    hazard = death_rate(age, onset, frailty, people.depr, episode, timeline)
    death_day = draw_death_day(hazard, people.entry_day, timeline, rng)
    death_day = np.where(np.isfinite(death_day), np.maximum(death_day, people.entry_day), death_day)
    latent = LatentPaths(
        onset, morbidity, propensity, frequent_attender, fa_rate, fa_months, episode, death_day,
        fa_start, fa_length, episodes,
    )  # fmt: skip
    barrier_settings = settings.access_barrier
    barrier = (
        _in_group(people, barrier_settings.group_column, barrier_settings.group_value)
        if barrier_settings.enabled
        else np.zeros(n, dtype=bool)
    )
    rates = service_rates(
        age, onset, frailty, people.depr, propensity, episode, fa_rate, fa_months, hazard, barrier,
        barrier_settings.gp_appointment_reduction, barrier_settings.ae_substitution, timeline,
    )  # fmt: skip
    return _Latent(people, latent, rates, age, frailty, barrier)


def plan_deployment(plan: PopulationPlan, seed: int) -> SimulatedDeployment | None:
    """Simulate the past deployment (``settings.deployment``; None when it is off).

    Pass 1 over the chunks: each chunk's latent paths and rates are drawn as
    :func:`generate_chunk` draws them, and each person's score at every simulated
    week kept (float32, people x weeks: 208 MB at 1,000,000 people and 52 weeks).
    Then the weekly lists and enrolments (:func:`~riskstrat.ingest.synthetic.deployment.simulate_deployment`).

    Args:
        plan: The population plan.
        seed: The run's seed (enrolment draws and lottery seeds).
    """
    settings = plan.settings.deployment
    if not settings.enabled:
        return None
    timeline = plan.timeline
    weeks = deployment_weeks(settings, plan.settings.extract_date)
    data_days = np.array([to_day(data_date_of(w)) for w in weeks], dtype=np.int64)
    codes = plan.practices["practice_code"].to_numpy().astype(object)
    neighbourhood = plan.practices["neighbourhood"].astype(str).to_numpy().astype(object)
    size = plan.settings.chunk_size
    parts: list[tuple[np.ndarray, ...]] = []
    for index, chunk_seed in enumerate(plan.chunk_seeds):
        rows = scenarios.chunk_rows(plan.residents, index, size)
        drawn = draw_latent(plan, rows, np.random.default_rng(chunk_seed))
        people = drawn.people
        noise = tagged_generator(chunk_seed, NOISE_STREAM).lognormal(0.0, settings.score_noise, len(rows))
        scores = chunk_scores(
            drawn.rates.emergency_admission, drawn.rates.death, timeline, people.entry_day, people.exit_day,
            drawn.latent.death_day, noise, data_days,
        )  # fmt: skip
        parts.append(
            (
                np.asarray(people.person_id, dtype=object),
                codes[people.practice_index],
                neighbourhood[people.practice_index],
                people.birth_day.astype(np.int64),
                scores,
            )
        )
        del drawn
    sizes = np.array([len(p[0]) for p in parts], dtype=np.int64)
    population = DeploymentPopulation(
        person_id=np.concatenate([p[0] for p in parts]),
        practice_code=np.concatenate([p[1] for p in parts]),
        mdt=np.concatenate([p[2] for p in parts]),
        birth_day=np.concatenate([p[3] for p in parts]),
        scores=np.concatenate([p[4] for p in parts]),
        chunk_starts=np.concatenate([[0], np.cumsum(sizes)]),
    )
    parts.clear()
    return simulate_deployment(population, settings, weeks, seed, plan.settings.extract_date)


class _EventBuilder:
    """Builds every contract table of one chunk from the latent path and rates."""

    def __init__(
        self, plan, people, latent, rates, age, frailty, visible_to, rng, id_offset, deployment=None
    ) -> None:
        self.plan, self.people, self.latent, self.rates = plan, people, latent, rates
        self.deployment: ChunkDeployment | None = deployment
        self.age, self.frailty, self.visible_to, self.rng = age, frailty, visible_to, rng
        self.timeline = plan.timeline
        self.id_offset = id_offset
        # Separate streams for the national-format detail (diagnoses, complaints, resolved codes):
        # spawned, not drawn, so every other table is the same as without them.
        self.detail_rng = dict(zip(("apc", "ecds", "gp", "csds"), rng.spawn(4), strict=True))
        # The capture-loss scenario's draws, spawned the same way: with it on, only what it drops changes.
        self.capture_rng = rng.spawn(1)[0]
        self.primary: dict[str, np.ndarray] = {}
        self.person_ids = pa.array(people.person_id, type=pa.string())

    def person_text(self, index: np.ndarray) -> pd.api.extensions.ExtensionArray:
        """Person IDs of the given rows, as strings."""
        return pd.array(self.person_ids.take(pa.array(np.asarray(index, dtype=np.int64))), dtype="str")

    def visible(self, person: np.ndarray, day: np.ndarray, from_entry: bool = True) -> np.ndarray:
        lower = self.people.entry_day[person] if from_entry else self.people.birth_day[person]
        return (day >= lower) & (day <= self.visible_to[person])

    def in_care_home(self, person: np.ndarray, day: np.ndarray) -> np.ndarray:
        return self.latent.onset_day[person, CARE_HOME] <= day

    def build(self) -> dict[str, pd.DataFrame]:
        ae, spells = self.hospital()
        tables = {
            "patients": self.patients(),
            "gp_diagnoses": self.diagnoses(),
            "gp_appointments": self.appointments(),
            "gp_medications": self.medications(),
            "community_contacts": self.community(spells),
            "ae_attendances": ae,
            "apc_spells": spells,
            "caseload": self.caseload(),
            "opt_outs": self.opt_outs(),
        }
        if self.plan.settings.social_care.enabled:
            tables.update(self.social_care())
        # Applied last, to the finished tables: everything else is drawn exactly as without it.
        tables["ae_attendances"], tables["apc_spells"] = self.capture_loss(ae, spells)
        return self.simulated_deployment(self.monitoring_scenarios(tables))

    def simulated_deployment(self, tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """The simulated deployment, applied last: drop the admissions enrolment prevented, add the enrolments.

        The prevented rows were marked when drawn (``_prevented``); everything was drawn as
        without the deployment, so with no effect the events are exactly as without it.
        """
        tables = dict(tables)
        for name in ("ae_attendances", "apc_spells"):
            frame = tables[name]
            if PREVENTED in frame.columns:
                kept = ~frame[PREVENTED].to_numpy(dtype=bool)
                tables[name] = frame.loc[kept].drop(columns=PREVENTED).reset_index(drop=True)
        if self.deployment is not None and self.deployment.period_person.size:
            enrolled = enrolment_caseload(
                self.deployment, self.person_text, self.visible_to, self.timeline.extract_day
            )
            tables["caseload"] = pd.concat([tables["caseload"], enrolled], ignore_index=True)
        return tables

    def prevented_admissions(self, person: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Which primary emergency admissions the simulated deployment's enrolment prevents.

        One uniform per admission from a stream of its own (derived from the chunk's seed),
        drawn whatever the effect, so two effects compare like with like.
        """
        deployment = self.deployment
        if deployment is None or deployment.effect <= 0:
            return np.zeros(person.size, dtype=bool)
        uniform = tagged_generator(self.rng.bit_generator.seed_seq, THINNING_STREAM).random(person.size)
        return deployment.prevented(person, day, uniform)

    def monitoring_scenarios(self, tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """The feed-stop and coding-change scenarios (``scenarios.py``), on the finished tables."""
        plan, people = self.plan, self.people
        stop = plan.settings.feed_stop
        stopped = (
            scenarios.feed_stop_practice(plan.settings, plan.practices, plan.residents)
            if stop.enabled
            else None
        )
        codes = plan.practices["practice_code"].to_numpy()[people.practice_index]
        return scenarios.apply_record_scenarios(
            tables, plan.settings, people.person_id, codes, stopped, self.rng
        )

    def social_care(self) -> dict[str, pd.DataFrame]:
        """The social care events and returns received (``social_care.py``), from a stream of their own.

        Other tables are as without them.
        """
        people, latent, lsoas = self.people, self.latent, self.plan.lsoas
        lad = lsoas["lad_code"].to_numpy()[pd.Index(lsoas["lsoa_code"]).get_indexer(people.lsoa_code)]
        inputs = CareInputs(
            timeline=self.timeline,
            person_id=people.person_id,
            birth_day=people.birth_day,
            entry_day=people.entry_day,
            visible_to=self.visible_to,
            lsoa_code=np.asarray(people.lsoa_code, dtype=object),
            la_code=np.asarray(lad, dtype=object),
            onset_day=latent.onset_day,
            death_day=latent.death_day,
            age=self.age,
            frailty=self.frailty,
            episode=latent.episode,
            episodes=latent.episodes,
            discharges=(self.primary["person"], self.primary["discharge"]),
        )
        stream = social_care_stream(self.rng.bit_generator.seed_seq)
        return social_care_tables(
            inputs, self.plan.settings.social_care, self.plan.settings.extract_date, stream
        )

    def capture_loss(self, ae: pd.DataFrame, spells: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The capture-loss scenario: drop a share of one district's residents' emergency spells (and A&E).

        Residents are people whose LSOA lies in the scenario's district. The care happened
        (the latent path, the truth and the community contacts after discharge are unchanged);
        the extract lost it from the scenario's start date.
        """
        scenario = self.plan.settings.capture_loss
        if not scenario.enabled:
            return ae, spells
        lsoas = self.plan.lsoas
        local = lsoas.loc[lsoas["lad_code"] == scenario.lad_code, "lsoa_code"].to_numpy()
        residents = self.people.person_id[np.isin(self.people.lsoa_code, local)]
        hit_spells = (
            spells["person_id"].isin(residents).to_numpy()
            & spells["admission_method"].isin(EMERGENCY_ADMISSION_METHODS).to_numpy()
        )
        hit_ae = ae["person_id"].isin(residents).to_numpy()
        if scenario.start_date is not None:
            start = np.datetime64(scenario.start_date, "s")
            hit_spells = hit_spells & (spells["admission_date"].to_numpy() >= start)
            hit_ae = hit_ae & (ae["arrival_datetime"].to_numpy() >= start)
        rng = self.capture_rng
        lost_spells = hit_spells & (rng.random(len(spells)) < scenario.emergency_admissions_lost)
        lost_ae = hit_ae & (rng.random(len(ae)) < scenario.ae_attendances_lost)
        return ae[~lost_ae].reset_index(drop=True), spells[~lost_spells].reset_index(drop=True)

    # -- people ---------------------------------------------------------------------------
    def patients(self) -> pd.DataFrame:
        p, extract = self.people, self.timeline.extract_day
        died = np.isfinite(self.latent.death_day) & (self.latent.death_day <= np.minimum(p.exit_day, extract))
        end = np.where(died, self.latent.death_day, np.where(p.exit_day <= extract, p.exit_day, np.nan))
        birth_month = p.birth_day.astype("datetime64[D]").astype("datetime64[M]").astype("datetime64[D]")
        practices = self.plan.practices["practice_code"].to_numpy()
        return pd.DataFrame(
            {
                "person_id": _text(p.person_id),
                "birth_date": birth_month.astype("datetime64[s]"),
                "sex": _text(p.sex),
                "ethnic_category": _text(
                    record_ethnic_category(p.ethnic_group, self.plan.settings, self.rng)
                ),
                "lsoa_code": _text(p.lsoa_code),
                "practice_code": _text(practices[p.practice_index]),
                "registration_start": _dates(p.registration_start),
                "registration_end": _dates(end),
                "date_of_death": _dates(np.where(died, self.latent.death_day, np.nan)),
            }
        )

    def opt_outs(self) -> pd.DataFrame:
        s, n = self.plan.settings, self.people.birth_day.size
        type1 = self.rng.random(n) < s.type1_opt_out_share
        ndo = self.rng.random(n) < s.ndo_opt_out_share
        ids = np.concatenate([self.people.person_id[type1], self.people.person_id[ndo]])
        kind = np.concatenate(
            [np.full(type1.sum(), "type1", dtype=object), np.full(ndo.sum(), "ndo", dtype=object)]
        )
        return pd.DataFrame({"person_id": _text(ids), "type": _text(kind)})

    # -- hospital -------------------------------------------------------------------------
    def hospital(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        rng, r, birth = self.rng, self.rates, self.people.birth_day
        streams = []
        kinds = ((r.ae, False, False), (r.ae_fa, True, False), (r.ae_sub, True, True))
        for stream, (rate, low, sub) in enumerate(kinds):
            person, day = ev.poisson_days(rate, self.timeline, rng)
            streams.append(ev.ae_attendances(person, day, ev.age_on(birth, person, day), low, sub, rng))
            streams[-1]["stream"] = np.full(person.size, stream)  # for the complaint mix (complaints.py)
        ae = {k: np.concatenate([s[k] for s in streams]) for k in streams[0]}
        # Primary emergency spells: admitted attendances (via A&E) and direct admissions.
        d_person, d_day = ev.poisson_days(r.direct, self.timeline, rng)
        a_person, a_day = ae["person"][ae["admitted"]], ae["day"][ae["admitted"]]
        person = np.concatenate([a_person, d_person])
        day = np.concatenate([a_day, d_day])
        method = np.concatenate(
            [
                np.where(rng.random(a_person.size) < 0.97, "21", "2A").astype(object),
                ev.direct_methods(d_person.size, rng),
            ]
        )
        age = ev.age_on(birth, person, day)
        los = ev.length_of_stay(age, rng)
        month = np.minimum(self.timeline.month_of(day), self.timeline.months - 1)
        hazard = readmission_hazard(age, self.frailty[person, month])
        self.primary = {"person": person, "admission": day, "discharge": day + los, "hazard": hazard}
        prevented = self.prevented_admissions(person, day)
        # Draw with the admission's index as "person": the same draws, and each readmission's index admission.
        re_index, re_day = ev.readmissions(np.arange(person.size), day + los, hazard, rng)
        re_person = person[re_index]
        re_age = ev.age_on(birth, re_person, re_day)
        parts = [
            (person, day, los, method, ev.emergency_diagnoses(age, rng)),
            (re_person, re_day, ev.length_of_stay(re_age, rng), ev.direct_methods(re_person.size, rng),
             ev.emergency_diagnoses(re_age, rng)),
            self.terminal_admissions(),
            self.planned_admissions(),
        ]  # fmt: skip
        sp_person, sp_day, sp_los, sp_method, sp_diag = (np.concatenate(x) for x in zip(*parts, strict=True))
        # Spells prevented by enrolment: the primary admission and the readmissions after it.
        sp_prevented = np.zeros(sp_person.size, dtype=bool)
        sp_prevented[: person.size] = prevented
        sp_prevented[person.size : person.size + re_index.size] = prevented[re_index]
        keep = self.visible(sp_person, sp_day)
        sp = ev.spells(
            sp_person[keep], sp_day[keep], sp_los[keep], sp_method[keep], sp_diag[keep], self.latent.death_day,
            self.in_care_home(sp_person[keep], sp_day[keep]), rng,
        )  # fmt: skip
        sp[PREVENTED] = sp_prevented[keep]
        ae_prevented = np.zeros(ae["person"].size, dtype=bool)
        ae_prevented[np.flatnonzero(ae["admitted"])] = prevented[: a_person.size]
        died_in_ae = self.died_in_ae()
        ae = {k: np.concatenate([ae[k], died_in_ae[k]]) for k in ae}
        ae[PREVENTED] = np.concatenate([ae_prevented, np.zeros(died_in_ae["person"].size, dtype=bool)])
        keep_ae = self.visible(ae["person"], ae["day"])
        ae = {k: v[keep_ae] for k, v in ae.items()}
        return self._marked(self.ae_frame(ae), ae), self._marked(self.spell_frame(sp), sp)

    def _marked(self, frame: pd.DataFrame, columns: dict[str, np.ndarray]) -> pd.DataFrame:
        """``frame`` with the ``_prevented`` mark (in its row order) when enrolment prevents anything."""
        if self.deployment is None or self.deployment.effect <= 0:
            return frame
        return frame.assign(**{PREVENTED: self._order_of(columns)})

    @staticmethod
    def _order_of(columns: dict[str, np.ndarray]) -> np.ndarray:
        """The ``_prevented`` column sorted as :meth:`ae_frame` and :meth:`spell_frame` sort their rows."""
        second = columns["arrival"] if "arrival" in columns else columns["admission_day"]
        return columns[PREVENTED][np.lexsort((second, columns["person"]))]

    def terminal_admissions(self) -> tuple[np.ndarray, ...]:
        """A third of deaths follow a short emergency admission not via A&E (outside the hazard)."""
        rng, death = self.rng, self.latent.death_day
        person = np.flatnonzero(np.isfinite(death) & (rng.random(death.size) < 0.33))
        los = rng.integers(1, 15, person.size)
        day = (death[person] - los).astype(np.int64)
        age = ev.age_on(self.people.birth_day, person, day)
        return person, day, los + 5, ev.direct_methods(person.size, rng), ev.emergency_diagnoses(age, rng)

    def planned_admissions(self) -> tuple[np.ndarray, ...]:
        rng, r = self.rng, self.rates
        e_person, e_day = ev.poisson_days(r.elective, self.timeline, rng)
        female = self.people.sex == "2"
        maternity_rate = np.where(female[:, None] & (self.age >= 18) & (self.age < 45), 0.055, 0.0)
        m_person, m_day = ev.poisson_days(maternity_rate, self.timeline, rng)
        person = np.concatenate([e_person, m_person])
        day = np.concatenate([e_day, m_day])
        los = np.concatenate([ev.elective_los(e_person.size, rng), rng.integers(0, 4, m_person.size)])
        method = np.concatenate(
            [ev.pick(("11", "12", "13"), np.array([0.7, 0.2, 0.1]), e_person.size, rng),
             ev.pick(("31", "32"), np.array([0.9, 0.1]), m_person.size, rng)]
        )  # fmt: skip
        diagnosis = np.concatenate(
            [
                ev.pick(ev._ELECTIVE_DIAGNOSES, None, e_person.size, rng),
                ev.pick(ev._MATERNITY_DIAGNOSES, None, m_person.size, rng),
            ]
        )
        return person, day, los, method, diagnosis

    def died_in_ae(self) -> dict[str, np.ndarray]:
        """A few deaths happen in A&E (an extra attendance on the day of death)."""
        rng, death = self.rng, self.latent.death_day
        person = np.flatnonzero(np.isfinite(death) & (rng.random(death.size) < 0.03))
        day = death[person].astype(np.int64)
        arrival = day * 86400 + rng.integers(0, 86400 - 7200, person.size)
        return {
            "person": person, "day": day, "arrival": arrival, "departure": arrival + rng.integers(600, 7200, person.size),
            "department_type": np.full(person.size, "01", dtype=object),
            "arrival_mode": np.full(person.size, "ambulance", dtype=object),
            "acuity": np.ones(person.size, dtype=np.int64), "disposal": np.full(person.size, "died", dtype=object),
            "admitted": np.zeros(person.size, dtype=bool),
            "stream": np.full(person.size, complaints.DIED),
        }  # fmt: skip

    def ae_frame(self, ae: dict[str, np.ndarray]) -> pd.DataFrame:
        order = np.lexsort((ae["arrival"], ae["person"]))
        ae = {k: v[order] for k, v in ae.items()}
        last_second = (self.timeline.extract_day + 1) * 86400 - 1
        # A stay that runs past midnight on the day of death ends that day: nothing is dated after death.
        death = self.latent.death_day[ae["person"]]
        end_of_death_day = np.where(
            np.isfinite(death), (np.floor(np.nan_to_num(death, posinf=0)) + 1) * 86400 - 1, last_second
        )
        departure = np.minimum(ae["departure"], np.minimum(end_of_death_day, last_second).astype(np.int64))
        return pd.DataFrame(
            {
                "attendance_id": _text(_ids("AE", self.id_offset, order.size)),
                "person_id": self.person_text(ae["person"]),
                "arrival_datetime": ae["arrival"].astype("datetime64[s]"),
                "departure_datetime": departure.astype("datetime64[s]"),
                "department_type": _text(ae["department_type"]),
                "arrival_mode": _text(ae["arrival_mode"]),
                "acuity": pd.array(ae["acuity"], dtype="Int64"),
                "disposal": _text(ae["disposal"]),
                "complaint_group": _text(self.complaint_groups(ae)),
            }
        )

    def complaint_groups(self, ae: dict[str, np.ndarray]) -> np.ndarray:
        """ECDS chief-complaint group of each attendance, from its own stream of random numbers."""
        person, day = ae["person"], ae["day"]
        conditions = {
            name: self.latent.onset_day[person, CONDITIONS.index(name)] <= day
            for name in complaints.CONDITION_EFFECTS
        }
        age = ev.age_on(self.people.birth_day, person, day)
        return complaints.draw_complaint_groups(age, ae["stream"], conditions, self.detail_rng["ecds"])

    def spell_frame(self, sp: dict[str, np.ndarray]) -> pd.DataFrame:
        order = np.lexsort((sp["admission_day"], sp["person"]))
        sp = {k: v[order] for k, v in sp.items()}
        open_spell = sp["discharge_day"] > self.timeline.extract_day
        discharge = np.where(open_spell, np.nan, sp["discharge_day"])
        destination = sp["discharge_destination"].copy()
        method = sp["discharge_method"].copy()
        destination[open_spell] = None
        method[open_spell] = None
        primary, diagnoses = spell_diagnoses(
            self.latent.onset_day, CONDITIONS, sp["person"], sp["admission_day"], sp["admission_method"],
            sp["primary_diagnosis"], self.detail_rng["apc"],
        )  # fmt: skip
        return pd.DataFrame(
            {
                "spell_id": _text(_ids("S", self.id_offset, order.size)),
                "person_id": self.person_text(sp["person"]),
                "admission_date": _dates(sp["admission_day"]),
                "discharge_date": _dates(discharge),
                "admission_method": _text(sp["admission_method"]),
                "primary_diagnosis": _text(primary),
                "diagnoses": _text(diagnoses),
                "discharge_destination": _text(destination),
                "discharge_method": _text(method),
            }
        )

    # -- primary care ---------------------------------------------------------------------
    def under_recorded(self, person: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Whether a GP record of ``person`` dated ``day`` falls in the under-recording scenario's gap.

        The gap covers the scenario's group from its ``start_date`` (the whole history without one).
        """
        scenario = self.plan.settings.under_recording
        shape = np.broadcast_shapes(np.shape(person), np.shape(day))
        if not scenario.enabled:
            return np.zeros(shape, dtype=bool)
        group = _in_group(self.people, scenario.group_column, scenario.group_value)[person]
        if scenario.start_date is None:
            return np.broadcast_to(group, shape)
        return group & (np.asarray(day) >= to_day(scenario.start_date))

    def recorded_conditions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(person, condition index, record day) of the first GP recording of each condition."""
        rng, onset = self.rng, self.latent.onset_day
        n, c = onset.shape
        share = CONDITION_PARAMETERS["record_share"].to_numpy()[None, :]
        delay = rng.exponential(1.0, (n, c)) * np.where(
            CONDITION_PARAMETERS["risk_weight"].to_numpy() > 0, 60, 120
        )
        recorded_day = np.maximum(onset, self.people.birth_day[:, None].astype(float)) + delay
        scenario = self.plan.settings.under_recording
        if scenario.enabled:
            # Diagnoses that would first be recorded in the gap mostly never are.
            lost = self.under_recorded(np.arange(n)[:, None], recorded_day)
            share = share * np.where(lost, 1 - scenario.share_not_recorded, 1.0)
        keep = np.isfinite(onset) & (rng.random((n, c)) < share)
        person, condition = np.nonzero(keep)
        day = np.floor(recorded_day[person, condition]).astype(np.int64)
        visible = day <= self.visible_to[person]
        return person[visible], condition[visible], day[visible]

    def diagnoses(self) -> pd.DataFrame:
        person, condition, day = self.recorded_conditions()
        self._recorded = (person, condition, day)
        # Resolved codes and recorded eFI scores come from the gp stream alone (gp_records.py).
        gp = self.detail_rng["gp"]
        r_person, r_condition, r_day, resolved = gp_records.resolved_codes(
            person, condition, day, self.visible_to, CONDITIONS, gp
        )
        e_person, e_day, e_score = gp_records.efi_records(
            self.people.birth_day, self.people.entry_day, self.visible_to, self.frailty, self.timeline, gp
        )
        names = np.asarray(CONDITIONS, dtype=object)
        extra_person = np.concatenate([r_person, e_person])
        extra_day = np.concatenate([r_day, e_day])
        extra_condition = np.concatenate(
            [names[r_condition], np.full(e_person.size, gp_records.RECORDED_EFI, dtype=object)]
        )
        extra_status = np.concatenate(
            [
                np.where(resolved, "resolved", "diagnosed").astype(object),
                np.full(e_person.size, "diagnosed", dtype=object),
            ]
        )
        extra_value = np.concatenate([np.full(r_person.size, np.nan), e_score])
        scenario = self.plan.settings.under_recording
        if scenario.enabled and scenario.share_not_recorded > 0:
            # Codes dated in the gap are lost like first recordings (the last draw of the gp stream).
            lost = self.under_recorded(extra_person, extra_day) & (
                gp.random(extra_person.size) < scenario.share_not_recorded
            )
            kept = ~lost
            extra_person, extra_day, extra_condition, extra_status, extra_value = (
                extra_person[kept], extra_day[kept], extra_condition[kept], extra_status[kept], extra_value[kept]
            )  # fmt: skip
        person_all = np.concatenate([person, extra_person])
        day_all = np.concatenate([day, extra_day])
        condition_all = np.concatenate([names[condition], extra_condition])
        status_all = np.concatenate([np.full(person.size, "diagnosed", dtype=object), extra_status])
        value_all = np.concatenate([np.full(person.size, np.nan), extra_value])
        order = np.lexsort((day_all, person_all))
        return pd.DataFrame(
            {
                "person_id": self.person_text(person_all[order]),
                "event_date": _dates(day_all[order]),
                "condition": _text(condition_all[order]),
                "snomed_code": _text(np.full(order.size, None, dtype=object)),
                "status": _text(status_all[order]),
                "value": value_all[order],
            }
        )

    def appointments(self) -> pd.DataFrame:
        person, day = ev.poisson_days(self.rates.gp, self.timeline, self.rng)
        keep = self.visible(person, day)
        person, day = person[keep], day[keep]
        home = np.zeros(person.size, dtype=bool)
        for condition in ("housebound", "care_home_resident"):
            home |= self.latent.onset_day[person, CONDITIONS.index(condition)] <= day
        details = ev.gp_appointments(
            person, ev.age_on(self.people.birth_day, person, day), home, self.people.depr, self.rng
        )
        scenario = self.plan.settings.under_recording
        if scenario.enabled and scenario.gp_activity_not_recorded > 0:
            # Drawn after the appointments themselves, so everyone else's appointments are unchanged;
            # the latent rates (and so the truth) are untouched: the care happened, the extract lost it.
            lost = self.under_recorded(person, day)
            kept = ~lost | (self.rng.random(person.size) >= scenario.gp_activity_not_recorded)
            person, day = person[kept], day[kept]
            details = {name: values[kept] for name, values in details.items()}
        self._appointments = (person, day, details["status"])
        return pd.DataFrame(
            {
                "person_id": self.person_text(person),
                "appointment_date": _dates(day),
                "mode": _text(details["mode"]),
                "status": _text(details["status"]),
            }
        )

    def medications(self) -> pd.DataFrame:
        rng = self.rng
        person, condition, day = self._recorded
        sections_of = CONDITION_PARAMETERS["bnf_sections"].to_numpy()
        pair_person, pair_section, pair_start = [], [], []
        for c, sections in enumerate(sections_of):
            rows = condition == c
            for k, section in enumerate(sections):
                # The first section of a condition is almost always prescribed; others often.
                taken = rows & (rng.random(rows.size) < (0.85 if k == 0 else 0.55))
                pair_person.append(person[taken])
                pair_section.append(np.full(taken.sum(), section, dtype=object))
                pair_start.append(day[taken])
        pairs = pd.DataFrame(
            {
                "person": np.concatenate(pair_person),
                "section": np.concatenate(pair_section),
                "start": np.concatenate(pair_start),
            }
        )
        pairs = pairs.groupby(["person", "section"], as_index=False, sort=True)["start"].min()
        p = pairs["person"].to_numpy()
        lower = np.maximum(self.people.entry_day[p], self.timeline.history_start).astype(float)
        upper = self.visible_to[p]
        index, issue_day = ev.repeat_issues(
            p, pairs["section"].to_numpy(), pairs["start"].to_numpy(), lower, upper, rng
        )
        repeat_person, repeat_section = p[index], pairs["section"].to_numpy()[index]
        scenario = self.plan.settings.under_recording
        if scenario.enabled and scenario.gp_activity_not_recorded > 0:
            # Repeat prescriptions in the gap go unrecorded like the appointments (acute issues
            # below already follow the recorded appointments).
            lost = self.under_recorded(repeat_person, issue_day) & (
                rng.random(repeat_person.size) < scenario.gp_activity_not_recorded
            )
            kept = ~lost
            repeat_person, repeat_section, issue_day = (
                repeat_person[kept],
                repeat_section[kept],
                issue_day[kept],
            )
        # Acute issues at some attended appointments.
        a_person, a_day, status = self._appointments
        acute = (status == "attended") & (rng.random(a_person.size) < 0.18)
        person_all = np.concatenate([repeat_person, a_person[acute]])
        day_all = np.concatenate([issue_day, a_day[acute]])
        section_all = np.concatenate([repeat_section, ev.pick(_ACUTE_SECTIONS, None, int(acute.sum()), rng)])
        order = np.lexsort((day_all, person_all))
        return pd.DataFrame(
            {
                "person_id": self.person_text(person_all[order]),
                "issue_date": _dates(day_all[order]),
                "bnf_code": _text(section_all[order]),
            }
        )

    # -- community ------------------------------------------------------------------------
    def community(self, spells: pd.DataFrame) -> pd.DataFrame:
        rng, tl, onset = self.rng, self.timeline, self.latent.onset_day

        def present(*names: str) -> np.ndarray:
            weights = np.isin(np.asarray(CONDITIONS), names).astype(float)
            return presence_weight(onset, weights, tl) > 0

        old = self.age >= 65
        ltc = presence_weight(onset, CONDITION_PARAMETERS["risk_weight"].to_numpy() > 0.2, tl)
        in_episode = self.latent.episode > 1
        rates = {
            "district_nursing": np.where(present("housebound", "care_home_resident"), 10.0, 0.0)
            + np.where(self.frailty > 0.25, 1.5, 0.0),
            "community_matron": np.where(old & (ltc >= 4), 3.0, 0.0),
            "urgent_community_response": np.where(old & in_episode, 1.5, 0.0),
            "falls": np.where(present("falls", "fragility_fracture") & old, 1.0, 0.0),
            "therapy": np.where(self.age >= 0, 0.05 + 0.25 * old, 0.0),
        }
        persons, days, services = [], [], []
        for service, rate in rates.items():
            person, day = ev.poisson_days(rate, tl, rng)
            persons.append(person)
            days.append(day)
            services.append(np.full(person.size, service, dtype=object))
        for service, share, contacts, span in (
            ("intermediate_care", 0.2, (3, 9), 42),
            ("virtual_ward", 0.06, (5, 11), 14),
        ):
            person, day = self.after_discharge(share, contacts, span)
            persons.append(person)
            days.append(day)
            services.append(np.full(person.size, service, dtype=object))
        person, day = self.palliative()
        persons.append(person)
        days.append(day)
        services.append(np.full(person.size, "palliative", dtype=object))
        person, day, service = np.concatenate(persons), np.concatenate(days), np.concatenate(services)
        keep = self.visible(person, day)
        person, day, service = person[keep], day[keep], service[keep]
        # Whoever the virtual ward saw is on its caseload for that stay (see caseload()).
        ward = service == "virtual_ward"
        self.virtual_ward_contacts = (person[ward], day[ward])
        home_service = np.isin(
            service, ["district_nursing", "community_matron", "palliative", "urgent_community_response"]
        )
        u = rng.random(person.size)
        mode = np.where(u < 0.55, "face_to_face", np.where(u < 0.9, "telephone", "online")).astype(object)
        mode[home_service & (u < 0.85)] = "home_visit"
        order = np.lexsort((day, person))
        return pd.DataFrame(
            {
                "person_id": self.person_text(person[order]),
                "contact_date": _dates(day[order]),
                "service": _text(service[order]),
                "mode": _text(mode[order]),
            }
        )

    def after_discharge(
        self, share: float, contacts: tuple[int, int], span: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Contacts in the weeks after an emergency discharge of a person aged 65+."""
        rng, primary = self.rng, self.primary
        age = ev.age_on(self.people.birth_day, primary["person"], primary["admission"])
        chosen = (age >= 65) & (rng.random(age.size) < share)
        count = rng.integers(contacts[0], contacts[1], chosen.sum())
        index = np.repeat(np.flatnonzero(chosen), count)
        day = primary["discharge"][index] + 1 + rng.integers(0, span, index.size)
        return primary["person"][index], day

    def palliative(self) -> tuple[np.ndarray, np.ndarray]:
        """Weekly palliative care contacts over the last weeks of life for many older people who die."""
        rng, death = self.rng, self.latent.death_day
        age = (np.where(np.isfinite(death), death, 0) - self.people.birth_day) / DAYS_PER_YEAR
        chosen = np.flatnonzero(np.isfinite(death) & (age >= 50) & (rng.random(death.size) < 0.45))
        weeks = rng.integers(2, 13, chosen.size)
        index = np.repeat(chosen, weeks)
        week = np.arange(index.size) - np.repeat(np.cumsum(weeks) - weeks, weeks)
        day = death[index] - 7 * week - rng.integers(1, 7, index.size)
        return index, day.astype(np.int64)

    def caseload(self) -> pd.DataFrame:
        """Current and past caseloads: a share of frail people (moderate or severe latent frailty), and every virtual-ward stay."""
        rng, tl, p = self.rng, self.timeline, self.people
        share = self.plan.settings.caseload_share_of_frail
        practices = self.plan.practices
        neighbourhood = practices["neighbourhood"].to_numpy()[p.practice_index]
        lad = practices["lad_name"].to_numpy()[p.practice_index]
        persons, starts, ends = [], [], []
        for month_back, active in ((0, True), (12, False), (24, False)):
            month = tl.month_of(np.array([tl.extract_day]))[0] - month_back
            at = tl.boundaries[month]
            alive = (self.latent.death_day > at) & (p.exit_day > at) & (p.entry_day <= at)
            frail = (self.frailty[:, month] > 0.24) & (self.age[:, month] >= 65)
            chosen = np.flatnonzero(alive & frail & (rng.random(alive.size) < share))
            start = at - rng.integers(14, 270, chosen.size)
            start = np.maximum(start, p.entry_day[chosen])
            end = (
                np.full(chosen.size, np.nan)
                if active
                else np.minimum(start + rng.integers(60, 300, chosen.size), at)
            )
            persons.append(chosen)
            starts.append(start)
            ends.append(end)
        person, start, end = np.concatenate(persons), np.concatenate(starts), np.concatenate(ends)
        end = np.where(np.isfinite(end), np.minimum(end, self.visible_to[person]), np.where(
            self.visible_to[person] < tl.extract_day, self.visible_to[person], np.nan))  # fmt: skip
        keep = (start <= tl.extract_day) & (~np.isfinite(end) | (end >= start))
        person, start, end = person[keep], start[keep], end[keep]
        virtual = rng.random(person.size) < 0.3
        team = np.where(
            virtual, lad[person] + " virtual ward", neighbourhood[person] + " proactive care team"
        )
        ward_person, ward_start, ward_end = self.virtual_ward_stays()
        person = np.concatenate([person, ward_person])
        start = np.concatenate([start, ward_start])
        end = np.concatenate([end, ward_end])
        team = np.concatenate([team, lad[ward_person] + " virtual ward"])
        return pd.DataFrame(
            {
                "person_id": self.person_text(person),
                "team": _text(team.astype(object)),
                "start_date": _dates(start),
                "end_date": _dates(end),
            }
        )

    def virtual_ward_stays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Caseload rows of the virtual-ward stays seen in the community contacts: (person, start, end days).

        A stay runs from a person's first virtual-ward contact to their last, a gap of more
        than :data:`VIRTUAL_WARD_GAP_DAYS` starting a new stay; one still running at the
        extract date (last contact in its final week, person still registered) has no end.
        So anyone the virtual ward saw was on its caseload then, as a ward's own list would show.
        """
        person, day = self.virtual_ward_contacts
        if person.size == 0:  # a small chunk (e.g. a few young new residents) may have none
            return person, day, np.empty(0)
        order = np.lexsort((day, person))
        person, day = person[order], day[order]
        new = np.ones(person.size, dtype=bool)
        new[1:] = (person[1:] != person[:-1]) | (day[1:] - day[:-1] > VIRTUAL_WARD_GAP_DAYS)
        first = np.flatnonzero(new)
        last = np.append(first[1:], person.size) - 1
        extract = self.timeline.extract_day
        ongoing = (day[last] > extract - 7) & (self.visible_to[person[first]] >= extract)
        end = np.where(ongoing, np.nan, day[last]).astype(float)
        return person[first], day[first], end


PREVENTED = "_prevented"
"""Marks the A&E attendances and spells the simulated deployment's enrolment prevents (dropped last)."""

VIRTUAL_WARD_GAP_DAYS = 28
"""Days without a virtual-ward contact after which the next contact starts a new stay."""


def _text(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Object array of str/None as pandas' default string dtype (via Arrow, fast)."""
    return pd.array(pa.array(values, type=pa.string(), from_pandas=True), dtype="str")


def _ids(prefix: str, offset: int, count: int) -> np.ndarray:
    numbers = np.arange(offset, offset + count)
    return np.char.add(prefix, np.char.zfill(numbers.astype(str), 10)).astype(object)


def _dates(day: np.ndarray) -> pd.Series:
    """Day numbers (NaN/inf = missing) as datetime64[s] dates."""
    day = np.asarray(day, dtype=float)
    valid = np.isfinite(day)
    values = np.where(valid, day, 0).astype(np.int64).astype("datetime64[D]").astype("datetime64[s]")
    series = pd.Series(values)
    return series.where(valid)


def _truth_generator(rng: np.random.Generator) -> np.random.Generator:
    """A stream of its own for the oracle's Monte Carlo, derived from the chunk's seed.

    It draws nothing from the chunk's stream, so the extract (and any scenario) is as without it,
    and a scenario that changes only what is recorded leaves the truth identical.
    """
    seed = rng.bit_generator.seed_seq
    return np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, 1 << 20)))


def _truth_risk(
    plan, people: _People, latent: LatentPaths, barrier: np.ndarray, builder: _EventBuilder, rng
) -> pd.DataFrame:
    """True probabilities at each truth as-of date for the people alive and registered then.

    The oracle knows the latent state at T, not what happens after it (see ``truth.true_risk_at``).
    """
    primary = builder.primary
    scenario = plan.settings.access_barrier
    inputs = OracleInputs(
        timeline=plan.timeline,
        birth_day=people.birth_day,
        male=people.sex == "1",
        depr=people.depr,
        ethnic_group=people.ethnic_group,
        latent=latent,
        barrier=barrier,
        gp_reduction=scenario.gp_appointment_reduction,
        ae_substitution=scenario.ae_substitution,
        spells=(primary["person"], primary["admission"], primary["discharge"], primary["hazard"]),
    )
    inputs = with_onset_prior(inputs)  # the same at every as-of date
    frames = []
    for as_of_date in plan.settings.truth_as_of:
        t = to_day(as_of_date)
        cohort = (people.entry_day <= t) & (latent.death_day > t) & (people.exit_day > t)
        risk = true_risk_at(oracle_subset(inputs, np.flatnonzero(cohort)), t, rng)
        frames.append(
            pd.DataFrame(
                {
                    "person_id": _text(people.person_id[cohort]),
                    "as_of": pd.Series(np.full(cohort.sum(), np.datetime64(as_of_date, "s"))),
                    "p_emergency_admission": risk[:, 0],
                    "p_emergency_admission_90d": risk[:, 1],
                    "p_frequent_attendance": risk[:, 2],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _truth_people(
    people: _People, latent: LatentPaths, timeline: Timeline, barrier: np.ndarray, settings
) -> pd.DataFrame:
    scenario = settings.under_recording
    under = (
        _in_group(people, scenario.group_column, scenario.group_value)
        if scenario.enabled
        else np.zeros(barrier.size, bool)
    )
    care_home_day = latent.onset_day[:, CARE_HOME]
    return pd.DataFrame(
        {
            "person_id": _text(people.person_id),
            "ethnic_group": _text(people.ethnic_group),
            "imd_decile": people.decile.astype("int64"),
            "frequent_attender": latent.frequent_attender,
            "care_home": care_home_day <= timeline.extract_day,
            "care_home_from": _dates(np.where(np.isfinite(care_home_day), care_home_day, np.nan)),
            "propensity": latent.propensity,
            "morbidity": latent.morbidity,
            "death_date": _dates(np.where(np.isfinite(latent.death_day), latent.death_day, np.nan)),
            "under_recorded": under,
            "access_barrier": barrier,
        }
    )


__all__ = [
    "PopulationPlan",
    "SyntheticPopulation",
    "generate_population",
    "iter_population",
    "plan_deployment",
    "plan_population",
]
