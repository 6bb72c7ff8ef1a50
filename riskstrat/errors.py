r"""Errors that riskstrat reports to its users in one clear line plus a hint.

Redaction rule: an error's ``str()``, ``args`` and ``repr()`` are what Prefect
stores (flow and task run states, events, logged tracebacks) and what any log
records, so they never hold a person ID or other patient-level value. The
examples an analyst needs (pseudonymised IDs, codes) go in ``details`` (or, for
:class:`ContractError`, each problem's ``examples``) and reach only the user's
terminal, through :attr:`RiskstratError.message`, and the validation report.

Line rule: only the structure of a message may break a line. Inside the pieces
that come from data (``details``, and a :class:`ContractProblem`'s table, column,
expectation and examples) every line break (line feed, carriage return, U+2028,
U+2029, U+0085 and the other characters :meth:`str.splitlines` splits on) is shown
as an escape (``\n``, ``\u2028``) by :func:`one_line`, so a value such as
``X1\nhint: all fine`` cannot forge a line of its own on the terminal or in a log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_LINE_BREAK = re.compile("[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_LINE_BREAK_ESCAPES = {"\n": "\\n", "\r": "\\r"}


def _escape_break(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _LINE_BREAK_ESCAPES.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def one_line(text: object) -> str:
    r"""``text`` with every line break shown as an escape, so data cannot start a line of its own.

    Line feed and carriage return become ``\n`` and ``\r``; vertical tab, form feed,
    the information separators U+001C-U+001E and NEL become ``\x0b`` ... ``\x85``;
    U+2028 and U+2029 become ``\u2028`` and ``\u2029`` (every character
    :meth:`str.splitlines` splits on). Other characters are left to the terminal's
    own rule (``riskstrat.pipelines.terminal.printable``).
    """
    return _LINE_BREAK.sub(_escape_break, str(text))


class RiskstratError(Exception):
    """An error a user can act on: a message and a hint, never a traceback by default.

    Args:
        message: What went wrong, naming the file, table, column or setting; no
            patient-level values (it is logged and stored by Prefect).
        hint: What to do about it.
        details: Patient-level examples (e.g. "e.g. person_id P001") shown on the
            user's terminal only, never logged. Line breaks in them are shown as
            escapes (:func:`one_line`): they come from data.

    Attributes:
        message: The full text for the terminal: ``message`` plus ``details``.
        log_message: The text safe for logs and Prefect: ``message`` alone
            (also ``str(error)`` and ``error.args[0]``).
    """

    def __init__(self, message: str, hint: str = "", *, details: str = "") -> None:
        super().__init__(message)
        self.log_message = message
        self.details = one_line(details)
        self.message = f"{message}, {self.details}" if details else message
        self.hint = hint

    def __str__(self) -> str:
        return self.log_message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.log_message!r})"

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # Rebuilt from its attributes, so a pickled error (Prefect results) keeps its type and texts.
        return (_rebuild, (type(self), dict(self.__dict__)))


def _rebuild(cls: type[RiskstratError], state: dict) -> RiskstratError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("log_message", ""))
    error.__dict__.update(state)
    return error


class SettingsError(RiskstratError):
    """A configuration file is missing, unreadable or has an invalid setting."""


@dataclass(frozen=True)
class ContractProblem:
    """One way in which an input table breaks the data contract.

    Attributes:
        table: The table name.
        column: The column name, or "" for a whole-table problem.
        expected: What the contract expects, in plain words (no patient-level values).
        n_rows: How many rows break it (0 for a whole-table problem).
        examples: Up to five examples: pseudonymised IDs, codes, or the shape of
            a bad value (digits shown as 9), never a date of birth or NHS number.
            Shown on the terminal and in the validation report only, never logged.
    """

    table: str
    column: str
    expected: str
    n_rows: int = 0
    examples: tuple[str, ...] = field(default_factory=tuple)

    def describe(self, examples: bool = True) -> str:
        """One line naming the table, column, expectation, row count and (unless ``examples=False``) examples.

        Always one line: a line break inside any piece (they come from data) is
        shown as an escape (:func:`one_line`).
        """
        where = one_line(f"{self.table}.{self.column}" if self.column else self.table)
        rows = f"; {self.n_rows:,} row{'s' if self.n_rows != 1 else ''} fail" if self.n_rows else ""
        shown = f"; e.g. {', '.join(map(one_line, self.examples))}" if examples and self.examples else ""
        return f"{where}: expected {one_line(self.expected)}{rows}{shown}"


_EXAMPLE_VALUE = re.compile(r"[\w.]+=([^\s()]+)")


def _example_values(problems: list[ContractProblem]) -> set[str]:
    """The raw values inside examples such as ``person_id=P001 (sex=7)`` (IDs and codes)."""
    values: set[str] = set()
    for problem in problems:
        for example in map(one_line, problem.examples):  # as they would appear in a described line
            found = _EXAMPLE_VALUE.findall(example)
            values.update(found or [example])
    return {v for v in values if len(v) >= 4}


def _join(lines: list[str]) -> str:
    return lines[0] if len(lines) == 1 else f"{len(lines)} problems:\n  " + "\n  ".join(lines)


class ContractError(RiskstratError):
    """An extract breaks the data contract; ``problems`` lists every breach found.

    ``message`` (the terminal) lists each problem with its examples; ``str()``
    (logs, Prefect) lists table, column, expectation and row count only, and says
    where the examples are.

    Args:
        problems: Every breach found.
        hint: What to do (default: see the data contract).
        report: The validation report holding the examples, named in the log text.
    """

    def __init__(
        self, problems: list[ContractProblem], hint: str = "", *, report: Path | None = None
    ) -> None:
        self.problems = list(problems)
        self._report = report
        super().__init__("", hint or "See docs/data-contract.md for each table's columns and codes.")
        self.message = (
            _join([p.describe() for p in self.problems])
            if self.problems
            else "the extract breaks the contract"
        )
        self._refresh()

    @property
    def report(self) -> Path | None:
        """The validation report that holds the examples (named in the log text)."""
        return self._report

    @report.setter
    def report(self, path: Path | None) -> None:
        self._report = path
        self._refresh()

    def _refresh(self) -> None:
        lines = [p.describe(examples=False) for p in self.problems] or ["the extract breaks the contract"]
        text = _join(lines)
        if any(p.examples for p in self.problems):
            where = f" {self._report}" if self._report else ""
            text += f"\n(examples are not logged: see the validation report{where})"
        for value in sorted(_example_values(self.problems), key=len, reverse=True):
            text = text.replace(value, "[example withheld]")
        self.log_message = text
        self.args = (text,)
