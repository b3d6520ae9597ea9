"""`nhiwatch config check --connect`: reach every AWS source and sink with read-only calls."""

from __future__ import annotations

from nhiwatch.watch.config import WatchConfig
from nhiwatch.watch.sources import aws_problem


def reach(config: WatchConfig) -> list[str]:
    from nhiwatch.watch.watcher import aws_client

    problems: list[str] = []
    for source in config.sources:
        try:
            source.reach(aws_client)
        except Exception as exc:
            code, message = aws_problem(exc)
            problems.append(f"source {source.name}: {code}: {message}")
    for sink in config.sinks:
        try:
            sink.reach()
        except Exception as exc:
            problems.append(f"sink {sink.name}: {exc}")
    return problems
