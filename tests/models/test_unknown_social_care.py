"""Training rows masked as "social care not known", so a missing return is not scored as "no support"."""

from __future__ import annotations

import numpy as np
import pandas as pd
from synthetic_training import FEATURES, fast_settings, make_training_table

from riskstrat.features import social_care
from riskstrat.models.training import feature_matrix, mask_unknown_social_care, train_outcome

SOCIAL = [social_care.KNOWN, social_care.LONG_TERM_SUPPORT, social_care.CARER]


def _table(n_persons: int = 6_000) -> pd.DataFrame:
    """The model fixture plus social care columns, every return in; long-term support raises the risk."""
    table = make_training_table(n_persons=n_persons, seed=11)
    rng = np.random.default_rng(3)
    support = (rng.random(len(table)) < 0.3).astype(int)
    table[social_care.KNOWN] = 1
    table[social_care.LONG_TERM_SUPPORT] = support
    table[social_care.CARER] = (rng.random(len(table)) < 0.1).astype(int)
    # Support raises the risk strongly: a person with it has the outcome far more often.
    raised = rng.random(len(table)) < 0.35
    table["emergency_admission"] = np.where((support == 1) & raised, 1, table["emergency_admission"])
    return table


def test_masking_touches_a_seeded_share_of_training_rows_only_in_the_social_care_columns() -> None:
    table = _table(2_000)
    names = FEATURES + SOCIAL
    x = feature_matrix(table, names)
    before = x.copy()
    masked, record = mask_unknown_social_care(x, names, 0.1, seed=5)
    rows = np.flatnonzero(np.isnan(masked[:, names.index(social_care.LONG_TERM_SUPPORT)]))
    assert record["unknown_social_care_rows"] == len(rows) == round(0.1 * len(x))
    assert (masked[rows, names.index(social_care.KNOWN)] == 0).all()
    assert np.isnan(masked[rows, names.index(social_care.CARER)]).all()
    np.testing.assert_array_equal(masked[:, : len(FEATURES)], before[:, : len(FEATURES)])
    untouched = np.setdiff1d(np.arange(len(x)), rows)
    np.testing.assert_array_equal(masked[untouched], before[untouched])
    again, _ = mask_unknown_social_care(feature_matrix(table, names), names, 0.1, seed=5)
    np.testing.assert_array_equal(np.isnan(again), np.isnan(masked))
    other, _ = mask_unknown_social_care(feature_matrix(table, names), names, 0.1, seed=6)
    assert not np.array_equal(np.isnan(other), np.isnan(masked))


def test_off_or_without_social_care_nothing_changes() -> None:
    table = _table(1_000)
    x = feature_matrix(table, FEATURES + SOCIAL)
    _, record = mask_unknown_social_care(x, FEATURES + SOCIAL, 0.0, seed=5)
    assert record["unknown_social_care_rows"] == 0 and not np.isnan(x[:, len(FEATURES) :]).any()
    y = feature_matrix(table, FEATURES)
    _, record = mask_unknown_social_care(y, FEATURES, 0.2, seed=5)
    assert record["unknown_social_care_rows"] == 0


def test_a_person_with_social_care_not_known_is_not_scored_as_no_support() -> None:
    table = _table()
    names = FEATURES + SOCIAL
    result = train_outcome(table, names, "emergency_admission", fast_settings(unknown_social_care_share=0.2))
    # Validation and test rows keep their real values: every one is known.
    assert result.summary["unknown_social_care_rows"] == round(0.2 * result.summary["rows_train"])
    assert (table.iloc[result.test_rows][social_care.KNOWN] == 1).all()
    person = table.iloc[result.test_rows[:200]].copy()
    no_care = person.assign(**{social_care.LONG_TERM_SUPPORT: 0})
    care = person.assign(**{social_care.LONG_TERM_SUPPORT: 1})
    unknown = person.assign(
        **{social_care.KNOWN: 0, social_care.LONG_TERM_SUPPORT: np.nan, social_care.CARER: np.nan}
    )
    score = {
        name: result.model.predict_proba(frame).mean()
        for name, frame in (("no care", no_care), ("care", care), ("unknown", unknown))
    }
    assert score["no care"] < score["unknown"] < score["care"], score
