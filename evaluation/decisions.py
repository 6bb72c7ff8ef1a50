"""The human step, for the board: how many listed people the MDTs discussed, and what they decided, by group.

An MDT records a coded decision on each listed person it discusses
(:mod:`riskstrat.worklists.decisions` holds the codes and their wording). The
board sees how many listed people were discussed and the decisions by IMD
quintile and ethnic group, so it can see whether people in some groups are more
often judged "not appropriate now" or "declined". Every count passes disclosure
control (:mod:`riskstrat.evaluation.disclosure`: 1-7 shown as ``"*"``, others
rounded to 5) and every share is computed from the rounded counts.

The figures describe what the MDTs recorded, not why: a difference between
groups may reflect need, what is already in place, or how the offer was made,
and a small group's share moves a lot from week to week.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import pandas as pd

from riskstrat.evaluation import disclosure
from riskstrat.evaluation.groups import GROUPINGS, GroupingSpec

DECISION_GROUPINGS: tuple[str, ...] = ("imd_quintile", "ethnic_group")
"""The groupings the decisions are broken down by."""

NOTE = (
    "Counts of listed people over the weeks shown, one per person per list; 'discussed' means the MDT "
    "recorded a decision other than 'not yet discussed'. Shares turned down are of the people discussed, "
    "from counts rounded to 5 (1-7 shown as *). They describe what was recorded, not why: a difference "
    "between groups is a prompt to ask the MDTs, not evidence of unfair treatment on its own."
)


def _group_rows(
    listed: pd.DataFrame,
    spec: GroupingSpec,
    codes: Collection[str],
    not_discussed: str,
    turned_down: Collection[str],
) -> list[dict]:
    values = spec.recode(listed[spec.column])
    rows = []
    for group in spec.report_groups(values):
        members = listed.loc[values == group]
        decided = members["decision"].dropna()
        discussed = decided.loc[decided != not_discussed]
        down = int(discussed.isin(list(turned_down)).sum())
        rows.append(
            {
                "group": group,
                "label": spec.group_label(group),
                "n_listed": disclosure.count(len(members)),
                "n_discussed": disclosure.count(len(discussed)),
                "n_turned_down": disclosure.count(down),
                "share_turned_down": disclosure.proportion(down, len(discussed)),
                "decisions": [
                    {"code": code, "n": disclosure.count(int((decided == code).sum()))} for code in codes
                ],
            }
        )
    return rows


def decisions_payload(
    history: pd.DataFrame,
    listed: pd.DataFrame,
    *,
    wordings: Mapping[str, str],
    not_discussed: str,
    turned_down: Collection[str],
) -> dict | None:
    """The report's summary of the MDTs' decisions on their lists, under disclosure control.

    Args:
        history: The decision history: ``mdt``, ``week`` (ISO text), ``person_id``, ``decision`` (code).
        listed: The published lists covered: ``week`` (ISO text), ``mdt``, ``person_id``,
            ``imd_quintile`` and ``ethnic_group`` (missing values are grouped as not known).
        wordings: Decision code -> its wording, in the order to show them.
        not_discussed: The code meaning the person was not discussed.
        turned_down: The codes counted as turned down ("not appropriate now", "declined").

    Returns:
        None when no listed person has a decision; else ``weeks`` and ``mdts`` covered,
        ``n_listed``, ``n_discussed``, ``share_discussed``, ``decisions`` (code, label, n),
        ``turned_down`` (the wordings counted as turned down), ``groupings`` (name, label and
        ``groups``: group, label, ``n_listed``, ``n_discussed``, ``n_turned_down``,
        ``share_turned_down`` of those discussed, and ``decisions`` as code, n) and ``note``.
        Every count is disclosed (:func:`riskstrat.evaluation.disclosure.check_disclosed` passes).
    """
    key = ["week", "mdt", "person_id"]
    decided = history[[*key, "decision"]].assign(
        week=history["week"].astype(str), person_id=history["person_id"].astype(str)
    )
    rows = listed.assign(week=listed["week"].astype(str), person_id=listed["person_id"].astype(str))
    rows = rows.merge(decided, on=key, how="left")
    if rows["decision"].notna().sum() == 0:
        return None
    codes = list(wordings)
    discussed = rows["decision"].notna() & (rows["decision"] != not_discussed)
    return {
        "weeks": sorted(rows["week"].unique().tolist()),
        "mdts": sorted(rows["mdt"].astype(str).unique().tolist()),
        "n_listed": disclosure.count(len(rows)),
        "n_discussed": disclosure.count(int(discussed.sum())),
        "share_discussed": disclosure.proportion(int(discussed.sum()), len(rows)),
        "decisions": [
            {
                "code": code,
                "label": wordings[code],
                "n": disclosure.count(int((rows["decision"] == code).sum())),
            }
            for code in codes
        ],
        "turned_down": [wordings[code] for code in turned_down],
        "groupings": [
            {
                "name": name,
                "label": GROUPINGS[name].label,
                "groups": _group_rows(rows, GROUPINGS[name], codes, not_discussed, turned_down),  # type: ignore[arg-type]
            }
            for name in DECISION_GROUPINGS
        ],
        "note": NOTE,
    }
