"""Fixtures for the feature tests; the builders live in feature_fixtures.py."""

from feature_fixtures import feature_settings, hand_worked, outcome_settings  # noqa: F401
