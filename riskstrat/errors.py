"""Errors that riskstrat reports to its users in one clear line plus a hint."""

from __future__ import annotations

from dataclasses import dataclass, field


class RiskstratError(Exception):
    """An error a user can act on: a message and a hint, never a traceback by default.

    Args:
        message: What went wrong, naming the file, table, column or setting.
        hint: What to do about it.
    """

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class SettingsError(RiskstratError):
    """A configuration file is missing, unreadable or has an invalid setting."""


@dataclass(frozen=True)
class ContractProblem:
    """One way in which an input table breaks the data contract.

    Attributes:
        table: The table name.
        column: The column name, or "" for a whole-table problem.
        expected: What the contract expects, in plain words.
        n_rows: How many rows break it (0 for a whole-table problem).
        examples: Up to five examples: pseudonymised IDs, codes, or the shape of
            a bad value (digits shown as 9), never a date of birth or NHS number.
    """

    table: str
    column: str
    expected: str
    n_rows: int = 0
    examples: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        """One line naming the table, column, expectation, row count and examples."""
        where = f"{self.table}.{self.column}" if self.column else self.table
        rows = f"; {self.n_rows:,} row{'s' if self.n_rows != 1 else ''} fail" if self.n_rows else ""
        examples = f"; e.g. {', '.join(self.examples)}" if self.examples else ""
        return f"{where}: expected {self.expected}{rows}{examples}"


class ContractError(RiskstratError):
    """An extract breaks the data contract; ``problems`` lists every breach found."""

    def __init__(self, problems: list[ContractProblem], hint: str = "") -> None:
        self.problems = list(problems)
        lines = [p.describe() for p in self.problems]
        message = lines[0] if len(lines) == 1 else f"{len(lines)} problems:\n  " + "\n  ".join(lines)
        super().__init__(message, hint or "See docs/data-contract.md for each table's columns and codes.")
