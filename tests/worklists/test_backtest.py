"""Back-tested lists: the weekly selector on the test rows, at capacity scaled to the test sample."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from riskstrat.errors import RiskstratError
from riskstrat.evaluation.fairness import selections_schema, validate_selections
from riskstrat.worklists.backtest import NO_MDT, WHOLE_POPULATION, back_test_lists, scaled_to_test_rows
from riskstrat.worklists.selection import STATUS_COLUMNS, probability_column, select_worklists
from riskstrat.worklists.settings import ExclusionSettings, Mdt, RiskBandSettings

OUTCOME = "emergency_admission"
BANDS = RiskBandSettings()


def _mdt(name: str, practices: tuple[str, ...], **overrides: object) -> Mdt:
    values: dict[str, object] = {
        "name": name,
        "practices": practices,
        "outcome": OUTCOME,
        "min_age": 18,
        "capacity_people": None,
        "capacity_share": None,
        "exclusions": ExclusionSettings(),
    }
    values.update(overrides)
    return Mdt(**values)  # type: ignore[arg-type]


def _test_rows(n: int = 2_000, seed: int = 3) -> pd.DataFrame:
    """Feature-matrix-like test rows: North (A1, A2) 1,000, South (B1) 500, an uncovered practice 500."""
    rng = np.random.default_rng(seed)
    practice = np.where(
        np.arange(n) < 600,
        "A1",
        np.where(np.arange(n) < 1_000, "A2", np.where(np.arange(n) < 1_500, "B1", "Z9")),
    )
    return pd.DataFrame(
        {
            "person_id": [f"P{i:05d}" for i in range(n)],
            "as_of": pd.Timestamp("2024-12-31").date(),
            "practice_code": practice,
            "age": rng.integers(18, 95, size=n).astype(float),
            OUTCOME: rng.binomial(1, 0.1, size=n),
            "ethnic_group": rng.choice(["White", "Asian", "Black"], size=n),
            "imd_quintile": rng.integers(1, 6, size=n).astype(float),
            "sex": rng.choice(["1", "2"], size=n),
            "age_band": "45-64",
        }
    )


def _listed(selections: pd.DataFrame, mdt: str | None = None) -> set[str]:
    chosen = selections[selections["selected"]]
    if mdt is not None:
        chosen = chosen[chosen["mdt"] == mdt]
    return set(chosen["person_id"])


def test_each_mdt_lists_its_own_share_and_nobody_outside_an_mdt():
    rows = _test_rows()
    p = np.random.default_rng(4).uniform(0, 0.5, size=len(rows))
    mdts = [_mdt("North", ("A1", "A2"), capacity_share=0.01), _mdt("South", ("B1",), capacity_share=0.1)]
    predictions, selections = back_test_lists(rows, p, OUTCOME, mdts, BANDS, 0.2, 0.005)
    assert selections[selections["selected"]].groupby("mdt").size().to_dict() == {"North": 10, "South": 50}
    top_north = predictions[predictions["mdt"] == "North"].nlargest(10, "p")["person_id"]
    assert _listed(selections, "North") == set(top_north)
    assert (predictions.loc[predictions["practice_code"] == "Z9", "mdt"] == NO_MDT).all()
    assert not selections.loc[selections["mdt"] == NO_MDT, "selected"].any()
    assert set(selections_schema().column_names()) <= set(selections.columns) and "y" in selections.columns
    validate_selections(selections)


def test_capacity_in_people_is_scaled_to_the_test_sample():
    # 1,000 test rows are a fifth of North's 5,000 people: a list of 40 a week is 8 of them.
    rows = _test_rows()
    p = np.random.default_rng(5).uniform(0, 0.5, size=len(rows))
    mdts = [_mdt("North", ("A1", "A2"), capacity_people=40), _mdt("South", ("B1",), capacity_people=5_000)]
    _, selections = back_test_lists(rows, p, OUTCOME, mdts, BANDS, 0.2, 0.005)
    assert len(_listed(selections, "North")) == math.ceil(40 * 0.2)
    # South's capacity exceeds its 2,500 people: everyone in its test rows is listed.
    assert len(_listed(selections, "South")) == 500
    scaled = scaled_to_test_rows(mdts[0], 1_000, 0.2)
    assert scaled.capacity_people is None and scaled.capacity_share == pytest.approx(40 / 5_000)


def test_the_back_test_lists_whom_the_weekly_selector_lists_ties_and_age_floor_included():
    rows = _test_rows()
    # Calibrated probabilities take few values: many ties at the cut-off, broken as each Monday.
    p = np.round(np.random.default_rng(6).uniform(0, 0.3, size=len(rows)), 2)
    rows.loc[rows.index[:50], "age"] = 16.0
    p[:50] = 0.99  # the highest risk, but below North's age floor of 18
    mdts = [_mdt("North", ("A1", "A2"), capacity_share=0.05), _mdt("South", ("B1",), capacity_share=0.05)]
    _, selections = back_test_lists(rows, p, OUTCOME, mdts, BANDS, 0.2, 0.005)

    scored = rows[["person_id", "practice_code", "age"]].assign(**{probability_column(OUTCOME): p})
    scored = scored.assign(**dict.fromkeys(STATUS_COLUMNS, False))
    weekly = select_worklists(scored, mdts, BANDS)
    for name, selection in weekly.items():
        assert _listed(selections, name) == set(selection.listed["person_id"])
    assert not _listed(selections) & set(rows["person_id"][:50])


def test_without_mdts_everyone_is_one_list_at_the_evaluation_share():
    rows = _test_rows()
    p = np.random.default_rng(7).uniform(0, 0.5, size=len(rows))
    predictions, selections = back_test_lists(rows, p, OUTCOME, [], BANDS, 0.2, 0.005)
    assert (selections["mdt"] == WHOLE_POPULATION).all()
    assert _listed(selections) == set(predictions.nlargest(math.ceil(0.005 * len(rows)), "p")["person_id"])


def test_mdts_ranked_by_another_outcome_are_back_tested_at_their_size_only_when_none_ranks_by_this_one():
    rows = _test_rows()
    p = np.random.default_rng(8).uniform(0, 0.5, size=len(rows))
    other = "frequent_attendance"
    mdts = [_mdt("North", ("A1", "A2"), capacity_share=0.02, outcome=other)]
    _, selections = back_test_lists(rows, p, OUTCOME, mdts, BANDS, 0.2, 0.005)
    assert len(_listed(selections, "North")) == 20
    both = [*mdts, _mdt("South", ("B1",), capacity_share=0.02)]
    predictions, selections = back_test_lists(rows, p, OUTCOME, both, BANDS, 0.2, 0.005)
    assert set(predictions["mdt"]) == {"South", NO_MDT} and len(_listed(selections)) == 10


def test_a_practice_in_two_back_tested_mdts_is_refused():
    rows = _test_rows()
    mdts = [_mdt("North", ("A1",), capacity_people=5), _mdt("Also north", ("A1",), capacity_people=5)]
    with pytest.raises(RiskstratError, match="two back-tested MDTs"):
        back_test_lists(rows, np.full(len(rows), 0.1), OUTCOME, mdts, BANDS, 0.2, 0.005)
