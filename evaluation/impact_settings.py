"""Settings of the impact evaluation (``configs/impact.yaml``): is the programme working?

The evaluation compares people just above and just below each MDT's weekly capacity
cut-off (a regression discontinuity), and, when the lottery at the margin is on
(``configs/mdts.yaml`` ``lottery``), the lottery's winners and losers
(:mod:`riskstrat.evaluation.impact`). These settings say how long to follow people,
which distance to the cut-off to use, when there is enough history to report, and the
error rates the power statement uses.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from riskstrat.settings import Settings


class ImpactSettings(Settings):
    """How the programme's effect on emergency admissions is estimated (``configs/impact.yaml``)."""

    horizon_days: int = Field(
        90,
        ge=7,
        le=730,
        description=(
            "Follow-up in days: the outcome is counted in (data date, data date + horizon_days] after "
            "the list's data date. Only weeks whose follow-up has ended by the extract's data date count."
        ),
    )
    running_variable: Literal["risk", "rank"] = Field(
        "risk",
        description=(
            "Distance to the cut-off: 'risk' (the person's risk minus the risk of the last person the "
            "list had room for) or 'rank' (capacity + 0.5 - the person's rank among the eligible)."
        ),
    )
    min_weeks: int = Field(
        8,
        ge=1,
        description=(
            "Weeks of list history whose follow-up has ended that the monthly audit needs before its "
            "report shows an estimate (before that it says how many weeks exist and how many are needed)."
        ),
    )
    min_people_near_cutoff: int = Field(
        200,
        ge=20,
        description=(
            "Fewest people within the bandwidth (both sides together) for an estimate to be shown; "
            "with fewer the report says the history is too small to estimate anything."
        ),
    )
    alpha: float = Field(
        0.05,
        gt=0,
        lt=0.5,
        description="Two-sided error rate: intervals are (1 - alpha) intervals and the power statement uses it.",
    )
    power: float = Field(
        0.8,
        gt=0.5,
        lt=1,
        description=(
            "Power of the minimum detectable effect: the smallest effect the evaluation would find "
            "with this probability (0.8 gives 2.8 standard errors at alpha 0.05)."
        ),
    )
