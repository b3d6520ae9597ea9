"""The watch configuration: a TOML file and command-line options, checked before anything starts.

    home = ".nhiwatch"                   # the store (else --home / $NHIWATCH_HOME)
    learn_until = "2026-03-01T00:00:00Z" # events before this only teach (a bootstrap)

    [[sources]]
    type = "s3"                          # a trail's bucket, followed in key order
    bucket = "org-trail"
    prefix = "AWSLogs/"
    [[sources]]
    type = "sqs"                         # the bucket's event notifications
    queue_url = "https://sqs.us-east-1.amazonaws.com/111122223333/trail-objects"
    [[sources]]
    type = "intake"                      # EventBridge API destination
    listen = "127.0.0.1:8787"
    secret_env = "NHIWATCH_INTAKE_SECRET"
    [[sources]]
    type = "lookup-events"
    regions = ["us-east-1"]
    days = 90

    [[sinks]]
    type = "jsonl"                       # also: ocsf, stdout, webhook, slack, securityhub
    path = "findings.jsonl"
    min_severity = "medium"

Secrets are never written in the file: `secret_env`, `url_env` and header values `env:NAME` name
environment variables. Each kind of source and sink reads its own table: the kinds, their keys and
their checks are in the registries `SOURCES` (watch/sources.py) and `SINKS` (outputs/sinks.py).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from nhiwatch.outputs.sinks import SINKS, Sink
import nhiwatch.outputs.security_lake  # noqa: F401  (registers the securitylake sink)
from nhiwatch.core.registry import ConfigError, Table, time_value
from nhiwatch.watch.sources import SOURCES, S3Config, SourceConfig

__all__ = ["ConfigError", "WatchConfig", "load_config", "parse_config", "read_toml", "sink_from_option",
           "source_from_s3_url"]

TOP_KEYS = {"home", "learn_until", "interval", "health_interval", "max_attempts", "backoff_seconds",
            "dead_letter_dir", "correlate_interval", "queue_items", "sources", "sinks"}


@dataclass
class WatchConfig:
    home: Path | None = None
    learn_until: datetime | None = None
    interval: float = 30.0
    health_interval: float = 10.0
    max_attempts: int = 8
    backoff_seconds: float = 1.0
    correlate_interval: float = 60.0
    queue_items: int = 128
    dead_letter_dir: Path | None = None
    sources: list[SourceConfig] = field(default_factory=list)
    sinks: list[Sink] = field(default_factory=list)
    origin: str = "command line"

    def describe(self) -> dict:
        return {
            "origin": self.origin, "home": str(self.home) if self.home else None,
            "learn_until": self.learn_until.isoformat() if self.learn_until else None,
            "interval": self.interval, "health_interval": self.health_interval,
            "max_attempts": self.max_attempts, "queue_items": self.queue_items,
            "sources": [s.describe() for s in self.sources],
            "sinks": [{"type": s.kind, "name": s.name, "target": s.describe(), "min_severity": s.min_severity}
                      for s in self.sinks],
        }


def parse_config(data: dict, origin: str) -> WatchConfig:
    """A WatchConfig from a parsed TOML document; ConfigError lists every problem found."""
    problems: list[str] = []
    unknown = set(data) - TOP_KEYS
    if unknown:
        problems.append(f"unknown keys: {', '.join(sorted(unknown))}")
    config = WatchConfig(origin=origin)
    top = Table(data, "config", problems)
    if "home" in data:
        config.home = Path(str(data["home"])).expanduser()
    if "learn_until" in data:
        config.learn_until = time_value(data["learn_until"], "learn_until", problems)
    config.interval = top.number("interval", 30, 0.1)
    config.health_interval = top.number("health_interval", 10, 0.1)
    config.max_attempts = int(top.number("max_attempts", 8, 1))
    config.backoff_seconds = top.number("backoff_seconds", 1.0, 0)
    config.correlate_interval = top.number("correlate_interval", 60, 0)
    config.queue_items = int(top.number("queue_items", 128, 1))
    if "dead_letter_dir" in data:
        config.dead_letter_dir = Path(str(data["dead_letter_dir"])).expanduser()
    config.sources = SOURCES.parse_all(data.get("sources", []), problems)
    config.sinks = SINKS.parse_all(data.get("sinks", []), problems)
    SINKS.check_names(config.sinks, problems)
    SOURCES.check_names(config.sources, problems)
    if problems:
        raise ConfigError(problems)
    return config


def read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None


def load_config(path: Path) -> WatchConfig:
    return parse_config(read_toml(path), str(path))


def sink_from_option(value: str, index: int) -> dict:
    """--sink TYPE[:TARGET] as a [[sinks]] table: jsonl:PATH, ocsf:PATH, webhook:URL, slack:URL,
    securityhub[:REGION], stdout (each kind says what TARGET is)."""
    return SINKS.option_table(value, index)


def source_from_s3_url(url: str) -> dict:
    """--s3 s3://BUCKET/PREFIX as a [[sources]] table."""
    return S3Config.table_from_url(url)
