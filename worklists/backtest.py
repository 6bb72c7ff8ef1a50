"""Back-tested lists: each MDT's list drawn up on held-out test rows, for the fairness audit.

The board must see whom the lists that go out each Monday select and how those
people's outcomes turned out. So a back-test does not imitate the lists with a rule
of its own: it treats the test rows as the scored population and draws up every
MDT's list with :func:`riskstrat.worklists.selection.select_worklists`, the weekly
run's selector, with the same ranking, tie-break (higher probability, then a stable
hash of the person_id), age floor and exclusions.

Capacity is scaled to the test sample. The test rows hold the test persons only
(``test_share`` of everyone), so an MDT with ``capacity_people`` C and n test rows
at its practices lists the share C / (n / test_share) of them (about C x test_share
people); an MDT with ``capacity_share`` lists that share as it is. People outside
every MDT are never listed. Without MDTs every test row is in one list at
``share_without_mdts``.

The MDTs are those ranked by the audited outcome; when none is, every MDT is
back-tested as if it were, so the board still sees lists of the sizes in use.

What the test rows cannot show, and so what the back-test cannot apply:

* died / deregistered: everyone in the test rows was alive and registered at the
  test as-of date (that is the cohort), so these exclusions never apply;
* active caseload and type 1 opt-out: the feature matrix carries no caseload or
  opt-out status at the as-of date, so nobody is left off (or flagged) for them,
  and a back-test list may hold a person the weekly run would leave off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from riskstrat.errors import RiskstratError
from riskstrat.evaluation.groups import NO_MDT, grouping_columns
from riskstrat.worklists.selection import STATUS_COLUMNS, probability_column, select_worklists
from riskstrat.worklists.settings import ExclusionSettings, Mdt, RiskBandSettings

WHOLE_POPULATION = "All"
"""Name of the one list drawn up when there are no MDTs."""


def back_test_lists(
    test_rows: pd.DataFrame,
    probabilities: ArrayLike,
    outcome: str,
    mdts: Sequence[Mdt],
    bands: RiskBandSettings,
    test_share: float,
    share_without_mdts: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test-row predictions and the lists the weekly selector draws up from them.

    Args:
        test_rows: Feature-matrix rows of the test persons at the test as-of date (one per
            person): ``person_id``, ``practice_code``, ``age``, the outcome column and the
            grouping columns, plus any need measures the audit reads.
        probabilities: The model's calibrated probability of ``outcome`` for each row, in order.
        outcome: The audited outcome (a column of ``test_rows``).
        mdts: The resolved MDTs (``riskstrat.worklists.settings.resolve_mdts``); may be empty.
        bands: Risk band settings (the selector bands each listed person).
        test_share: Share of all persons in the test split (``model.split.test``).
        share_without_mdts: Share listed when there are no MDTs
            (``model.evaluation.capacity_share``).

    Returns:
        The predictions (``test_rows`` with ``y``, ``p`` and ``mdt``, the MDT whose list serves
        the row's practice: the place the audit's MDT grouping reads) and the selections
        (``riskstrat.evaluation.fairness.selections_schema`` with ``y``), one row per test row.

    Raises:
        RiskstratError: If a practice is in two back-tested MDTs, or a column the selector
            needs is missing.
    """
    predictions = test_rows.copy()
    predictions["y"] = predictions[outcome].astype(int)
    predictions["p"] = np.asarray(probabilities, dtype=float)
    ranked = mdts_ranked_by(outcome, mdts)
    if ranked:
        predictions["mdt"] = predictions["practice_code"].map(_mdt_of_practice(ranked)).fillna(NO_MDT)
        test_counts = predictions["mdt"].value_counts()
        listing = [scaled_to_test_rows(m, int(test_counts.get(m.name, 0)), test_share) for m in ranked]
    else:
        predictions["mdt"] = WHOLE_POPULATION
        listing = [_whole_population(predictions, outcome, share_without_mdts)]
    chosen = select_worklists(_scored(predictions, outcome), listing, bands)
    listed = set().union(*(set(s.listed["person_id"]) for s in chosen.values()))
    # The grouping columns the rows carry (a place's, like lsoa_code or mdt, may be absent or be mdt itself).
    carried = [c for c in grouping_columns() if c in predictions.columns]
    selections = predictions[list(dict.fromkeys(["person_id", "mdt", *carried, "y"]))].copy()
    selections["selected"] = predictions["person_id"].astype(str).isin(listed).to_numpy()
    return predictions, selections


def mdts_ranked_by(outcome: str, mdts: Sequence[Mdt]) -> list[Mdt]:
    """The MDTs whose lists rank by ``outcome``; when none does, every MDT ranked by it instead."""
    own = [m for m in mdts if m.outcome == outcome]
    return own or [replace(m, outcome=outcome) for m in mdts]


def scaled_to_test_rows(mdt: Mdt, test_rows: int, test_share: float) -> Mdt:
    """``mdt`` with its capacity as a share of its test rows, so its list is to scale.

    Args:
        mdt: The MDT.
        test_rows: Test rows at its practices.
        test_share: Share of all persons in the test split.

    Returns:
        ``mdt`` itself when its capacity is a share already; otherwise the MDT with
        ``capacity_people`` C replaced by the share C / (test_rows / test_share), at most 1.
    """
    if mdt.capacity_people is None:
        return mdt
    registered = test_rows / test_share
    share = min(mdt.capacity_people / registered, 1.0) if registered else 0.0
    return replace(mdt, capacity_people=None, capacity_share=share)


def _mdt_of_practice(mdts: Sequence[Mdt]) -> dict[str, str]:
    owner: dict[str, str] = {}
    for mdt in mdts:
        for practice in mdt.practices:
            first = owner.setdefault(practice, mdt.name)
            if first != mdt.name:
                raise RiskstratError(
                    f"practice {practice} is in two back-tested MDTs, '{first}' and '{mdt.name}'",
                    hint="Give each practice to one MDT per outcome in configs/mdts.yaml.",
                )
    return owner


def _whole_population(predictions: pd.DataFrame, outcome: str, share: float) -> Mdt:
    """One list over every practice in the test rows, with no age floor beyond the cohort's."""
    practices = tuple(sorted(predictions["practice_code"].dropna().astype(str).unique()))
    return Mdt(
        name=WHOLE_POPULATION,
        practices=practices,
        outcome=outcome,
        min_age=0,
        capacity_people=None,
        capacity_share=share,
        exclusions=ExclusionSettings(),
    )


def _scored(predictions: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """The test rows as the selector's scored population (statuses the rows cannot show are False)."""
    missing = [c for c in ("person_id", "practice_code", "age") if c not in predictions.columns]
    if missing:
        raise RiskstratError(
            f"test rows: missing column(s) {', '.join(missing)} the list back-test needs",
            hint="Back-test on feature-matrix rows: they carry person_id, practice_code and age.",
        )
    scored = predictions[["person_id", "practice_code", "age"]].copy()
    scored["person_id"] = scored["person_id"].astype(str)
    scored[probability_column(outcome)] = predictions["p"].to_numpy()
    for column in STATUS_COLUMNS:
        scored[column] = False
    return scored
