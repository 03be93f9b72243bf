"""Rollout plans (steps, spans, named plans in miniship.toml) and the health gate's
verdict on two versions' figures: pure functions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.config import parse_config
from handlers.rollouts.engine import exposure
from handlers.rollouts.gate import Healthy, NoData, Regressed, Window, judge
from handlers.rollouts.plan import (
    Plan,
    PlanError,
    Thresholds,
    read_every,
    read_plans,
    read_steps,
)
from platforms.base import ErrorReport, JsError
from platforms.errors import ConfigError
from storage.models import Rollout

DAY = date(2026, 12, 4)
WINDOW = Window(DAY, DAY)


def test_steps_and_spans() -> None:
    assert read_steps("5,20,50,100") == (5, 20, 50, 100)
    assert read_steps("p10,p30,P50,online") == (10, 30, 50, 100)
    assert read_steps("10%,30%") == (10, 30)
    assert read_every("1d") == timedelta(days=1)
    assert read_every("12h") == timedelta(hours=12)
    assert read_every("30m") == read_every("30min") == timedelta(minutes=30)
    for bad in ("0", "101", "x", "p", ",", "5;20"):
        with pytest.raises(PlanError):
            read_steps(bad)
    for bad in ("0m", "1s", "1w", "d", "99999d"):
        with pytest.raises(PlanError):
            read_every(bad)


@given(st.text(max_size=40))
def test_any_steps_text_is_read_or_refused_plainly(text: str) -> None:
    try:
        steps = read_steps(text)
    except PlanError as exc:
        assert str(exc)
    else:
        assert steps and all(1 <= s <= 100 for s in steps)


@given(st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=12))
def test_a_checked_plan_grows_to_the_full_release(steps: list[int]) -> None:
    try:
        plan = Plan(tuple(steps)).checked(None, "WeChat")
    except PlanError as exc:
        assert "grow" in str(exc) or "at most" in str(exc)
    else:
        assert plan.steps[-1] == 100
        assert list(plan.steps) == sorted(set(plan.steps))
        assert plan.steps[: len(steps)] == tuple(steps)[: len(plan.steps)]


def test_fixed_gray_steps() -> None:
    plan = Plan((10, 30, 50)).checked((10, 30, 50), "Alipay")
    assert plan.steps == (10, 30, 50, 100)
    with pytest.raises(PlanError, match="p10, p30, p50"):
        Plan((5, 20)).checked((10, 30, 50), "Alipay")


def test_named_plans_from_the_file() -> None:
    plans = read_plans(
        {"careful": {"steps": [1, 5, 100], "every": "12h", "ratio": 1.5, "on_regression": "pause"}},
        "miniship.toml",
    )
    careful = plans["careful"]
    assert careful.steps == (1, 5, 100) and careful.every == timedelta(hours=12)
    assert careful.thresholds == Thresholds(ratio=1.5) and careful.on_regression == "pause"
    for bad, said in (
        ({"x": {"steps": "5,20"}}, "list of percentages"),
        ({"x": {"every": "1w"}}, "not a span"),
        ({"x": {"ratio": "2"}}, "must be a number"),
        ({"x": {"min_users": 1.5}}, "whole number"),
        ({"x": {"on_regression": "ignore"}}, "revert"),
        ({"x": {"colour": "red"}}, "unknown key"),
        ({"Bad Name": {}}, "lower-case"),
    ):
        with pytest.raises(PlanError, match=said):
            read_plans(bad, "miniship.toml")
    with pytest.raises(ConfigError, match=r"\[rollouts.x\]"):
        parse_config({"rollouts": {"x": {"every": "never"}}})
    assert "careful" in parse_config({"rollouts": {"careful": {}}}).rollouts


def report(version: str, *errors: tuple[str, int]) -> ErrorReport:
    rows = tuple(
        JsError(f"Error {key}", f"Error {key}\n    at pages/{key}.js:1:1", users, users * 2, key)
        for key, users in errors
    )
    return ErrorReport(version, DAY, DAY, sum(u for _, u in errors), 0, rows)


def test_the_gate_weighs_each_version_by_its_share() -> None:
    old = report("1.0.0", ("a", 900), ("b", 90))
    t = Thresholds()
    # at 10%: 110 error users ~ 1100 per full share, as the old 990 / 0.9: healthy
    verdict = judge(report("1.1.0", ("a", 100), ("b", 10)), old, 10, t, "WeChat", WINDOW)
    assert isinstance(verdict, Healthy) and "1.00× the previous version's rate" in verdict.reason
    # three times the errors per share: a regression
    verdict = judge(report("1.1.0", ("a", 330)), old, 10, t, "WeChat", WINDOW)
    assert isinstance(verdict, Regressed) and "3.0×" in verdict.reason
    # too few users on either side to judge a ratio: held, and says why
    verdict = judge(report("1.1.0", ("a", 9)), report("1.0.0", ("a", 10)), 1, t, "W", WINDOW)
    assert isinstance(verdict, NoData) and "too few users yet at 1%" in verdict.reason
    # few error users where many were expected: healthy, and says why
    verdict = judge(report("1.1.0", ("a", 9)), old, 10, t, "W", WINDOW)
    assert isinstance(verdict, Healthy) and "fewer than 10" in verdict.reason


def test_a_new_error_halts_on_its_own() -> None:
    old = report("1.0.0", ("a", 9000))
    new = report("1.1.0", ("a", 50), ("crash", 12))  # 12 users at 5% ≈ 240 a day
    verdict = judge(new, old, 5, Thresholds(), "WeChat", WINDOW)
    assert isinstance(verdict, Regressed) and "a new error hit 12 users" in verdict.reason
    assert [(e.key, fresh) for e, fresh in verdict.evidence] == [("a", False), ("crash", True)]
    quiet = report("1.1.0", ("a", 50), ("crash", 2))  # below 3 users: not judged
    assert isinstance(judge(quiet, old, 5, Thresholds(), "WeChat", WINDOW), Healthy)


def test_no_baseline_is_no_data() -> None:
    verdict = judge(report("1.1.0", ("a", 5)), report("1.0.0"), 5, Thresholds(), "W", WINDOW)
    assert isinstance(verdict, NoData) and "nothing to compare with" in verdict.reason


def test_first_stack_line() -> None:
    assert JsError("m", "TypeError: x\n    at a.js:1:2\n    at b.js", 1, 1).first_stack_line == (
        "at a.js:1:2"
    )
    assert JsError("m", "only a message", 1, 1).first_stack_line == "only a message"
    assert JsError("m", "", 1, 1).first_stack_line == ""


@given(
    steps=st.lists(st.integers(1, 99), min_size=1, max_size=5, unique=True).map(sorted),
    every=st.integers(60, 3 * 86400),
    began=st.integers(0, 3 * 86400),  # seconds before the window's end the gray began
    held=st.integers(0, 86400),  # how much later than planned the latest step went out
    live=st.one_of(st.none(), st.integers(0, 4 * 86400)),  # the old one went live, before
)
def test_the_two_versions_share_the_window_between_them(
    steps: list[int], every: int, began: int, held: int, live: int | None
) -> None:
    end = datetime(2026, 12, 4, 12, tzinfo=UTC)
    start = end - timedelta(days=2)
    since = end - timedelta(seconds=began)
    late = every * (len(steps) - 1) + (held if len(steps) > 1 else 0)  # the first: at once
    at = min(end, since + timedelta(seconds=late))
    rollout = Rollout(
        app_key="demo",
        version="1.1.0",
        platform="wechat",
        release_id=1,
        steps=[*steps, 100],
        every_seconds=every,
        step=len(steps) - 1,
        step_at=at,
        gray_since=since,
        started_by="t",
    )
    previous = None if live is None else min(since, end - timedelta(seconds=live))
    found = exposure(rollout, steps[-1], start, end, previous)
    assert found is not None
    new, old = found
    window = (end - start).total_seconds()
    for served in (new, old):
        assert 0 <= served.user_seconds <= served.seconds <= window + 1e-6
        assert served.seconds == 0 or 0 <= served.low <= served.high <= 100
    assert new.seconds == pytest.approx(min(began, window))  # since the gray began
    if previous is None:  # live all along: between them, everyone all the time
        assert new.user_seconds + old.user_seconds == pytest.approx(window)
    else:
        assert old.seconds == pytest.approx(min(window, (end - previous).total_seconds()))
