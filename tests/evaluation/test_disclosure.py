import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskstrat.errors import RiskstratError
from riskstrat.evaluation import disclosure


@pytest.mark.parametrize(
    ("raw", "shown"),
    [(0, 0), (1, "*"), (7, "*"), (8, 10), (12, 10), (13, 15), (15, 15), (1_002, 1_000), (1_003, 1_005)],
)
def test_counts_are_suppressed_or_rounded_to_five(raw, shown):
    assert disclosure.count(raw) == shown


@given(st.integers(min_value=0, max_value=10_000_000))
def test_every_disclosed_count_passes_the_scan(raw):
    shown = disclosure.count(raw)
    assert disclosure.is_disclosed_count(shown)
    if shown != disclosure.SUPPRESSED:
        assert abs(shown - raw) <= 2


def test_rate_from_a_suppressed_cell_is_suppressed():
    assert disclosure.statistic(0.5, (6, 12)) == "*"
    assert disclosure.proportion(5, 100) == "*"  # numerator 1-7
    assert disclosure.proportion(95, 100) == "*"  # complement 1-7
    assert disclosure.proportion(50, 100) == 0.5
    assert disclosure.proportion(0, 100) == 0.0


def test_scan_finds_unrounded_and_small_counts_under_count_keys():
    payload = {
        "overall": {"n": 1_000, "events": 12, "auroc": 0.71},
        "rows": [{"n_population": 5, "selected_by_risk": "*", "share_of_list": 0.123}],
        "settings": {"need_measures": {"ltc_count": "long-term conditions"}},
    }
    problems = disclosure.undisclosed_counts(payload)
    assert problems == ["$.overall.events=12", "$.rows[0].n_population=5"]
    with pytest.raises(RiskstratError, match="not disclosure-controlled"):
        disclosure.check_disclosed(payload)


def test_proportions_are_computed_from_the_rounded_counts():
    # 104 of a list of 163: exact, 63.80% gives back 104 (and, from the other groups' exact
    # shares and the total, a suppressed group by difference); shown, 105 of 165.
    shown = disclosure.proportion(104, 163)
    assert shown == round(105 / 165, 4)
    assert round(shown * disclosure.count(163)) == disclosure.count(104)
    assert disclosure.rounded(163) == 165.0 and disclosure.rounded(0) == 0.0
    assert disclosure.rounded(6) is None and disclosure.rounded(None) is None


def test_suppressed_group_cannot_be_recovered_by_difference_from_the_shown_shares():
    # A list of 163: four groups shown, one suppressed (5). With exact shares the
    # suppressed one is 163 - (104 + 35 + 11 + 8) = 5; with shares from rounded counts
    # the difference is only known to within the rounding of five counts.
    groups, total = [104, 35, 11, 8], 163
    recovered = disclosure.count(total) - sum(
        round(disclosure.proportion(g, total) * disclosure.count(total)) for g in groups
    )
    assert disclosure.proportion(5, total) == disclosure.SUPPRESSED
    assert recovered == 165 - (105 + 35 + 10 + 10)  # the rounded counts' difference, not 5


def test_means_come_from_the_rounded_total_and_count():
    # 6 admissions among 11 people: an exact mean (0.545) gives back both; here it is suppressed.
    assert disclosure.mean(6, 11) == disclosure.SUPPRESSED
    assert disclosure.mean(10, 5) == disclosure.SUPPRESSED  # 1-7 people
    # 52 bed days among 103 people: shown as 50 over 105, so neither exact figure comes back.
    assert disclosure.mean(52, 103) == round(50 / 105, 3)
    assert disclosure.mean(0, 103) == 0.0
