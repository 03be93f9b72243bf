"""A rollout and a health report in words: the lines the console prints, the release
card shows and the thread hears. Pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from handlers import policy
from handlers.render import local_time
from handlers.rollouts.gate import Regressed, Window
from handlers.rollouts.plan import span_words
from platforms import platform_class
from platforms.base import ErrorReport, JsError
from storage import RolloutState
from storage.models import Rollout

__all__ = [
    "controls_hint",
    "evidence",
    "health",
    "home_line",
    "plan_line",
    "rollout_lines",
    "top_errors",
]

MAX_MESSAGE = 120


def _display(platform: str) -> str:
    try:
        return platform_class(platform).display_name
    except KeyError:
        return platform


def plan_line(r: Rollout) -> str:
    """``5% → 20% → [50%] → 100% every 1d``: the step live now in brackets."""
    shown = [f"[{s}%]" if n == r.step else f"{s}%" for n, s in enumerate(r.steps)]
    return f"{' → '.join(shown)} every {span_words(timedelta(seconds=r.every_seconds))}"


def share(r: Rollout) -> int:
    """The share of users the rollout's step is at (what resuming sends again)."""
    return r.steps[r.step] if 0 <= r.step < len(r.steps) else 0


def live_words(r: Rollout) -> str:
    """What users have now: ``5% of users``; ``taken back: 0% of users (was at 20%)`` once
    a regression or an abort took the staged release back (``gray_since`` None)."""
    if r.state == RolloutState.COMPLETED:
        return "100% of users"
    if r.state == RolloutState.ABORTED or (r.state == RolloutState.HALTED and r.gray_since is None):
        return f"taken back: 0% of users (was at {share(r)}%)"
    return f"{share(r)}% of users"


def rollout_lines(r: Rollout, zone: ZoneInfo, *, has_data: bool = True) -> list[str]:
    """The rollout on a card or in ``rollout <app> status``."""
    where = _display(r.platform)
    head = (
        f"🚦 Rollout #{r.id} of {r.version} on {where}: {state_words(r)} · "
        f"{live_words(r)} · plan {plan_line(r)}"
    )
    if r.plan:
        head += f" ({r.plan})"
    lines = [head]
    if r.next_at is not None and policy.rollout_allows("step", r.state):
        nxt = r.steps[r.step + 1] if r.step + 1 < len(r.steps) else 100
        gate = "after the health gate" if has_data else "on time (no health data)"
        lines.append(f"   next: {nxt}% at {local_time(r.next_at, zone)}, {gate}")
    if not has_data:
        lines.append(
            f"   {where} reports no per-version error figures: steps advance on time only, "
            "nothing is checked"
        )
    if r.previous:
        lines.append(f"   replaces {r.previous}; started by {r.started_by}")
    if r.note:
        lines.append(f"   last: {r.note.splitlines()[0]}")
    return lines


def home_line(r: Rollout, zone: ZoneInfo) -> str:
    """One rollout under way on the App Home: ``demo 1.4.0 on WeChat: running · 5% of
    users · next 20% at 2026-12-05 10:00 CST``."""
    line = f"{r.app_key} {r.version} on {_display(r.platform)}: {state_words(r)} · {live_words(r)}"
    if r.next_at is not None and policy.rollout_allows("step", r.state):
        nxt = r.steps[r.step + 1] if r.step + 1 < len(r.steps) else 100
        line += f" · next {nxt}% at {local_time(r.next_at, zone)}"
    return line


def state_words(r: Rollout) -> str:
    """``running``, or ``held …`` while its step is being held (no figures yet, a freeze),
    else the policy's words for the state."""
    if r.state == RolloutState.RUNNING and r.held_by:
        return "held by a freeze (its step is tried again)"
    if r.state == RolloutState.RUNNING and r.holding_since is not None:
        return "held: the health gate could not judge yet (its step is tried again)"
    return policy.rollout_words(r.state)


def controls_hint(app: str, controls: Sequence[str], *, halted: bool = False) -> str:
    """``Next: `rollout demo pause`, …``; ``halted``: on a regression, where going on
    needs the override role (said so)."""
    override = " (the override role)" if halted else ""
    words = {
        "pause": f"`rollout {app} pause`",
        "resume": f"`rollout {app} resume`{override}",
        "advance": f"`rollout {app} advance`{override}",
        "abort": f"`rollout {app} abort`",
    }
    return "Next: " + ", ".join(words[c] for c in controls if c in words)


def _error_line(e: JsError, fresh: bool | None = None) -> str:
    message = e.message if len(e.message) <= MAX_MESSAGE else e.message[: MAX_MESSAGE - 1] + "…"
    mark = " (new)" if fresh else ""
    users = f"{e.users:,} user" + ("" if e.users == 1 else "s")
    times = "once" if e.count == 1 else f"{e.count:,} times"
    return f"• {message}{mark} — {users}, {times} — {e.first_stack_line or '—'}"


def top_errors(report: ErrorReport, shown: int = 5) -> list[str]:
    lines = [_error_line(e) for e in report.errors[:shown]]
    if len(report.errors) > shown:
        lines.append(f"… and {len(report.errors) - shown} more")
    return lines


def evidence(verdict: Regressed) -> list[str]:
    """The regression's evidence: the new version's top errors, marked when new."""
    days = Window(verdict.new.start, verdict.new.end).words()
    head = f"Top errors of {verdict.new.version} ({days}):"
    return [head, *(_error_line(e, fresh) for e, fresh in verdict.evidence)]


def health(
    app: str,
    where: str,
    reports: Sequence[tuple[str, ErrorReport | None, str]],
    now: datetime,
    zone: ZoneInfo,
) -> str:
    """``health <app>``: per (label, report or None, why not), figures and top errors."""
    lines = [f"Health of {app} on {where} (JS errors, as of {local_time(now, zone)}):"]
    for label, report, why in reports:
        if report is None:
            lines.append(f"  {label}: {why}")
            continue
        partial = "" if report.complete else " (first pages only)"
        lines.append(
            f"  {label}: {report.users} error users, {report.count} errors on "
            f"{report.start}{partial}"
        )
        lines.extend(f"    {line}" for line in top_errors(report, 3))
    return "\n".join(lines)
