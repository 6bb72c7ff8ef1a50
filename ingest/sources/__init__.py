"""Source adapters: national datasets as ICB analysts hold them, turned into contract tables.

One module per dataset registers a :class:`~riskstrat.ingest.sources.base.Source`
in :data:`SOURCES`. ``configs/sources.yaml`` says which raw files to read and how
local column names map onto the national ones. :func:`adapt_extract` runs every
enabled adapter and returns the contract tables and the mapping coverage; the
pipeline (``riskstrat.pipelines.sources``) writes them to the extract folder,
where the validation gate checks them like any other extract.
"""

from __future__ import annotations

from riskstrat.ingest.sources.base import Source

SOURCES: dict[str, Source] = {}
"""Every registered source by name, in registration order."""


def register_source(source: Source) -> Source:
    """Add ``source`` to :data:`SOURCES` (a second source of the same name is an error)."""
    if source.name in SOURCES:
        raise ValueError(f"source {source.name!r} is already registered")
    SOURCES[source.name] = source
    return source


# Each dataset's module registers its source when imported (keep this list in the order
# the datasets are documented in docs/data-contract.md).
# isort: off
from riskstrat.ingest.sources import (  # noqa: E402, F401
    registrations,
    gp,
    csds,
    ecds,
    sus_apc,
    cld,
)
# isort: on
