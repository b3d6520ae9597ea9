"""Event text made visible: every control, format or separator character an attacker can put in a
user agent, a session name or an error message is shown as an escape (`\\x1b`, `\\u202e`), for the
terminal (cli/safe_text.py), the HTML report and anything else that shows event text."""

from __future__ import annotations

import re
from typing import Optional

# Characters that are not printable text: C0 and C1 controls and DEL (Cc), format characters such
# as bidi overrides and zero-width spaces (Cf, the Unicode 15 list), line and paragraph separators,
# and lone surrogates (which would also make the write fail).
INVISIBLE = (
    "\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
_ALL = re.compile(f"[\x00-\x1f{INVISIBLE}]")
# Our own messages and multi-line table cells keep their line breaks and tabs; nothing else.
CONTROLS_BUT_LINES = re.compile(f"[\x00-\x08\x0b-\x1f{INVISIBLE}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(value: object, *, newlines: bool = False, limit: Optional[int] = None) -> str:
    """`value` as text a terminal (or a page) shows as written: every control, format or separator
    character as a visible escape. Line breaks and tabs stay only with `newlines=True` (our own text);
    `limit` cuts to that many characters with an ellipsis."""
    text = "" if value is None else str(value)
    text = (CONTROLS_BUT_LINES if newlines else _ALL).sub(_escape, text)
    if limit is not None and len(text) > limit:
        text = text[:limit - 1] + "…"
    return text
