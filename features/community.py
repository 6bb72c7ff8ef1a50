"""Community-care features: CSDS contacts by service over each window."""

from __future__ import annotations

from datetime import date

import ibis.expr.types as ir

from riskstrat.features.common import windowed_counts
from riskstrat.features.point_in_time import Tables, in_window
from riskstrat.features.settings import FeatureSettings

COMMUNITY_FEATURE_SERVICES: tuple[str, ...] = (
    "district_nursing",
    "community_matron",
    "urgent_community_response",
    "falls",
    "intermediate_care",
    "palliative",
)
"""Services with their own ``community_<service>_<w>d`` counts; every service counts in
``community_contacts_<w>d``."""


def community_features(tables: Tables, as_of: date, settings: FeatureSettings) -> list[ir.Table]:
    """Community contacts by service and in total over each window, one row per person with contacts."""
    contacts = tables["community_contacts"]
    recent = contacts.filter(in_window(contacts.contact_date, as_of, max(settings.windows)))
    day = recent.contact_date
    aggregates = {}
    for service in COMMUNITY_FEATURE_SERVICES:
        aggregates.update(
            windowed_counts(day, as_of, settings.windows, f"community_{service}", recent.service == service)
        )
    aggregates.update(windowed_counts(day, as_of, settings.windows, "community_contacts"))
    return [recent.group_by("person_id").agg(**aggregates)]
