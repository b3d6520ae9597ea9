"""`nhiwatch watch` and `nhiwatch config check`: continuous monitoring and its configuration."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Optional

import typer

from nhiwatch.cli.common import (Exit, HomeOpt, JsonOpt, check_time, console, emit_json, fail, open_store, plain, styled,
                                 time_option)

config_app = typer.Typer(help="The watch configuration file.", no_args_is_help=True,
                         context_settings={"help_option_names": ["-h", "--help"]})

ConfigOpt = Annotated[Optional[Path], typer.Option(
    "--config", "-c", envvar="NHIWATCH_CONFIG", help="TOML configuration (sources, sinks, options).",
    show_default=False)]


def build_config(config_file: Optional[Path], s3: list[str], sqs: list[str], intake: Optional[str],
                 intake_secret_env: str, lookup_regions: list[str], lookup_days: int, sinks: list[str],
                 min_severity: Optional[str], learn_until: Optional[str]):
    """The file's configuration with the command line's sources and sinks added."""
    from nhiwatch.watch.config import parse_config, read_toml, sink_from_option, source_from_s3_url

    data: dict = {}
    origin = "command line"
    if config_file is not None:
        data = read_toml(config_file)
        origin = str(config_file)
    sources = list(data.get("sources", []))
    sources += [source_from_s3_url(url) for url in s3]
    sources += [{"type": "sqs", "queue_url": url} for url in sqs]
    if intake:
        sources.append({"type": "intake", "listen": intake, "secret_env": intake_secret_env})
    if lookup_regions:
        sources.append({"type": "lookup-events", "regions": lookup_regions, "days": lookup_days})
    sink_tables = list(data.get("sinks", []))
    sink_tables += [sink_from_option(value, i) for i, value in enumerate(sinks)]
    if min_severity:
        for table in sink_tables:
            table.setdefault("min_severity", min_severity)
    data = {**data, "sources": sources, "sinks": sink_tables}
    if learn_until:
        data["learn_until"] = learn_until
    return parse_config(data, origin)


@config_app.command("check")
def check(
    config_file: Annotated[Path, typer.Argument(help="The TOML file to check.", show_default=False)],
    connect: Annotated[bool, typer.Option(help="Also reach every AWS source and sink (read-only calls).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check a watch configuration: every problem is listed; exit 2 when there is one."""
    from nhiwatch.watch.config import ConfigError
    from nhiwatch.watch.reach import reach

    try:
        config = build_config(config_file, [], [], None, "", [], 90, [], None, None)
    except ConfigError as exc:
        if as_json:
            emit_json({"valid": False, "problems": exc.problems})
        else:
            for problem in exc.problems:  # a problem quotes the file's values
                console.print(styled(("problem:", "red"), " ", plain(problem)))
        raise typer.Exit(int(Exit.USAGE)) from None
    reached = reach(config) if connect else None
    problems = reached.problems if reached else []
    described = config.describe()
    if as_json:
        answer = {"valid": not problems, "problems": problems, "config": described}
        if reached:
            answer.update(accounts=reached.accounts, notes=reached.notes)
        emit_json(answer)
    else:
        console.print(f"{plain(config_file)}: {len(config.sources)} sources, {len(config.sinks)} sinks")
        for source in described["sources"]:
            console.print(f"  source {plain(source['type']):<14} {plain(source['name'])}")
        for sink in described["sinks"]:
            console.print(f"  sink   {plain(sink['type']):<14} {plain(sink['target'])} (>= {plain(sink['min_severity'])})")
            for entry in reached.accounts.get(sink["name"], []) if reached else []:
                verdict = ("reachable", "green") if entry["reachable"] else ("not reachable", "red")
                console.print(styled(f"    account {plain(entry['account'])} via {plain(entry['via'])}: ", verdict,
                                     f": {plain(entry['reason'])}" if entry["reason"] else ""))
        for note in reached.notes if reached else []:
            console.print(f"note: {plain(note)}")
        for problem in problems:
            console.print(styled(("problem:", "red"), " ", plain(problem)))
        if not problems:
            console.print(styled(("ok", "green"), " (every source and sink reached)" if connect else ""))
    if problems:
        raise typer.Exit(int(Exit.USAGE))


def watch(
    config_file: ConfigOpt = None,
    s3: Annotated[list[str], typer.Option("--s3", help="Follow a trail's bucket, or Security Lake's: "
                                          "s3://BUCKET/PREFIX (repeatable).",
                                          show_default=False)] = [],  # noqa: B006 - typer reads the default
    sqs: Annotated[list[str], typer.Option("--sqs", help="Queue URL of the bucket's event notifications "
                                                         "(repeatable).", show_default=False)] = [],  # noqa: B006
    intake: Annotated[Optional[str], typer.Option(help="Listen for EventBridge events on HOST:PORT.",
                                                  show_default=False)] = None,
    intake_secret_env: Annotated[str, typer.Option(help="Environment variable holding the intake's shared secret.")
                                 ] = "NHIWATCH_INTAKE_SECRET",
    lookup_events: Annotated[list[str], typer.Option("--lookup-events", help="Bootstrap from LookupEvents in "
                                                     "this region (repeatable).", show_default=False)] = [],  # noqa: B006
    lookup_days: Annotated[int, typer.Option(min=0, max=90, help="Days of LookupEvents history.")] = 90,
    sink: Annotated[list[str], typer.Option("--sink", help="jsonl:PATH, ocsf:PATH, webhook:URL, slack:URL, "
                                            "securityhub[:REGION], securitylake:LOCATION or stdout (repeatable).",
                                            show_default=False)
                    ] = [],  # noqa: B006
    min_severity: Annotated[Optional[str], typer.Option(help="Lowest severity sent to the command line's sinks "
                                                        "(and to the file's sinks that do not set it).",
                                                        show_default=False)] = None,
    learn_until: Annotated[Optional[str], typer.Option(help="Events before this time only teach (ISO-8601).",
                                                       callback=check_time, show_default=False)] = None,
    once: Annotated[bool, typer.Option(help="Take what the sources have now, deliver it, and exit.")] = False,
    max_seconds: Annotated[Optional[float], typer.Option(min=0, help="Stop after this long.",
                                                         show_default=False)] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Follow CloudTrail as it is delivered: detect as events arrive, send findings to sinks.

    Progress is logged on stderr as JSON lines (events/s, lag behind the newest event, findings, sink
    backlogs). A crash or kill loses nothing and repeats nothing: restart the same command.
    Exit codes: 0 stopped cleanly, 1 fatal error, 2 misconfiguration, 3 --once left findings undelivered,
    4 the store is in use."""
    from nhiwatch.watch.config import ConfigError
    from nhiwatch.watch.sources import SourceFatal
    from nhiwatch.watch.watcher import Watcher, WatchFatal, log_line

    from nhiwatch.core.severity import SEVERITIES

    if min_severity is not None and min_severity not in SEVERITIES:  # also when no sink would check it
        raise fail(f"--min-severity must be one of {', '.join(SEVERITIES)}, not {min_severity!r}", Exit.USAGE, as_json)
    learn_time = time_option(learn_until, "--learn-until", as_json)
    try:
        config = build_config(config_file, s3, sqs, intake, intake_secret_env, lookup_events, lookup_days, sink,
                              min_severity, learn_time.isoformat() if learn_time else None)
    except ConfigError as exc:
        raise fail("the configuration has problems:\n  " + "\n  ".join(exc.problems), Exit.USAGE, as_json) from None
    if not config.sources:
        raise fail("nothing to watch: give --s3, --sqs, --intake or --lookup-events, or sources in --config",
                   Exit.USAGE, as_json)
    if not config.sinks:
        log_line("warning", "no-sinks", message="findings are kept in the store only; add --sink or [[sinks]]")
    store = open_store(home or config.home, as_json)
    watcher = Watcher(store, config, once=once)

    def stop(signum: int, _frame: object) -> None:
        log_line("info", "stopping", signal=signal.Signals(signum).name)
        watcher.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        stats = watcher.run(max_seconds=max_seconds)
        backlog = watcher.outbox.backlog()
    except (WatchFatal, SourceFatal) as exc:
        raise fail(f"watch stopped: {exc}", Exit.USAGE, as_json) from None
    except Exception as exc:
        from nhiwatch.outputs.sinks import SinkError

        if isinstance(exc, SinkError):
            raise fail(f"watch cannot start: {exc}", Exit.USAGE, as_json) from None
        raise
    finally:
        store.close()
    undelivered = sum(c["pending"] + c["inflight"] for c in backlog.values())
    summary = {"events": stats.events, "duplicates": stats.duplicates, "quarantined": stats.quarantined,
               "items": stats.items, "findings": stats.findings, "sinks": backlog}
    if as_json:
        emit_json(summary)
    if once and undelivered:
        raise typer.Exit(int(Exit.PARTIAL))
