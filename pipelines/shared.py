"""What every flow shares: loading a run's settings, the output-folder lock, retry rules, default dates.

Each flow has its own module (``validate``, ``features``, ``retrain``,
``weekly``, ``audit``, ``demo``); stage logic lives in the stage packages and
every output path comes from :mod:`riskstrat.catalog`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from prefect.cache_policies import NO_CACHE

from riskstrat.errors import RiskstratError
from riskstrat.io import output_lock
from riskstrat.pipelines.config import Config, load_config
from riskstrat.pipelines.environment import configure_environment
from riskstrat.pipelines.logs import install_log_redaction, run_logger


def _is_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only I/O hiccups (a locked or briefly missing file), never bad data or settings."""
    try:
        state.result()
    except RiskstratError:
        return False
    except (OSError, TimeoutError):
        return True
    except Exception:
        return False
    return False


IO_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": 3,
    "retry_condition_fn": _is_transient,
    "cache_policy": NO_CACHE,
}
"""Task options of every task that reads or writes files."""


def load_run_config(config_dir: str | None) -> Config:
    """Load and validate the settings, check the output folder and set the offline environment for the run."""
    config = load_config(Path(config_dir) if config_dir else None)
    configure_environment(config.data.output_dir)
    install_log_redaction()  # no user error's traceback (which may quote data) reaches Prefect
    return config


def holds_output_lock(command: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run the decorated flow or command holding the lock of its ``data.output_dir``.

    Every flow that writes under the outputs folder is decorated, so the CLI,
    the demo (which re-enters the lock for the flows it runs) and the Prefect
    deployments all pass through it. A second run of the same folder waits up
    to ``data.lock_timeout_seconds``, saying who holds the lock, then refuses
    (:func:`riskstrat.io.output_lock`); on taking the lock, a cut-short swap is
    put back and a killed run's temporary files are removed. The settings are
    taken from the ``config`` argument, else loaded from ``config_dir``.
    """

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def locked(*args: Any, **kwargs: Any) -> Any:
            arguments = signature.bind(*args, **kwargs).arguments
            config = arguments.get("config")
            if config is None:
                config = load_run_config(arguments.get("config_dir"))
            with output_lock(
                config.data.output_dir,
                command,
                config.data.lock_timeout_seconds,
                notify=run_logger(__name__).warning,
            ):
                return function(*args, **kwargs)

        locked.output_lock_command = command  # type: ignore[attr-defined]  # tests check every writer has it
        return locked

    return decorate


def this_monday(today: date | None = None) -> date:
    """Monday of the week containing ``today`` (default: today), the week a run's lists are for."""
    today = today or date.today()
    return today - timedelta(days=today.weekday())


def tracking_uri(config: Config) -> str:
    """The MLflow tracking URI of this configuration."""
    return config.model.mlflow.resolved_tracking_uri(config.data.output_dir)
