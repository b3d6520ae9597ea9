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
environment variables.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

from nhiwatch.core.severity import SEVERITIES
from nhiwatch.outputs.sinks import (FileSink, OcsfSink, SecurityHubSink, Sink, SlackSink, StdoutSink,
                                    WebhookSink)

TOP_KEYS = {"home", "learn_until", "interval", "health_interval", "max_attempts", "backoff_seconds",
            "dead_letter_dir", "correlate_interval", "queue_items", "sources", "sinks"}
SOURCE_KEYS = {
    "s3": {"type", "name", "bucket", "prefix", "region", "late_days", "interval", "since"},
    "sqs": {"type", "name", "queue_url", "region", "wait_seconds"},
    "intake": {"type", "name", "listen", "secret_env", "header", "max_body_bytes"},
    "lookup-events": {"type", "name", "regions", "days", "interval"},
}
SINK_KEYS = {
    "jsonl": {"type", "name", "path", "min_severity"},
    "ocsf": {"type", "name", "path", "min_severity"},
    "stdout": {"type", "name", "min_severity"},
    "webhook": {"type", "name", "url", "url_env", "headers", "timeout", "min_severity"},
    "slack": {"type", "name", "url", "url_env", "timeout", "min_severity"},
    "securityhub": {"type", "name", "region", "account_id", "min_severity"},
}


class ConfigError(ValueError):
    """Everything wrong with a configuration, one problem per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class SourceConfig:
    type: str
    name: str
    options: dict


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
            "sources": [{"type": s.type, "name": s.name, **{k: v for k, v in s.options.items() if k != "secret"}}
                        for s in self.sources],
            "sinks": [{"type": s.kind, "name": s.name, "target": s.describe(), "min_severity": s.min_severity}
                      for s in self.sinks],
        }


def _time(value: object, where: str, problems: list[str]) -> datetime | None:
    from nhiwatch.inventory.model import parse_time

    parsed = parse_time(str(value)) if isinstance(value, (str, datetime)) else None
    if parsed is None:
        problems.append(f"{where}: must be an ISO-8601 time such as 2026-03-01T00:00:00Z, not {value!r}")
    return parsed


def _env(name: object, where: str, problems: list[str]) -> str | None:
    if not isinstance(name, str) or not name:
        problems.append(f"{where}: must name an environment variable")
        return None
    value = os.environ.get(name)
    if not value:
        problems.append(f"{where}: the environment variable {name} is not set")
    return value


def _number(table: dict, key: str, default: float, where: str, problems: list[str], minimum: float = 0) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        problems.append(f"{where}.{key}: must be a number >= {minimum}, not {value!r}")
        return default
    return value


def _kind(table: dict, where: str, keys: dict[str, set[str]], noun: str, problems: list[str]) -> str | None:
    """A source's or sink's type, checked, and its keys checked against that type's."""
    kind = table.get("type")
    if kind not in keys:
        problems.append(f"{where}.type: must be one of {', '.join(keys)}, not {kind!r}")
        return None
    unknown = set(table) - keys[kind]
    if unknown:
        problems.append(f"{where}: unknown keys for a {kind} {noun}: {', '.join(sorted(unknown))}")
    return kind


def _source(table: dict, index: int, problems: list[str]) -> SourceConfig | None:
    where = f"sources[{index}]"
    kind = _kind(table, where, SOURCE_KEYS, "source", problems)
    if kind is None:
        return None
    options: dict = {}
    if kind == "s3":
        bucket = table.get("bucket")
        if not isinstance(bucket, str) or not bucket:
            problems.append(f"{where}.bucket: required (the trail's bucket name)")
        elif bucket.startswith("s3://") or "/" in bucket:
            problems.append(f"{where}.bucket: a bucket name, not a URL or path ({bucket!r}); put the rest in prefix")
        prefix = table.get("prefix", "")
        if not isinstance(prefix, str):
            problems.append(f"{where}.prefix: must be a string")
            prefix = ""
        options = {"bucket": bucket, "prefix": prefix.lstrip("/"), "region": table.get("region"),
                   "since": _time(table["since"], f"{where}.since", problems) if "since" in table else None,
                   "late_days": int(_number(table, "late_days", 1, where, problems)),
                   "interval": _number(table, "interval", 30, where, problems, 0.1)}
        name = table.get("name") or f"s3://{bucket}/{options['prefix']}"
    elif kind == "sqs":
        url = table.get("queue_url")
        if not isinstance(url, str) or not urlparse(url).scheme.startswith("http"):
            problems.append(f"{where}.queue_url: required, the queue's https URL (not its name or ARN), got {url!r}")
        options = {"queue_url": url, "region": table.get("region"),
                   "wait_seconds": int(_number(table, "wait_seconds", 10, where, problems))}
        name = table.get("name") or f"sqs:{url}"
    elif kind == "intake":
        listen = str(table.get("listen", "127.0.0.1:8787"))
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) < 65536:
            problems.append(f"{where}.listen: must be HOST:PORT, not {listen!r}")
        secret = _env(table.get("secret_env"), f"{where}.secret_env", problems)
        if secret is not None and len(secret) < 16:
            problems.append(f"{where}.secret_env: the secret in {table.get('secret_env')} is shorter than 16 characters")
        options = {"listen": listen, "secret_env": table.get("secret_env"), "secret": secret,
                   "header": str(table.get("header", "X-Nhiwatch-Secret")),
                   "max_body_bytes": int(_number(table, "max_body_bytes", 8 << 20, where, problems, 1024))}
        name = table.get("name") or f"intake:{listen}"
    else:
        regions = table.get("regions")
        if not isinstance(regions, list) or not regions or not all(isinstance(r, str) and r for r in regions):
            problems.append(f"{where}.regions: required, a list of region names such as [\"us-east-1\"]")
            regions = []
        days = _number(table, "days", 90, where, problems, 0)
        if days > 90:
            problems.append(f"{where}.days: LookupEvents keeps 90 days of events, not {days}")
        options = {"regions": regions, "days": days, "interval": _number(table, "interval", 60, where, problems, 1)}
        name = table.get("name") or "lookup-events"
    return SourceConfig(kind, str(name), options)


def _sink(table: dict, index: int, problems: list[str]) -> Sink | None:
    where = f"sinks[{index}]"
    kind = _kind(table, where, SINK_KEYS, "sink", problems)
    if kind is None:
        return None
    severity = table.get("min_severity", "info")
    if severity not in SEVERITIES:
        problems.append(f"{where}.min_severity: must be one of {', '.join(SEVERITIES)}, not {severity!r}")
        severity = "info"
    name = str(table.get("name") or (kind if kind in ("stdout", "securityhub") else f"{kind}-{index}"))
    if kind in ("jsonl", "ocsf"):
        path = table.get("path")
        if not isinstance(path, str) or not path:
            problems.append(f"{where}.path: required, the file findings are appended to")
            return None
        cls = FileSink if kind == "jsonl" else OcsfSink
        return cls(name, severity, path=Path(path).expanduser())
    if kind == "stdout":
        return StdoutSink(name, severity)
    if kind in ("webhook", "slack"):
        url = table.get("url") or (_env(table["url_env"], f"{where}.url_env", problems) if "url_env" in table else None)
        if not isinstance(url, str) or urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
            problems.append(f"{where}.url: required, an http(s) URL (or url_env naming a variable that holds one)")
            return None
        headers = {}
        for header, value in (table.get("headers") or {}).items():
            if isinstance(value, str) and value.startswith("env:"):
                value = _env(value[4:], f"{where}.headers.{header}", problems) or ""
            headers[str(header)] = str(value)
        timeout = _number(table, "timeout", 10, where, problems, 0.1)
        cls = WebhookSink if kind == "webhook" else SlackSink
        return cls(name, severity, url=url, headers=headers, timeout=timeout)
    return SecurityHubSink(name, severity, region=table.get("region"), account_id=table.get("account_id"))


def parse_config(data: dict, origin: str) -> WatchConfig:
    """A WatchConfig from a parsed TOML document; ConfigError lists every problem found."""
    problems: list[str] = []
    unknown = set(data) - TOP_KEYS
    if unknown:
        problems.append(f"unknown keys: {', '.join(sorted(unknown))}")
    config = WatchConfig(origin=origin)
    if "home" in data:
        config.home = Path(str(data["home"])).expanduser()
    if "learn_until" in data:
        config.learn_until = _time(data["learn_until"], "learn_until", problems)
    config.interval = _number(data, "interval", 30, "config", problems, 0.1)
    config.health_interval = _number(data, "health_interval", 10, "config", problems, 0.1)
    config.max_attempts = int(_number(data, "max_attempts", 8, "config", problems, 1))
    config.backoff_seconds = _number(data, "backoff_seconds", 1.0, "config", problems, 0)
    config.correlate_interval = _number(data, "correlate_interval", 60, "config", problems, 0)
    config.queue_items = int(_number(data, "queue_items", 128, "config", problems, 1))
    if "dead_letter_dir" in data:
        config.dead_letter_dir = Path(str(data["dead_letter_dir"])).expanduser()
    for key, builder, target in (("sources", _source, config.sources), ("sinks", _sink, config.sinks)):
        tables = data.get(key, [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            problems.append(f"{key}: must be an array of tables ([[{key}]])")
            continue
        for index, table in enumerate(tables):
            built = builder(table, index, problems)
            if built is not None:
                target.append(built)
    names = [s.name for s in config.sinks]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"sinks: two sinks are named {name!r}; give each a distinct name")
    names = [s.name for s in config.sources]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"sources: two sources are named {name!r}; give each a distinct name")
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
    securityhub[:REGION], stdout."""
    kind, _, target = value.partition(":")
    table: dict = {"type": kind, "name": f"{kind}-cli-{index}"}
    if kind in ("jsonl", "ocsf"):
        table["path"] = target
    elif kind in ("webhook", "slack"):
        table["url"] = target
    elif kind == "securityhub" and target:
        table["region"] = target
    return table


def source_from_s3_url(url: str) -> dict:
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        return {"type": "s3", "bucket": url}  # reported by the check: a bucket name, not a URL
    return {"type": "s3", "bucket": parsed.netloc, "prefix": parsed.path.lstrip("/")}
