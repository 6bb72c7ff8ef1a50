"""One logger for flow and task code, inside or outside a Prefect run."""

from __future__ import annotations

import logging

from prefect import get_run_logger
from prefect.exceptions import MissingContextError


def run_logger(name: str) -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger inside a flow or task, else the module logger ``name`` (tests call ``.fn``)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(name)
