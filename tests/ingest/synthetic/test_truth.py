"""The oracle is the true risk given the latent state at T: it must not know what happens after T."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from riskstrat.ingest.synthetic.health import (
    EpisodeSpans,
    LatentPaths,
    age_at,
    draw_episode_spans,
    draw_onsets,
    draw_propensity,
    episode_multiplier,
    frailty_index,
)
from riskstrat.ingest.synthetic.timeline import DAYS_PER_YEAR, build_timeline, to_day
from riskstrat.ingest.synthetic.truth import OracleInputs, true_risk_at

AS_OF = to_day(date(2023, 12, 31))


@pytest.fixture(scope="module")
def inputs() -> OracleInputs:
    rng = np.random.default_rng(0)
    n = 400
    timeline = build_timeline(date(2021, 1, 1), date(2025, 12, 31))
    birth = (timeline.extract_day - rng.uniform(20, 90, n) * DAYS_PER_YEAR).astype(np.int64)
    male, depr = rng.random(n) < 0.5, rng.random(n)
    ethnic = np.full(n, "White", dtype=object)
    morbidity = rng.normal(size=n)
    onset = draw_onsets(birth, male, depr, ethnic, morbidity, rng)
    propensity, attender, fa_rate, fa_months, fa_start, fa_length = draw_propensity(onset, timeline, rng)
    # Plenty of frequent attenders, so spells under way, over and still to come all occur.
    attender = attender | (rng.random(n) < 0.3)
    fa_rate = np.where(attender, 9.0, 0.0)
    month = np.arange(timeline.months)[None, :]
    fa_months = attender[:, None] & (month >= fa_start[:, None]) & (month < (fa_start + fa_length)[:, None])
    spans = draw_episode_spans(age_at(birth, timeline), frailty_index(onset, timeline), rng)
    latent = LatentPaths(
        onset, morbidity, propensity, attender, fa_rate, fa_months,
        episode_multiplier(spans, n, timeline.months), np.full(n, np.inf), fa_start, fa_length, spans,
    )  # fmt: skip
    none = np.array([], dtype=np.int64)
    return OracleInputs(
        timeline, birth, male, depr, ethnic, latent, np.zeros(n, bool), 0.5, 0.15,
        (none, none, none, np.array([], dtype=float)),
    )  # fmt: skip


def _risk(inputs: OracleInputs) -> np.ndarray:
    return true_risk_at(inputs, AS_OF, np.random.default_rng(5), draws=8)


def test_oracle_ignores_everything_after_the_as_of_date(inputs):
    """Moving spells, onsets and episodes that begin after T leaves the truth at T unchanged."""
    latent, timeline = inputs.latent, inputs.timeline
    month = int(timeline.month_of(np.array([AS_OF]))[0])
    not_started = ~(latent.frequent_attender & (latent.fa_start <= month))
    # Everyone whose spell had not started by T now starts one the month after T, at a huge rate.
    fa_start = np.where(not_started, month + 1, latent.fa_start)
    future = replace(
        latent,
        frequent_attender=latent.frequent_attender | not_started,
        fa_rate=np.where(not_started, 60.0, latent.fa_rate),
        fa_start=fa_start,
        onset_day=np.where(latent.onset_day <= AS_OF, latent.onset_day, AS_OF + 40.0),
        episodes=EpisodeSpans(
            *(
                part[latent.episodes.start <= month]
                for part in (latent.episodes.person, latent.episodes.start)
            ),
            latent.episodes.end[latent.episodes.start <= month],
        ),
    )
    np.testing.assert_array_equal(_risk(inputs), _risk(replace(inputs, latent=future)))


def test_oracle_knows_the_state_at_the_as_of_date(inputs):
    """A frequent-attender spell under way at T raises the truth of both outcomes."""
    latent, timeline = inputs.latent, inputs.timeline
    month = int(timeline.month_of(np.array([AS_OF]))[0])
    base = _risk(inputs)
    in_spell = replace(
        latent,
        frequent_attender=np.ones_like(latent.frequent_attender),
        fa_rate=np.full(latent.fa_rate.shape, 9.0),
        fa_start=np.full(latent.fa_start.shape, month - 1),
        fa_length=np.full(latent.fa_length.shape, 48),
    )
    spell = _risk(replace(inputs, latent=in_spell))
    assert np.median(spell[:, 2]) > 0.3 > np.median(base[:, 2])
    # Its extra low-acuity visits are sometimes admitted.
    assert spell[:, 0].mean() > base[:, 0].mean() + 0.05
    assert (base[:, 1] <= base[:, 0] + 1e-12).all()
    assert ((base >= 0) & (base <= 1)).all()


def test_same_seed_gives_the_same_truth(small_population):
    """The oracle's Monte Carlo is seeded from the population's seed, so the truth is reproducible."""
    from riskstrat.ingest.synthetic.generate import generate_population
    from riskstrat.ingest.synthetic.settings import SyntheticSettings

    again = generate_population(SyntheticSettings(), 2000, seed=11)
    assert again.truth["risk"].equals(small_population.truth["risk"])


def test_oracle_rates_on_a_path_are_the_generators_rates(inputs):
    """The oracle's shortcut (onsets by T once, drawn onsets added sparsely) gives the generator's own rates."""
    from riskstrat.ingest.synthetic.health import CONDITION_PARAMETERS, death_rate, presence_weight
    from riskstrat.ingest.synthetic.rates import service_rates
    from riskstrat.ingest.synthetic.timeline import Timeline
    from riskstrat.ingest.synthetic.truth import (
        _age_curves,
        _FutureOnsets,
        _known_at,
        _path_rates,
        _presence,
        window_probabilities,
        window_weights,
    )

    tl, latent, n = inputs.timeline, inputs.latent, inputs.birth_day.size
    month = int(tl.month_of(np.array([AS_OF]))[0])
    grid = Timeline(tl.boundaries[month : month + 15], tl.history_start, tl.extract_day)
    middle = tl.months // 2
    onset = latent.onset_day
    person, condition = np.nonzero((onset > AS_OF) & (onset < tl.boundaries[-1]))
    future = _FutureOnsets(person, condition, onset[person, condition], np.zeros(n, bool))
    assert person.size > 20  # some onsets fall after T, inside and beyond the grid
    presence = _presence(_known_at(onset, AS_OF), future, grid, float(tl.boundaries[middle + 1]), True)
    middle_grid = Timeline(tl.boundaries[middle : middle + 2], tl.history_start, tl.extract_day)
    frailty = frailty_index(onset, grid)
    np.testing.assert_allclose(presence.frailty, frailty, rtol=1e-12)
    np.testing.assert_allclose(presence.frailty_middle, frailty_index(onset, middle_grid)[:, 0], rtol=1e-12)
    weights = CONDITION_PARAMETERS["death_weight"].to_numpy()
    np.testing.assert_allclose(presence.death_burden, presence_weight(onset, weights, grid), atol=1e-12)

    rng = np.random.default_rng(3)
    age = age_at(inputs.birth_day, grid)
    episode = np.where(rng.random(age.shape) < 0.2, 3.0, 1.0)
    fa_months = rng.random(age.shape) < 0.3
    barrier = rng.random(n) < 0.5
    death = death_rate(age, onset, frailty, inputs.depr, episode, grid)
    rates = service_rates(
        age, onset, frailty, inputs.depr, latent.propensity, episode, latent.fa_rate, fa_months, death,
        barrier, 0.5, 0.15, grid,
    )  # fmt: skip
    path = _path_rates(
        _age_curves(inputs.birth_day, grid),
        presence,
        inputs.depr,
        latent.propensity,
        episode,
        barrier,
        0.5,
        0.15,
    )
    for name in ("ae", "ae_sub", "direct", "death", "admit_ae", "admit_low"):
        np.testing.assert_allclose(getattr(path, name), getattr(rates, name), rtol=1e-12, err_msg=name)
    excess = rng.random(n) * 0.1
    extra = np.where(rng.random(age.shape) < 0.5, 7.0, 0.0)
    without, with_spell = path.window_pair(
        rates.ae_fa, extra, window_weights(grid, AS_OF), excess, excess / 2
    )
    for ae_fa, got in ((rates.ae_fa, without), (rates.ae_fa + extra, with_spell)):
        spelled = replace(rates, ae_fa=ae_fa)
        expected = window_probabilities(
            spelled.emergency_admission, death, spelled.ae + spelled.ae_fa + spelled.ae_sub, grid, AS_OF,
            excess, excess / 2,
        )  # fmt: skip
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-15)
