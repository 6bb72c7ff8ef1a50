"""Characters that show nothing, or reorder what is shown: one set for the terminal and the worklists.

A light module (no pandas, no openpyxl) so the command line can import it at start-up.
"""

from __future__ import annotations

INVISIBLE = (
    # Every format character (Unicode category Cf): soft hyphen, bidirectional marks, embeddings,
    # overrides and isolates, zero-width space, non-joiner and joiner, word joiner, invisible
    # operators, byte-order mark, interlinear annotation marks, tag characters, ...
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
    # and other characters that show nothing: combining grapheme joiner, Hangul fillers,
    # variation selectors.
    "\u034f\u115f\u1160\u3164\uffa0\u180b-\u180d\u180f\ufe00-\ufe0f\U000e0100-\U000e01ef"
)
"""Characters that show nothing or reorder what is shown (a regex character-class body).

``pipelines/terminal.py`` prints them as escapes; ``worklists/cells.py`` replaces
them with U+FFFD in every cell.
"""
