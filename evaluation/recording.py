"""Under-recording in the GP record: hospital-recorded long-term conditions the GP record also holds.

When a group's practices record less of its illness, a model fed by the GP record
sees the group as healthier than it is; need measures from the same record cannot
show it. A hospital diagnosis is an independent record of the same conditions, so
the direct measure is: of the people with a long-term condition coded in hospital
(in the look-back before the as-of date), the share whose GP record holds every one
of those conditions as current at the as-of date. Each group's share is compared
with everyone else's in the same rows, as a ratio.

* The ratio's interval and its one-sided p-value both come from the score method
  for two independent proportions (statsmodels ``confint_proportions_2indep`` and
  ``test_proportions_2indep``, ``compare="ratio"``), so the interval holds the
  estimate and agrees with the test. The p-value tests the hypothesis that the
  ratio is at least the tolerance (``tolerances.gp_recording_ratio``) against the
  alternative that it is lower: a small p-value is evidence of under-recording.
* People, not conditions, are counted: a person's conditions are not independent.
* A group with fewer than ``min_cell_n`` people with a hospital-recorded condition,
  or fewer than ``min_cell_events`` of them recorded (or not recorded) at the GP, is
  "insufficient data": shown, never judged.

The audit reads the two columns of :data:`RECORDING_COLUMNS` from the test rows:
the count of hospital-coded long-term conditions (an evaluation column, not a model
feature) and the count of those not on the GP record (a feature).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

from riskstrat.evaluation.groups import INSUFFICIENT, Grouping, group_label, is_sufficient
from riskstrat.evaluation.settings import FairnessSettings

RECORDING_COLUMNS: tuple[str, ...] = ("hospital_ltc_count", "hospital_ltc_not_on_gp_record")
"""Prediction columns the measure needs: hospital-coded long-term conditions, and how many of them
the GP record does not hold (both counts per person at the as-of date; optional in the predictions)."""

RECORDING_TABLE_COLUMNS: tuple[str, ...] = (
    "grouping",
    "group",
    "label",
    "n_hospital_ltc",
    "n_also_gp",
    "share",
    "others_share",
    "ratio",
    "ratio_lower",
    "ratio_upper",
    "p_value",
    "status",
)
"""Columns of :func:`gp_recording`'s table, in order."""

SCORE_METHOD = "score"
"""statsmodels' method for the ratio's interval and test (Miettinen-Nurminen score)."""


def has_recording_columns(frame: pd.DataFrame) -> bool:
    """Whether ``frame`` carries every column of :data:`RECORDING_COLUMNS`."""
    return all(column in frame.columns for column in RECORDING_COLUMNS)


def recorded_at_gp(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Who has a hospital-recorded long-term condition, and who of them has all of them on the GP record.

    Args:
        frame: Rows carrying :data:`RECORDING_COLUMNS` (missing counts read as 0).

    Returns:
        Two boolean arrays, one entry per row: has a hospital-coded condition; and has one
        with every such condition also current on the GP record.
    """
    in_hospital = pd.to_numeric(frame["hospital_ltc_count"], errors="coerce").fillna(0).to_numpy()
    not_at_gp = pd.to_numeric(frame["hospital_ltc_not_on_gp_record"], errors="coerce").fillna(0).to_numpy()
    has = in_hospital > 0
    return has, has & (not_at_gp == 0)


def gp_recording(frame: pd.DataFrame, groupings: list[Grouping], settings: FairnessSettings) -> pd.DataFrame:
    """Each group's share of hospital-recorded long-term conditions also GP-recorded, against everyone else's.

    Args:
        frame: The audited rows after ``assign_groups`` (a column per grouping) carrying
            :data:`RECORDING_COLUMNS`.
        groupings: The groupings to report, in order.
        settings: Fairness settings: ``tolerances.gp_recording_ratio``, ``confidence``,
            ``min_cell_n`` and ``min_cell_events``.

    Returns:
        One row per grouping x group (:data:`RECORDING_TABLE_COLUMNS`); empty when ``frame``
        lacks the recording columns.
    """
    if not has_recording_columns(frame):
        return pd.DataFrame(columns=list(RECORDING_TABLE_COLUMNS))
    has, also = recorded_at_gp(frame)
    rows = []
    for grouping in groupings:
        values = frame[grouping.name].to_numpy()
        for group in grouping.groups:
            in_group = values == group
            rows.append(
                _compare(
                    grouping.name,
                    group,
                    (float((has & in_group).sum()), float((also & in_group).sum())),
                    (float((has & ~in_group).sum()), float((also & ~in_group).sum())),
                    settings,
                )
            )
    return pd.DataFrame(rows, columns=list(RECORDING_TABLE_COLUMNS))


def _compare(
    grouping: str,
    group: str,
    counts: tuple[float, float],
    others: tuple[float, float],
    settings: FairnessSettings,
) -> dict[str, object]:
    """One group's row: its share and everyone else's, their ratio, interval and one-sided p-value."""
    n, recorded = counts
    n_others, recorded_others = others
    share = recorded / n if n else float("nan")
    others_share = recorded_others / n_others if n_others else float("nan")
    row: dict[str, object] = {
        "grouping": grouping,
        "group": group,
        "label": group_label(grouping, group),
        "n_hospital_ltc": n,
        "n_also_gp": recorded,
        "share": share,
        "others_share": others_share,
        "ratio": float("nan"),
        "ratio_lower": float("nan"),
        "ratio_upper": float("nan"),
        "p_value": float("nan"),
        "status": INSUFFICIENT,
    }
    judged = (
        is_sufficient(n, recorded, settings.min_cell_n, settings.min_cell_events)
        and n_others >= settings.min_cell_n
        and recorded_others > 0
    )
    if not judged:
        return row
    lower, upper = confint_proportions_2indep(
        recorded,
        n,
        recorded_others,
        n_others,
        method=SCORE_METHOD,
        compare="ratio",
        alpha=1 - settings.confidence,
    )
    test = test_proportions_2indep(
        recorded,
        n,
        recorded_others,
        n_others,
        value=settings.tolerances.gp_recording_ratio,
        method=SCORE_METHOD,
        compare="ratio",
        alternative="smaller",
    )
    row.update(
        ratio=share / others_share,
        ratio_lower=float(lower),
        ratio_upper=float(upper),
        p_value=float(test.pvalue),
        status="ok",
    )
    return row
