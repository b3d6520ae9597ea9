"""The `nhiwatch` command: a thin layer over the stage packages.

Exit codes (stable, for scripts):
  0  success
  1  fatal error (store unusable, unexpected failure)
  2  usage error (bad option, path that matches nothing, unknown id)
  3  finished, but some input could not be read (or, with --strict, some records were quarantined)
  4  the store is in use by another nhiwatch process
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from nhiwatch import __version__
from nhiwatch.cli.common import (Exit, console, emit_json, err, json_emitted, styled)


app = typer.Typer(
    name="nhiwatch",
    help="Watch AWS non-human identities in CloudTrail: ingest, inventory, baselines, detection, response.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    epilog="Exit codes: 0 ok, 1 fatal error, 2 usage error (also an unknown id), 3 partial (unreadable input), "
           "4 store busy. With --json, an error is also a JSON object on stdout: {\"error\": ..., \"exit_code\": N}.",
)


def _version(value: bool) -> None:
    if value:
        console.print(f"nhiwatch {__version__}")
        raise typer.Exit(0)


from nhiwatch.cli.inventory import inventory_app, posture_app  # noqa: E402  (registered on the app below)

from nhiwatch.cli.detect import analyze, baseline_app, findings_app  # noqa: E402
from nhiwatch.cli.correlate import incidents_app  # noqa: E402
from nhiwatch.cli.respond import respond_app  # noqa: E402
from nhiwatch.cli.watch import config_app, watch  # noqa: E402
from nhiwatch.cli.serve import serve  # noqa: E402
from nhiwatch.cli.spark import spark_app  # noqa: E402
from nhiwatch.cli.ranges import ranges_app  # noqa: E402
from nhiwatch.cli.docs import docs  # noqa: E402
from nhiwatch.cli.ingest import ingest, quarantine, schema, stats  # noqa: E402
from nhiwatch.cli.simulate import scenarios, simulate  # noqa: E402
from nhiwatch.cli.evaluate import evaluate  # noqa: E402
from nhiwatch.cli.demo import demo  # noqa: E402

for command in (ingest, stats, quarantine, schema, simulate, scenarios):
    app.command()(command)
app.command("eval")(evaluate)
app.command()(demo)
app.add_typer(inventory_app, name="inventory")
app.add_typer(posture_app, name="posture")
app.command()(analyze)
app.add_typer(findings_app, name="findings")
app.add_typer(baseline_app, name="baseline")
app.add_typer(incidents_app, name="incidents")
app.add_typer(respond_app, name="respond")
app.command()(watch)
app.add_typer(config_app, name="config")
app.command()(serve)
app.add_typer(spark_app, name="spark")
app.add_typer(ranges_app, name="ranges")
app.command()(docs)


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Watch AWS non-human identities in CloudTrail."""


# Typer's usage errors (it carries its own copy of click): the base class of its BadParameter.
_UsageErrors = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _wants_json(args: list[str]) -> bool:
    """Whether the command line asks for --json (options end at "--")."""
    return "--json" in (args[:args.index("--")] if "--" in args else args)


def _json_error(message: str, code: int) -> None:
    """With --json, a failure is a JSON object on stdout too (unless a document was already written there)."""
    if not json_emitted():
        emit_json({"error": message, "exit_code": int(code)})


def main() -> None:
    as_json = _wants_json(sys.argv[1:])
    try:
        # Not standalone: click's usage errors come back here, so --json can carry them as well.
        code = app(prog_name="nhiwatch", standalone_mode=False)
    except _UsageErrors as exc:  # a usage error (bad option value, missing argument): exit 2
        if as_json and type(exc).__name__ != "NoArgsIsHelpError":
            _json_error(exc.format_message(), exc.exit_code)
        try:
            from typer import rich_utils

            rich_utils.rich_format_error(exc)  # as typer prints it when standalone
        except ImportError:
            exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("Aborted!")
        sys.exit(int(Exit.FATAL))
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug or an environment problem: one clear line, not a stack trace
        message = f"{type(exc).__name__}: {exc}"
        if as_json:
            _json_error(message, Exit.FATAL)
        err.print(styled(("fatal:", "bold red"), " ", message))  # the message may quote an event or a path
        if os.environ.get("NHIWATCH_DEBUG"):
            raise
        sys.exit(int(Exit.FATAL))
    sys.exit(code if isinstance(code, int) and not isinstance(code, bool) else 0)
