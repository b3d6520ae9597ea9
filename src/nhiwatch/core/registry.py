"""The kinds of watch sources and sinks: each kind is one class that names itself (`kind`), lists the
keys of its table (`keys`), reads and checks that table (`from_config`) and builds what it runs.

    SOURCES = Registry("source", "sources")              # watch/sources.py
    SINKS = Registry("sink", "sinks", {"min_severity"})  # outputs/sinks.py

    @SINKS.register
    class MySink(Sink):
        kind = "mine"
        keys = frozenset({"target"})
        ...

The configuration (watch/config.py) and the watcher look kinds up here; nothing else names them.
A table is read through `Table`, which notes every problem (with where it is) instead of stopping at
the first, so `nhiwatch config check` lists them all; `ConfigError` carries the list.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, Generic, Iterable, Iterator, TypeVar

from nhiwatch.core.times import parse_time


class ConfigError(ValueError):
    """Everything wrong with a configuration, one problem per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def time_value(value: object, where: str, problems: list[str]) -> datetime | None:
    parsed = parse_time(str(value)) if isinstance(value, (str, datetime)) else None
    if parsed is None:
        problems.append(f"{where}: must be an ISO-8601 time such as 2026-03-01T00:00:00Z, not {value!r}")
    return parsed


def env_value(name: object, where: str, problems: list[str]) -> str | None:
    """The value of the environment variable `name` (secrets are never written in the file)."""
    if not isinstance(name, str) or not name:
        problems.append(f"{where}: must name an environment variable")
        return None
    value = os.environ.get(name)
    if not value:
        problems.append(f"{where}: the environment variable {name} is not set")
    return value


class Table:
    """One table of the configuration being read (`where` says which, e.g. sinks[2]): typed reads that
    note a problem and carry on with the default, so every problem is found in one pass."""

    def __init__(self, data: dict, where: str, problems: list[str], index: int = 0) -> None:
        self.data = data
        self.where = where
        self.problems = problems
        self.index = index  # the table's place in its array (default names of some kinds use it)

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def at(self, key: str) -> str:
        return f"{self.where}.{key}"

    def problem(self, key: str | None, message: str) -> None:
        """Note a problem with `key` (or with the whole table when None)."""
        self.problems.append(f"{self.at(key) if key else self.where}: {message}")

    def number(self, key: str, default: float, minimum: float = 0) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            self.problem(key, f"must be a number >= {minimum}, not {value!r}")
            return default
        return value

    def time(self, key: str) -> datetime | None:
        """An ISO-8601 time; None when absent."""
        return time_value(self.data[key], self.at(key), self.problems) if key in self.data else None

    def env(self, name: object, where: str) -> str | None:
        """The environment variable `name` holds the value; `where` is the key (path) that named it."""
        return env_value(name, self.at(where), self.problems)


K = TypeVar("K")


class Registry(Generic[K]):
    """The kinds of one thing (sources, sinks) by name, in the order they were registered."""

    def __init__(self, noun: str, section: str, common_keys: Iterable[str] = ()) -> None:
        self.noun = noun                     # "source": the word in messages
        self.section = section               # "sources": the TOML array ([[sources]])
        self.common_keys = frozenset({"type", "name", *common_keys})  # keys every kind's table may hold
        self.kinds: dict[str, type] = {}

    def register(self, cls: type) -> type:
        """Class decorator: the kind is known by `cls.kind` from now on."""
        kind = getattr(cls, "kind", "")
        if not isinstance(kind, str) or not kind:
            raise TypeError(f"{cls.__name__} has no kind name")
        if kind in self.kinds and self.kinds[kind] is not cls:
            raise ValueError(f"two {self.noun} kinds are named {kind!r}: {self.kinds[kind].__name__}, {cls.__name__}")
        self.kinds[kind] = cls
        return cls

    def __contains__(self, kind: object) -> bool:
        return isinstance(kind, str) and kind in self.kinds

    def __getitem__(self, kind: str) -> type:
        return self.kinds[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self.kinds)

    def keys_of(self, kind: str) -> frozenset[str]:
        """Every key a table of this kind may hold."""
        return self.common_keys | frozenset(getattr(self.kinds[kind], "keys", ()))

    def parse(self, data: dict, index: int, problems: list[str]) -> K | None:
        """One table: its type looked up, its keys checked against that kind's, then read by the kind."""
        table = Table(data, f"{self.section}[{index}]", problems, index)
        kind = data.get("type")
        if not isinstance(kind, str) or kind not in self.kinds:
            table.problem("type", f"must be one of {', '.join(self.kinds)}, not {kind!r}")
            return None
        unknown = set(data) - self.keys_of(kind)
        if unknown:
            table.problem(None, f"unknown keys for a {kind} {self.noun}: {', '.join(sorted(unknown))}")
        cls: Any = self.kinds[kind]  # a registered kind: it has from_config (register checked its name)
        return cls.from_config(table)

    def parse_all(self, tables: object, problems: list[str]) -> list[K]:
        """The array of tables ([[sources]]); the ones that cannot be built are left out (with problems)."""
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            problems.append(f"{self.section}: must be an array of tables ([[{self.section}]])")
            return []
        built = (self.parse(table, index, problems) for index, table in enumerate(tables))
        return [item for item in built if item is not None]

    def check_names(self, items: list, problems: list[str]) -> None:
        """Names identify a source's checkpoints and a sink's outbox: no two alike."""
        names = [item.name for item in items]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"{self.section}: two {self.section} are named {name!r}; give each a distinct name")

    def option_table(self, value: str, index: int) -> dict:
        """A command-line TYPE[:TARGET] as a table of that kind (the kind says which key TARGET fills);
        an unknown TYPE is reported when the table is parsed."""
        kind, _, target = value.partition(":")
        table: dict = {"type": kind, "name": f"{kind}-cli-{index}"}
        key = getattr(self.kinds.get(kind), "option_key", None)
        if key and target:
            table[key] = target
        return table
