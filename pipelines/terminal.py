r"""Printing to the terminal: data is always plain text, and nothing is cut short.

One rule for every text printed that may come from data (IDs, codes, paths,
error messages): it is rendered as plain text, never as rich markup, and
characters that would drive the terminal or change what is shown are shown as
escapes (``\x1b``, ``\u202e``): control characters (except the line feed),
the Unicode line and paragraph separators, bidirectional controls, zero-width and
other invisible formatting characters (every format character, Unicode category
Cf, and the variation selectors and Hangul fillers), and lone surrogates (which
a UTF-8 terminal cannot even encode). So a value can neither drive the terminal,
reorder or hide what is shown, start a line of its own (line breaks inside data
are escaped where errors are composed, ``riskstrat.errors.one_line``), nor make two
different values look the same. Outside a terminal (a pipe, a log file,
CI) lines are not wrapped at 80 columns and table cells are never cut short.
"""

from __future__ import annotations

import re
from typing import TextIO

from rich.console import Console
from rich.text import Text

from riskstrat.text import INVISIBLE

WIDE = 1000
"""Width used when the output is not a terminal: tables take their natural width."""

_CONTROL = re.compile(
    # C0 controls except newline, DEL, C1 controls (NEL included), the line and paragraph
    # separators, lone surrogates, and every invisible or reordering character.
    f"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff{INVISIBLE}]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(value: object) -> str:
    r"""``value`` as text with every control or invisible character shown as an escape; newlines kept.

    ``\x1b``, ``\u2028``, ``\u200b``, ``\U000e0041``: see the module docstring.
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
