"""Fixtures of the worklist tests (the helpers live in worklist_fixtures.py)."""

from worklist_fixtures import boosters, features, mdt_settings, scored  # noqa: F401
