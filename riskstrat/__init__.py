"""riskstrat: population-health risk stratification for NHS integrated care systems."""

__version__ = "0.1.0"
