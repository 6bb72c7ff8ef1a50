"""Settings of the fairness audit and governance report (``configs/fairness.yaml``).

Decisions recorded here (each is a setting, so a board can change it):

* Reference groups: deprivation is compared with IMD quintile 5 (least deprived),
  the comparison NHS England's Core20PLUS5 uses; every other grouping is compared
  with its largest group (``"largest"``), which has the narrowest interval and,
  unlike a fixed name, exists in every population.
* Every judged check has a one-sided p-value against its tolerance (the hypothesis
  that the true gap is within it). A flag is *raised* only when its p-value, adjusted
  by the Benjamini-Hochberg procedure across the checks of its kind in one audit, is
  below ``false_discovery_rate`` and its whole interval lies beyond the tolerance (so
  the figures shown never contradict it). There is no "possible, uncertain" flag: the audit
  counts instead how many estimates lay beyond a tolerance without evidence.
* An intersection cell (IMD 1 x Mixed) whose margin (IMD 1, or Mixed) is raised for the
  same kind is folded into the margin's finding, not counted twice.
* Measures from independent sources that point the same disadvantaging way for one
  group make one combined finding when at least two of them show a gap of
  ``combined_tolerance_share`` of their tolerance.
* A cell is "insufficient data" when it has fewer than ``min_cell_n`` people or
  fewer than ``min_cell_events`` events (or non-events); it is still reported,
  never dropped, and no flag is raised on it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Literal

from pydantic import Field, field_validator, model_validator

from riskstrat.evaluation.groups import default_gating, default_references, grouping_names
from riskstrat.settings import Settings

FLAG_KINDS = ("calibration_oe", "sensitivity_ratio", "auroc_gap", "need_at_equal_risk", "gp_recording")
"""The kinds of fairness flag the audit can raise."""

COMBINED = "combined"
"""Kind of a finding that combines several measures for one group."""

FLAG_ID_PATTERN = re.compile(
    r"^(?:(?:" + "|".join(FLAG_KINDS) + r"):[a-z_]+:[^:]+(:[a-z_]+)?|" + COMBINED + r":[a-z_]+:[^:]+)$"
)
"""Ids the board accepts: ``<kind>:<grouping>:<group>`` plus ``:<need measure>`` for need
flags, or ``combined:<grouping>:<group>`` for a combined finding."""


def _check_registered(groupings: Iterable[str]) -> None:
    """Refuse a grouping that is not registered in ``riskstrat.evaluation.groups``."""
    unknown = sorted(set(groupings) - set(grouping_names()))
    if unknown:
        raise ValueError(f"unknown grouping {unknown}; expected some of {list(grouping_names())}")


class ToleranceSettings(Settings):
    """How large a gap must be before the audit flags it."""

    # O/E = observed / expected events: below 1 the model predicted more events than happened.
    oe_low: float = Field(
        0.8,
        gt=0,
        lt=1,
        description=(
            "Observed/expected events below this flags over-prediction (the model over-estimates "
            "the group's risk)."
        ),
    )
    oe_high: float = Field(
        1.25,
        gt=1,
        description=(
            "Observed/expected events above this flags under-prediction (the model under-estimates "
            "the group's risk)."
        ),
    )
    sensitivity_ratio_low: float = Field(
        0.8,
        gt=0,
        lt=1,
        description="A group's list sensitivity / the reference group's below this is flagged.",
    )
    sensitivity_ratio_high: float = Field(
        1.25, gt=1, description="A group's list sensitivity / the reference group's above this is flagged."
    )
    auroc_gap: float = Field(
        0.05,
        gt=0,
        lt=0.5,
        description="A group whose AUROC is this much below the reference group's is flagged.",
    )
    need_ratio: float = Field(
        1.2,
        gt=1,
        description=(
            "A group whose realised need is this many times that of everyone else at the same "
            "predicted risk (standardised need ratio) is flagged as sicker at equal risk."
        ),
    )
    gp_recording_ratio: float = Field(
        0.8,
        gt=0,
        lt=1,
        description=(
            "A group whose share of hospital-recorded long-term conditions also on the GP record is "
            "below this times everyone else's is flagged as under-recorded by its GP practices."
        ),
    )


class AcceptedFlag(Settings):
    """A fairness flag the board has accepted, with its reason; the report records it."""

    flag_id: str = Field(
        description="The flag's id as the report prints it, e.g. 'calibration_oe:ethnic_group:Black'."
    )
    reason: str = Field(min_length=10, description="Why the board accepts it (at least a sentence).")
    accepted_by: str = Field(
        min_length=2, description="Who accepted it (name and role, or the board's name)."
    )
    date: dt.date = Field(description="Date it was accepted (YYYY-MM-DD).")

    @field_validator("flag_id")
    @classmethod
    def _known_flag(cls, value: str) -> str:
        if not FLAG_ID_PATTERN.match(value):
            raise ValueError(
                "expected '<kind>:<grouping>:<group>' (need flags add ':<measure>'), kind one of "
                + ", ".join((*FLAG_KINDS, COMBINED))
            )
        return value


class FairnessSettings(Settings):
    """The fairness audit: reference groups, tolerances, cell sizes, intervals and accepted flags."""

    reference_groups: dict[str, str] = Field(
        default_factory=default_references,
        description=(
            "Reference group of each grouping: a group value, or 'largest' for its largest group. "
            "A grouping not listed takes its default (IMD quintile 5, every other grouping its largest group)."
        ),
    )
    tolerances: ToleranceSettings = Field(
        default_factory=ToleranceSettings, description="How large a gap must be before it is flagged."
    )
    min_cell_n: int = Field(100, ge=1, description="Fewer people than this in a cell: 'insufficient data'.")
    min_cell_events: int = Field(
        10, ge=1, description="Fewer events (or non-events) than this in a cell: 'insufficient data'."
    )
    bootstrap_n: int = Field(200, ge=20, le=10_000, description="Bootstrap resamples for each interval.")
    bootstrap_seed: int = Field(
        20240101, ge=0, description="Seed of the bootstrap, so a rerun gives the same report."
    )
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Coverage of every interval.")
    risk_bands: tuple[float, ...] = Field(
        (0, 50, 75, 90, 95, 98, 100),
        description="Edges of the predicted-risk percentile bands for need at equal risk, from 0 to 100.",
    )
    calibration_bins: int = Field(
        10, ge=3, le=50, description="Equal-size bins of predicted risk per calibration curve."
    )
    need_measures: dict[str, str] = Field(
        default_factory=lambda: {
            "ltc_count": "long-term conditions",
            "efi_score": "electronic frailty index",
            "emergency_admissions_next_year": "emergency admissions next year",
            "bed_days_next_year": "hospital bed days next year",
        },
        description="Realised-need columns of the predictions (column: plain name) compared at equal risk.",
    )
    need_flag_measures: tuple[str, ...] = Field(
        ("emergency_admissions_next_year", "bed_days_next_year", "ltc_count"),
        description="Need measures that can raise a need-at-equal-risk flag (a subset of need_measures).",
    )
    gating_groupings: tuple[str, ...] = Field(
        default_factory=default_gating,
        description=(
            "Groupings whose flags can block promotion. Age band is audited and reported but does not "
            "gate by default: age is a model input and need differs by age by design, so age-band flags "
            "are for the board to read, not an automatic stop."
        ),
    )
    false_discovery_rate: float = Field(
        0.05,
        gt=0,
        lt=0.5,
        description=(
            "Expected share of false flags among the raised flags of one family in one audit: one kind "
            "of check in the gating groupings, or in the others (Benjamini-Hochberg level); a flag is "
            "raised when its adjusted p-value is below it and its 95% interval lies beyond the tolerance."
        ),
    )
    min_power: float = Field(
        0.8,
        gt=0,
        lt=1,
        description=(
            "A list-sensitivity check runs only when it has at least this chance of telling a gap as large "
            "as the tolerance from none; below it the check is withheld, with the reason."
        ),
    )
    combined_tolerance_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description=(
            "A combined finding tests each measure against this share of its own tolerance (0 = against "
            "no gap at all, 1 = against the full tolerance)."
        ),
    )
    gp_recorded_need_measures: tuple[str, ...] = Field(
        ("ltc_count", "efi_score"),
        description=(
            "Need measures read from the GP record, not from the outcome's hospital table: an independent "
            "source of evidence when measures are combined into one finding."
        ),
    )
    accepted_flags: tuple[AcceptedFlag, ...] = Field(
        (), description="Flags the board accepted, each with a reason, who accepted it and when."
    )

    @model_validator(mode="before")
    @classmethod
    def _removed_keys(cls, data: object) -> object:
        if isinstance(data, dict) and "gate_on_uncertain" in data:
            raise ValueError(
                "gate_on_uncertain was removed: there are no 'possible, uncertain' flags any more. A flag "
                "is raised on evidence, with the false discovery rate set by false_discovery_rate; delete "
                "the line (or lower false_discovery_rate to demand stronger evidence)."
            )
        return data

    @field_validator("reference_groups")
    @classmethod
    def _known_groupings(cls, value: dict[str, str]) -> dict[str, str]:
        _check_registered(value)
        return value

    @field_validator("gating_groupings")
    @classmethod
    def _known_gating_groupings(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        _check_registered(value)
        return value

    @field_validator("risk_bands")
    @classmethod
    def _bands(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if len(value) < 2 or value[0] != 0 or value[-1] != 100 or list(value) != sorted(set(value)):
            raise ValueError("expected increasing percentiles starting at 0 and ending at 100")
        return value

    @model_validator(mode="after")
    def _flag_measures_known(self) -> FairnessSettings:
        unknown = [m for m in self.need_flag_measures if m not in self.need_measures]
        if unknown:
            raise ValueError(f"need_flag_measures {unknown} are not in need_measures")
        unknown = [m for m in self.gp_recorded_need_measures if m not in self.need_measures]
        if unknown:
            raise ValueError(f"gp_recorded_need_measures {unknown} are not in need_measures")
        return self

    def reference_for(self, grouping: str) -> str:
        """The configured reference of ``grouping`` (its registered default when not set)."""
        return self.reference_groups.get(grouping) or default_references().get(grouping, "largest")

    def accepted(self, flag_id: str) -> AcceptedFlag | None:
        """The acceptance recorded for ``flag_id``, if any."""
        return next((a for a in self.accepted_flags if a.flag_id == flag_id), None)


FlagStatus = Literal["raised", "explained"]
