from __future__ import annotations

import pytest

from riskstrat.ingest.synthetic.generate import generate_population
from riskstrat.ingest.synthetic.settings import SyntheticSettings


@pytest.fixture(scope="session")
def small_population():
    return generate_population(SyntheticSettings(), 2000, seed=11)


@pytest.fixture(scope="session")
def calibration_population():
    return generate_population(SyntheticSettings(), 50_000, seed=2024)
