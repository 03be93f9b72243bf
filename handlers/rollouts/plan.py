"""What a staged rollout follows: its steps (the shares of users, the last one 100 = the
full release), how long each step lasts before the next gate, the thresholds the gate
holds the new version to, and what a regression does (take the staged release back, or
only pause).

Plans are typed (``plan 5,20,50,100 every 1d``) or named in miniship.toml::

    [rollouts.careful]
    steps = [1, 5, 20, 50, 100]
    every = "1d"
    on_regression = "revert"       # or "pause": leave the share as it is, wait for a person
    ratio = 2.0                    # thresholds (see Thresholds)
    min_users = 10
    new_error_users = 200

Standard library only, like the command words: a bad plan is a :class:`PlanError` whose
message says what to write instead.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from typing import Any

__all__ = [
    "DEFAULT_EVERY",
    "DEFAULT_STEPS",
    "MIN_EVERY",
    "Plan",
    "PlanError",
    "Thresholds",
    "read_every",
    "read_plans",
    "read_steps",
]

DEFAULT_STEPS = (5, 20, 50, 100)
DEFAULT_EVERY = timedelta(days=1)
MIN_EVERY = timedelta(minutes=1)
MAX_STEPS = 10
_SPAN = re.compile(r"^(\d{1,4})(d|h|m|min)$")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "min": 60}
_ON_REGRESSION = ("revert", "pause")


class PlanError(ValueError):
    """A plan that cannot be followed; the message says what to write instead."""


@dataclass(frozen=True)
class Thresholds:
    """What the health gate holds a new version to (see README, "Guarded rollouts").

    ``ratio``: the new version's error rate (its error users for the time it served and
    its share of users meanwhile) may be at most this many times the previous version's
    (both over the same days). ``min_users``: below this many error users on the new
    version the ratio of such small counts is chance, so it alone halts nothing.
    ``new_error_users``: an error the previous version never had halts when, had every
    user had the new version for a day, it would hit this many users.
    """

    ratio: float = 2.0
    min_users: int = 10
    new_error_users: int = 200

    @classmethod
    def read(cls, raw: Mapping[str, Any], where: str) -> Thresholds:
        given = {f.name: raw[f.name] for f in fields(cls) if f.name in raw}
        out = cls()
        for name, value in given.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise PlanError(f"{where}: {name} must be a number, not {value!r}")
            if value <= 0:
                raise PlanError(f"{where}: {name} must be above 0")
            if name != "ratio" and int(value) != value:
                raise PlanError(f"{where}: {name} must be a whole number")
            out = replace(out, **{name: type(getattr(out, name))(value)})
        return out

    def as_dict(self) -> dict[str, float | int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def words(self) -> str:
        return (
            f"halt when the new version's error rate (error users for the time and share it "
            f"served) exceeds {self.ratio:g}× the previous version's (from {self.min_users} "
            f"error users on), or a new error would hit {self.new_error_users} users a day "
            "if everyone had the version"
        )


@dataclass(frozen=True)
class Plan:
    steps: tuple[int, ...] = DEFAULT_STEPS
    every: timedelta = DEFAULT_EVERY
    thresholds: Thresholds = field(default_factory=Thresholds)
    on_regression: str = "revert"
    name: str = ""  # a named plan of miniship.toml

    def checked(self, allowed: Sequence[int] | None, platform: str) -> Plan:
        """The plan for a platform whose gray shares are ``allowed`` (None: any whole
        1–100), the full release (100) added at the end when missing."""
        steps = list(self.steps)
        if not steps:
            raise PlanError("a plan needs at least one step")
        if steps[-1] != 100:
            steps.append(100)
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise PlanError(f"steps must grow ({platform} shares only go up): {_steps(steps)}")
        if not 1 <= steps[0] <= 100:
            raise PlanError("a step is a share of users from 1 to 100")
        if allowed is not None:
            wrong = [s for s in steps[:-1] if s not in allowed]
            if wrong:
                offered = ", ".join(f"p{s}" for s in allowed)
                raise PlanError(
                    f"{platform} stages releases at {offered} only (then online, 100): "
                    f"{_steps(wrong)} cannot be a step"
                )
        if len(steps) > MAX_STEPS:
            raise PlanError(f"at most {MAX_STEPS} steps")
        return replace(self, steps=tuple(steps))

    def words(self) -> str:
        return f"{_steps(self.steps)} every {span_words(self.every)}"


def _steps(steps: Sequence[int]) -> str:
    return " → ".join(f"{s}%" for s in steps)


def span_words(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds // 60}m"


def read_steps(text: str) -> tuple[int, ...]:
    """``5,20,50,100`` · ``p10,p30,p50,online`` · ``10%,30%`` → the shares."""
    out: list[int] = []
    for word in filter(None, (w.strip() for w in text.lower().split(","))):
        if word in ("online", "full", "all"):
            out.append(100)
            continue
        number = word.removeprefix("p").removesuffix("%")
        if not re.fullmatch(r"\d{1,3}", number) or not 1 <= int(number) <= 100:
            raise PlanError(f"`{word[:20]}` is not a share of users from 1 to 100")
        out.append(int(number))
    if not out:
        raise PlanError("give the steps, e.g. `plan 5,20,50,100`")
    return tuple(out)


def read_every(text: str) -> timedelta:
    """``1d`` · ``12h`` · ``30m`` → the span between steps (at least a minute)."""
    match = _SPAN.fullmatch(text.strip().lower())
    if match is None:
        raise PlanError(f"`{text[:20]}` is not a span like 1d, 12h or 30m")
    span = timedelta(seconds=int(match[1]) * _UNITS[match[2]])
    if span < MIN_EVERY:
        raise PlanError("steps are at least a minute apart")
    return span


def read_plans(raw: object, source: str) -> dict[str, Plan]:
    """miniship.toml's ``[rollouts.<name>]`` tables."""
    if not isinstance(raw, Mapping):
        raise PlanError(f"{source}: [rollouts] must be a table of named plans")
    plans: dict[str, Plan] = {}
    known = {"steps", "every", "on_regression", *(f.name for f in fields(Thresholds))}
    for name, table in raw.items():
        where = f"{source} [rollouts.{name}]"
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", str(name)):
            raise PlanError(f"{where}: a plan's name is lower-case letters, digits, - and _")
        if not isinstance(table, Mapping):
            raise PlanError(f"{where} must be a table")
        unknown = set(table) - known
        if unknown:
            raise PlanError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        steps = table.get("steps", list(DEFAULT_STEPS))
        if not isinstance(steps, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in steps
        ):
            raise PlanError(f"{where}: steps must be a list of percentages, e.g. [5, 20, 100]")
        try:
            every = read_every(str(table.get("every", "1d")))
            shares = read_steps(",".join(str(s) for s in steps))
        except PlanError as exc:
            raise PlanError(f"{where}: {exc}") from None
        on_regression = table.get("on_regression", "revert")
        if on_regression not in _ON_REGRESSION:
            raise PlanError(f'{where}: on_regression is "revert" or "pause"')
        plans[str(name)] = Plan(
            shares, every, Thresholds.read(table, where), str(on_regression), str(name)
        )
    return plans
