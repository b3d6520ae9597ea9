"""The one severity scale every stage shares: findings, posture risk, incidents, sinks, the dashboard.

`Severity` is ordered (`Severity.HIGH > Severity.MEDIUM`) and is a `str`, so it serialises as its
name ("high") in JSON, DuckDB and the finding contract without conversion."""

from __future__ import annotations

from enum import Enum


class Severity(str, Enum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 (info) to 4 (critical)."""
        return _RANK[self]

    # Ordered by rank, not alphabetically as str would (str defines these, so each is spelled out).
    def __lt__(self, other: object) -> bool:
        return _RANK[self] < _other_rank(other)

    def __le__(self, other: object) -> bool:
        return _RANK[self] <= _other_rank(other)

    def __gt__(self, other: object) -> bool:
        return _RANK[self] > _other_rank(other)

    def __ge__(self, other: object) -> bool:
        return _RANK[self] >= _other_rank(other)

    __hash__ = str.__hash__

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of(cls, value: "str | Severity") -> "Severity":
        """The severity named by `value` ("High", " medium " ...); ValueError for anything else."""
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise ValueError(f"unknown severity {value!r}: use one of {', '.join(SEVERITIES)}") from None

    def raised(self, steps: int = 1) -> "Severity":
        """This severity `steps` levels up (or down when negative), within the scale."""
        return _ORDER[max(0, min(len(_ORDER) - 1, _RANK[self] + steps))]


def _other_rank(other: object) -> int:
    if not isinstance(other, str):
        raise TypeError(f"a severity compares with a severity, not {type(other).__name__}")
    return _RANK[Severity.of(other)]


_ORDER: tuple[Severity, ...] = tuple(Severity)
_RANK: dict[Severity, int] = {s: n for n, s in enumerate(_ORDER)}

SEVERITIES: tuple[str, ...] = tuple(s.value for s in _ORDER)   # "info" ... "critical", lowest first
ALERT = Severity.MEDIUM   # the lowest severity that reaches a person
# The names as written ("high", or a Severity, which hashes and compares as its name) straight to their
# rank: the engine ranks every hit, and Severity.of costs some forty times a dict lookup.
_RANK_OF_NAME: dict[str, int] = {s.value: n for s, n in _RANK.items()}


def severity_rank(severity: "str | Severity") -> int:
    """0 (info) to 4 (critical); ValueError for a name not on the scale."""
    if isinstance(severity, str):
        rank = _RANK_OF_NAME.get(severity)
        if rank is not None:
            return rank
    return _RANK[Severity.of(severity)]


def is_alert(severity: "str | Severity") -> bool:
    """Medium or above: what pages someone."""
    return severity_rank(severity) >= ALERT.rank
