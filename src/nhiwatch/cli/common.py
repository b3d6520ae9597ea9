"""What every command module shares: exit codes, consoles, common options and error exits."""

from __future__ import annotations

import sys
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer

from nhiwatch.cli.safe_text import SafeConsole, json_visible, plain, styled  # noqa: F401  (plain: for the commands)


class Exit(IntEnum):
    OK = 0
    FATAL = 1
    USAGE = 2
    PARTIAL = 3
    BUSY = 4


# Piped output is read by people too: do not squeeze tables to 80 columns there. Both consoles print
# strings as text (no markup, no emoji, control characters escaped): see safe_text.
console = SafeConsole(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = SafeConsole(stderr=True)

HomeOpt = Annotated[Optional[Path], typer.Option(
    "--home", envvar="NHIWATCH_HOME", help="Store folder (default ./.nhiwatch, or $NHIWATCH_HOME).",
    show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress and no summary on the terminal.")]


SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


TIME_HELP = "an ISO-8601 time such as 2026-03-08T00:00:00Z or a date such as 2026-03-08 (UTC)"


def parse_time_text(value: str):
    """An ISO-8601 time or date (UTC unless it says otherwise), or None when it is not one."""
    from datetime import datetime, timezone

    text = value.strip()
    if not text or not text[:1].isdigit():
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def check_time(value: Optional[str]) -> Optional[str]:
    """Typer callback of every time option: a bad time is a usage error (exit 2) before anything runs."""
    if value is not None and parse_time_text(value) is None:
        raise typer.BadParameter(f"{value!r} is not {TIME_HELP}")
    return value


def time_option(value: Optional[str], option: str, as_json: bool):
    """An ISO-8601 time option as a UTC datetime, or a usage error naming the option."""
    if value is None:
        return None
    parsed = parse_time_text(value)
    if parsed is None:
        raise fail(f"{option} must be {TIME_HELP}, not {value!r}", Exit.USAGE, as_json)
    return parsed


class _Emitted:
    json = False  # whether this process already wrote a JSON document on stdout


def emit_json(data: object) -> None:
    _Emitted.json = True
    try:
        text = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:  # a lone surrogate from an event: the standard library escapes it
        import json

        text = json.dumps(data, indent=2, default=str)
    sys.stdout.write(json_visible(text) + "\n")
    sys.stdout.flush()


def json_emitted() -> bool:
    return _Emitted.json


def fail(message: str, code: Exit, as_json: bool = False) -> typer.Exit:
    if as_json:
        emit_json({"error": message, "exit_code": int(code)})
    # The message may quote a path or an event: it is text ("nhiwatch[spark]", "local[2]" print as written).
    err.print(styled(("error:", "bold red"), " ", message))
    return typer.Exit(int(code))


def open_store(home: Optional[Path], as_json: bool, read_only: bool = False):
    from nhiwatch.store.db import Store, StoreBusy, StoreError

    try:
        return Store(home, read_only=read_only)
    except StoreBusy as exc:
        raise fail(str(exc), Exit.BUSY, as_json) from None
    except StoreError as exc:
        raise fail(str(exc), Exit.FATAL, as_json) from None
