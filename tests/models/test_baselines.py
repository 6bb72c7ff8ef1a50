import numpy as np
import pandas as pd
import pytest

from riskstrat.errors import RiskstratError
from riskstrat.models.baselines import oracle_score, prior_utilisation_score


def test_prior_utilisation_ranks_by_admissions_then_age():
    frame = pd.DataFrame({"emergency_admissions_365d": [0, 2, 2, 1], "age": [99, 40, 80, np.nan]})
    order = np.argsort(-prior_utilisation_score(frame), kind="stable")
    assert list(order) == [2, 1, 3, 0]


def test_oracle_reads_the_truth_for_each_row():
    rows = pd.DataFrame({"person_id": ["b", "a"], "as_of": pd.to_datetime(["2024-12-31", "2024-12-31"])})
    truth = pd.DataFrame(
        {"person_id": ["a", "b"], "as_of": ["2024-12-31", "2024-12-31"], "p_emergency_admission": [0.1, 0.7]}
    )
    assert list(oracle_score(rows, truth, "p_emergency_admission")) == [0.7, 0.1]
    with pytest.raises(RiskstratError, match="lacks 1"):
        oracle_score(rows, truth.iloc[:1], "p_emergency_admission")
    with pytest.raises(RiskstratError, match="no column p_frequent_attendance"):
        oracle_score(rows, truth, "p_frequent_attendance")
