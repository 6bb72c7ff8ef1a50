"""The board's view of the MDTs' decisions: discussed, and turned down by group, under disclosure control."""

from __future__ import annotations

import pandas as pd

from riskstrat.evaluation.decisions import decisions_payload
from riskstrat.evaluation.disclosure import check_disclosed

WORDINGS = {
    "added_to_caseload": "Added to caseload / virtual ward",
    "not_appropriate": "Not appropriate now",
    "declined": "Declined",
    "not_discussed": "Not yet discussed",
}


def listed_and_decided() -> tuple[pd.DataFrame, pd.DataFrame]:
    """100 listed people: IMD 1 (40) mostly turned down, IMD 5 (60) mostly added; 10 not discussed, 10 blank."""
    people = [f"P{i:03d}" for i in range(100)]
    listed = pd.DataFrame(
        {
            "week": "2026-01-05",
            "mdt": "Riverside",
            "person_id": people,
            "imd_quintile": [1] * 40 + [5] * 60,
            "ethnic_group": ["Black"] * 3 + ["White"] * 97,
        }
    )
    codes = (
        ["not_appropriate"] * 20 + ["declined"] * 10 + ["added_to_caseload"] * 10  # IMD 1
        + ["added_to_caseload"] * 30 + ["not_appropriate"] * 10 + ["not_discussed"] * 10 + [None] * 10  # IMD 5
    )  # fmt: skip
    decided = pd.DataFrame({"week": "2026-01-05", "mdt": "Riverside", "person_id": people, "decision": codes})
    return decided.dropna(), listed


def payload() -> dict:
    decided, listed = listed_and_decided()
    return decisions_payload(
        decided,
        listed,
        wordings=WORDINGS,
        not_discussed="not_discussed",
        turned_down=("not_appropriate", "declined"),
    )


def test_discussed_and_turned_down_by_group():
    summary = payload()
    assert summary["n_listed"] == 100 and summary["n_discussed"] == 80
    assert summary["share_discussed"] == 0.8
    imd = {g["group"]: g for g in summary["groupings"][0]["groups"]}
    assert imd["1"]["n_discussed"] == 40 and imd["1"]["n_turned_down"] == 30
    assert imd["1"]["share_turned_down"] == 0.75
    assert imd["5"]["share_turned_down"] == 0.25  # 10 of 40 discussed
    assert "Core20" in imd["1"]["label"]


def test_every_count_passes_disclosure_control():
    summary = payload()
    check_disclosed(summary)
    black = next(g for g in summary["groupings"][1]["groups"] if g["group"] == "Black")
    assert black["n_listed"] == "*" and black["share_turned_down"] == "*"


def test_no_decisions_no_section():
    _, listed = listed_and_decided()
    empty = pd.DataFrame(columns=["week", "mdt", "person_id", "decision"])
    assert (
        decisions_payload(
            empty, listed, wordings=WORDINGS, not_discussed="not_discussed", turned_down=("declined",)
        )
        is None
    )
