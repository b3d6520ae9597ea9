"""Text from events is data: shown as written, never read as markup, emoji codes or terminal control.

Attackers write user agents, session names, bucket and key names, error messages. Printed raw, an ESC
sequence recolours or clears the screen, retitles the window or plants a hyperlink; a bidi override
reverses what follows; Rich reads `[/]` as markup (and crashes) and `:secret:` as an emoji. So:

- `visible()` shows every invisible or controlling character as an escape (`\\x1b`, `\\u202e`);
- `SafeConsole` is the only console the CLI prints through: markup, emoji and highlighting are off,
  every string it renders passes through `visible()`, and so does every text segment it writes
  (whatever built it), so nothing from an event can reach the terminal as a control sequence;
- our own styling is built as `rich.text.Text` (`styled()`), never as markup in an f-string.
"""

from __future__ import annotations

import re
from typing import Iterable, Optional, Union

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.text import Text

from nhiwatch.core.text import CONTROLS_BUT_LINES, INVISIBLE, visible


def plain(value: object, limit: Optional[int] = None) -> str:
    """A value from the events for a one-line place (a table cell, a list): nothing in it can break the
    line or control the terminal."""
    return visible(value, limit=limit)


Part = Union[str, "tuple[str, str]", Text]


def styled(*parts: Part) -> Text:
    """One line of our own styling: ("label", "bold") pairs are styled, strings are literal text (never
    markup). Data in it should already be `plain()`; control characters are escaped here anyway."""
    out = Text()
    for part in parts:
        if isinstance(part, Text):
            out.append_text(part)
        elif isinstance(part, tuple):
            out.append(visible(part[0], newlines=True), style=part[1])
        else:
            out.append(visible(part, newlines=True))
    return out


_JSON_INVISIBLE = re.compile(f"[{INVISIBLE}]")


def _json_escape(match: re.Match) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON spells a character beyond the BMP as a surrogate pair
    return f"\\u{0xd800 + (code >> 10):04x}\\u{0xdc00 + (code & 0x3ff):04x}"


def json_visible(text: str) -> str:
    """JSON text with the invisible characters JSON may carry raw (DEL, C1 controls, bidi overrides...)
    written as \\u escapes: the same document, and nothing a terminal would act on. They can only be
    inside strings, so the replacement is exact."""
    return _JSON_INVISIBLE.sub(_json_escape, text)


class SafeConsole(Console):
    """A Console on which a string is always text: no markup, no emoji codes, no highlighting, and no
    control character reaches the terminal except line breaks and the console's own styling codes."""

    def __init__(self, **kwargs) -> None:
        kwargs.update(markup=False, emoji=False, highlight=False)
        super().__init__(**kwargs)

    def render_str(self, text: str, **kwargs) -> Text:  # type: ignore[override]
        # A caller's markup=True (or a table cell, a title) does not turn markup back on.
        kwargs.update(markup=False, emoji=False)
        return super().render_str(visible(text, newlines=True), **kwargs)

    def render(self, renderable: RenderableType, options: Optional[ConsoleOptions] = None) -> Iterable[Segment]:
        # The last gate: a Text built elsewhere (e.g. Text(data)) is escaped here too. Control
        # segments (cursor moves of a progress bar) are the console's own and pass.
        for segment in super().render(renderable, options):
            if segment.control is None and CONTROLS_BUT_LINES.search(segment.text):
                segment = Segment(visible(segment.text, newlines=True), segment.style)
            yield segment
