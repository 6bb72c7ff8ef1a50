"""One logger for flow and task code, inside or outside a Prefect run; and the redaction of user errors.

Redaction rule: nothing that leaves for Prefect (its database of logs, states and
events) or for a log may hold a person ID. A :class:`~riskstrat.errors.RiskstratError`
carries its examples outside ``str()`` (see ``riskstrat/errors.py``); the filters
here make sure the traceback Prefect's engine logs for a failed task or flow is
not sent anywhere when the failure is a user error (its chained exceptions may
quote data), and, on the command line, that the console shows the one-line error
and hint only (``--debug`` keeps the full traceback).

Any other exception (a bug, or a library's error such as pandas' ``KeyError``)
may quote a value too. Its logged traceback keeps the frames and the exception
types but withholds every message, and the text Prefect stores as a failed run's
state message (``prefect.states.format_exception``, where Prefect turns an
exception into stored text) names the type only. The command line still
prints the message to the user's terminal, and ``--debug`` the full traceback.
"""

from __future__ import annotations

import logging
import re
import traceback
from types import TracebackType

import prefect._internal.states
import prefect.states
from prefect import get_run_logger
from prefect.exceptions import MissingContextError

from riskstrat.errors import RiskstratError
from riskstrat.pipelines.terminal import printable

USER_ERROR = "riskstrat_user_error"
"""Attribute set on a log record that reports a RiskstratError."""


def run_logger(name: str) -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger inside a flow or task, else the module logger ``name`` (tests call ``.fn``)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(name)


def _error_types(cls: type = RiskstratError) -> set[str]:
    names = {cls.__name__}
    for sub in cls.__subclasses__():
        names |= _error_types(sub)
    return names


_ENGINE_FAILURE_LINES = (
    "Finished in state Failed(",
    "Encountered exception during execution",
    "Task run failed with exception",
)
"""How Prefect's flow and task engines report a failed run in their logs."""


def _is_user_error(record: logging.LogRecord) -> bool:
    """Mark and strip a record about a RiskstratError: no traceback, flagged for the console filter."""
    if getattr(record, USER_ERROR, False):
        return True
    found = False
    if record.exc_info and isinstance(record.exc_info[1], RiskstratError):
        record.exc_info = None
        record.exc_text = None
        found = True
    elif record.levelno >= logging.INFO and record.getMessage().startswith(_ENGINE_FAILURE_LINES):
        # Prefect's "Finished in state Failed('... ContractError: ...')" carries no exception object.
        names = "|".join(sorted(_error_types()))
        found = re.search(rf"\b(?:{names})\b\s*[(:]", record.getMessage()) is not None
    if found:
        setattr(record, USER_ERROR, True)
    return found


WITHHELD = "(message withheld from logs and Prefect: it may quote patient data; run the command with --debug)"
"""What replaces the message of an exception that is not a RiskstratError."""


def withheld_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` and its chained exceptions with every non-riskstrat message withheld.

    Frames (files, lines, code) and exception types are kept for debugging; a
    RiskstratError keeps its ``str()``, which never holds patient data.
    """
    formatted = traceback.TracebackException.from_exception(exc)
    seen: set[int] = set()
    pending = [formatted]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if not (isinstance(current.exc_type, type) and issubclass(current.exc_type, RiskstratError)):
            current._str = WITHHELD  # what format() prints after the type name
        pending += [c for c in (current.__cause__, current.__context__) if c is not None]
    return "".join(formatted.format()).rstrip("\n")


def state_message(exc: BaseException, tb: TracebackType | None = None) -> str:
    """Replaces ``prefect.states.format_exception``: the text stored as a failed run's state message.

    A RiskstratError gives its type and ``str()`` (table, column, row count; never
    examples); any other exception its type only.
    """
    if isinstance(exc, RiskstratError):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__} {WITHHELD}"


def _redact_prefect_states() -> None:
    # Prefect's async engines call prefect.states.format_exception; its sync engines call the
    # copy prefect._internal.states imported by name. Both are replaced (tested end to end).
    for module in (prefect.states, prefect._internal.states):
        if hasattr(module, "format_exception"):
            module.format_exception = state_message


class RedactUserErrors(logging.Filter):
    """Let every record through, but never with the traceback of a user error (RiskstratError).

    Any other exception's traceback keeps its frames and types with every message
    withheld (:func:`withheld_traceback`).

    Control characters in the message (an ANSI escape from a value, say) are
    shown as escapes (such as ESC as backslash-x-1b), the rule for everything printed (see ``terminal.py``).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Strip the traceback of a user error and escape control characters; keep the record."""
        unexpected = None
        if not _is_user_error(record) and record.exc_info and record.exc_info[1] is not None:
            unexpected = record.exc_info[1]
            record.exc_text = withheld_traceback(unexpected)
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's own error handling
            return True
        if unexpected is not None:
            # Prefect's engines also quote the exception in the line itself ("... exception: KeyError('P001')").
            for quoted in sorted({repr(unexpected), str(unexpected)} - {""}, key=len, reverse=True):
                message = message.replace(quoted, f"{type(unexpected).__name__} {WITHHELD}")
        safe = printable(message)
        if safe != record.getMessage():
            record.msg, record.args = safe, None
        return True


class HideUserErrors(logging.Filter):
    """Console only: drop records about a user error; the CLI prints it as one line and a hint."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record unless it reports a user error."""
        return not _is_user_error(record)


_hide_on_console = False
"""Set once the command line asks for it, so later calls (at the start of each flow) keep it."""


def _all_handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    handlers: list[logging.Handler] = []
    for logger in loggers:
        handlers += [h for h in logger.handlers if h not in handlers]
    return handlers


def _is_console(handler: logging.Handler) -> bool:
    """Prefect's console handler, or a plain stream handler (not a file, not a test's log capture)."""
    return type(handler).__name__ == "PrefectConsoleHandler" or type(handler) is logging.StreamHandler


def install_log_redaction(hide_user_errors_on_console: bool = False) -> None:
    """Add the redaction filter to every log handler (Prefect's API handler included); idempotent.

    Called at the start of every flow and by the command line after Prefect has
    set up its logging.

    Args:
        hide_user_errors_on_console: Also drop user-error records from console
            handlers (the command line prints the error itself; not with ``--debug``).
            Once set in a process, later calls keep it.
    """
    global _hide_on_console
    _hide_on_console = _hide_on_console or hide_user_errors_on_console
    _redact_prefect_states()
    for handler in _all_handlers():
        kinds = {type(f) for f in handler.filters}
        if RedactUserErrors not in kinds:
            handler.addFilter(RedactUserErrors())
        if _hide_on_console and _is_console(handler) and HideUserErrors not in kinds:
            handler.addFilter(HideUserErrors())
