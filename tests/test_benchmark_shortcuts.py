"""The shortcut feature build (benchmarks/feature_shortcuts.py) builds the shipped matrix and leaks nothing.

Its timing bounds how fast the feature build could be, so it must compute the same
features: checked here on a small synthetic extract. Nothing is timed.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.feature_shortcuts import check_same_matrix, packed_windowed_counts, shortcuts
from benchmarks.features import generate
from riskstrat.features import acute, common, community, matrix, primary
from riskstrat.features.settings import FeatureSettings


def test_shortcut_build_equals_the_shipped_matrix_and_undoes_its_patches(tmp_path):
    extract = generate(tmp_path / "extract", n_people=400, seed=3)
    assert check_same_matrix(extract, date(2025, 12, 31), FeatureSettings()) == []
    assert check_same_matrix(extract, date(2024, 6, 30), FeatureSettings(windows=(7, 30, 400))) == []
    sources = matrix.feature_sources
    with pytest.raises(RuntimeError), shortcuts(FeatureSettings()):
        assert primary.windowed_counts is packed_windowed_counts
        raise RuntimeError("a failed build")
    for module in (acute, community, primary):
        assert module.windowed_counts is common.windowed_counts
    assert matrix.feature_sources is sources


def test_packed_counts_refuse_more_windows_than_fit_a_64_bit_sum():
    import ibis

    table = ibis.table({"day": "date"}, name="events")
    with pytest.raises(ValueError, match="5 windows"):
        packed_windowed_counts(table.day, date(2025, 12, 31), (7, 30, 90, 365, 730), "ae_attendances")
