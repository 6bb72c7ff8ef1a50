r"""Printing to the terminal: data is always plain text, and nothing is cut short.

One rule for every text printed that may come from data (IDs, codes, paths,
error messages): it is rendered as plain text, never as rich markup, and control
characters are shown as escapes (``\x1b``), so a value can neither change
what is shown nor drive the terminal. Outside a terminal (a pipe, a log file,
CI) lines are not wrapped at 80 columns and table cells are never cut short.
"""

from __future__ import annotations

import re
from typing import TextIO

from rich.console import Console
from rich.text import Text

WIDE = 1000
"""Width used when the output is not a terminal: tables take their natural width."""

_CONTROL = re.compile(
    # C0 controls except newline, DEL, C1 controls, and the Unicode bidirectional overrides
    # and isolates (which reorder what is shown).
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(value: object) -> str:
    r"""``value`` as text with every control character shown as an escape (``\x1b``); newlines kept.

    Tabs are shown as ``\x09`` too: they would misalign tables.
    """
    return _CONTROL.sub(_escape, str(value))


def plain(value: object, style: str = "") -> Text:
    """``value`` as a rich Text (never parsed as markup), control characters escaped."""
    return Text(printable(value), style=style)


def make_console(stderr: bool = False, file: TextIO | None = None) -> Console:
    """A console for data: no markup, no highlighting, soft wrap, wide when not a terminal."""
    console = Console(stderr=stderr, file=file, soft_wrap=True, markup=False, highlight=False, emoji=False)
    if not console.is_terminal:
        console = Console(
            stderr=stderr,
            file=file,
            soft_wrap=True,
            markup=False,
            highlight=False,
            emoji=False,
            width=WIDE,
        )
    return console


def say(console: Console, text: object, style: str = "") -> None:
    """Print one data-bearing text as plain text."""
    console.print(plain(text, style))
