"""What every command module shares: exit codes, consoles, common options and error exits."""

from __future__ import annotations

import sys
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer
from rich.markup import escape
from rich.console import Console


class Exit(IntEnum):
    OK = 0
    FATAL = 1
    USAGE = 2
    PARTIAL = 3
    BUSY = 4


# Piped output is read by people too: do not squeeze tables to 80 columns there.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)

HomeOpt = Annotated[Optional[Path], typer.Option(
    "--home", envvar="NHIWATCH_HOME", help="Store folder (default ./.nhiwatch, or $NHIWATCH_HOME).",
    show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress and no summary on the terminal.")]


SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


def time_option(value: Optional[str], option: str, as_json: bool):
    """An ISO-8601 time option, or a usage error naming the option."""
    from nhiwatch.inventory.model import parse_time

    if value is None:
        return None
    parsed = parse_time(value)
    if parsed is None:
        raise fail(f"{option} must be an ISO-8601 time such as 2026-03-08T00:00:00Z, not {value!r}", Exit.USAGE,
                   as_json)
    return parsed


def emit_json(data: object) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")
    sys.stdout.flush()


def fail(message: str, code: Exit, as_json: bool = False) -> typer.Exit:
    if as_json:
        emit_json({"error": message, "exit_code": int(code)})
    # The message is text, not markup: "nhiwatch[spark]" or "local[2]" must print as written.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(int(code))


def open_store(home: Optional[Path], as_json: bool, read_only: bool = False):
    from nhiwatch.store.db import Store, StoreBusy, StoreError

    try:
        return Store(home, read_only=read_only)
    except StoreBusy as exc:
        raise fail(str(exc), Exit.BUSY, as_json) from None
    except StoreError as exc:
        raise fail(str(exc), Exit.FATAL, as_json) from None
