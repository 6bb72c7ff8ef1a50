"""Process-wide defaults set before Prefect, MLflow or Great Expectations are imported.

Everything runs offline: no telemetry, no account, Prefect's local server with
its database under the output folder so the Prefect UI shows the runs.
"""

from __future__ import annotations

import os
from pathlib import Path

from riskstrat.catalog import output_catalog
from riskstrat.pipelines.config import check_output_dir
from riskstrat.pipelines.watchdog import start_watchdog

OFFLINE_DEFAULTS: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_LOGGING_LOG_PRINTS": "true",
    "GX_ANALYTICS_ENABLED": "False",
    "MLFLOW_ENABLE_TELEMETRY": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "GIT_PYTHON_REFRESH": "quiet",
}


def configure_environment(output_dir: Path) -> None:
    """Set offline defaults and put Prefect's home under ``output_dir`` unless already set.

    Args:
        output_dir: The run's output folder (``data.output_dir``).

    Raises:
        SettingsError: If ``data.output_dir`` cannot be created or written to.
    """
    check_output_dir(output_dir)
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_HOME", str(output_catalog(output_dir).prefect_home.resolve()))
    # Prefect only creates the last folder of its home; the outputs folder may not exist yet.
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)


def prefect_home() -> Path:
    """The Prefect home in use (where its database of flow runs lives)."""
    return Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect"))


def start_command_guards(debug: bool = False) -> None:
    """What every command that may run a flow sets up first, in the main thread.

    - the watchdog that stops Prefect's temporary server (and anything else the
      command started) if the command is killed, even with ``kill -9``;
    - the log redaction: no traceback of a user error is logged or sent to
      Prefect, and the console shows such errors as the CLI's one line only
      (with ``debug``, Prefect's console lines stay and the CLI re-raises).

    Args:
        debug: The ``--debug`` flag.
    """
    # Imported here: the log module imports Prefect, which must not load before configure_environment.
    from riskstrat.pipelines.logs import install_log_redaction

    start_watchdog()
    install_log_redaction(hide_user_errors_on_console=not debug)
