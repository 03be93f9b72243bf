"""Results of the use cases as plain text, for the console and for Slack messages.

Times are shown in the app's time zone, with the zone's abbreviation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from handlers.config import AppEntry
from handlers.releases import ActionResult, AppStatus, Change, Outcome, PlatformStatus
from platforms import platform_class
from storage import ReleaseState, TargetView
from storage.models import Event

__all__ = ["apps", "change", "event_line", "history", "local_time", "result", "status"]

MARK = {Outcome.OK: "✓", Outcome.FAILED: "✗", Outcome.REFUSED: "–"}
STATE_WORDS = {
    ReleaseState.UPLOADED: "uploaded",
    ReleaseState.IN_REVIEW: "in review",
    ReleaseState.DELAYED: "review delayed",
    ReleaseState.APPROVED: "approved",
    ReleaseState.REJECTED: "rejected",
    ReleaseState.WITHDRAWN: "withdrawn",
    ReleaseState.PUBLISHING: "publishing",
    ReleaseState.RELEASED: "released",
    ReleaseState.SUPERSEDED: "superseded",
}


def display(platform: str) -> str:
    return platform_class(platform).display_name


def state_words(state: str) -> str:
    return STATE_WORDS.get(ReleaseState(state), state)


def local_time(when: datetime | None, zone: ZoneInfo) -> str:
    if when is None:
        return "—"
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def result(res: ActionResult) -> str:
    head = f"{res.app.key} {res.version} · {res.action}"
    if res.refusal:
        return f"{head}\n  {res.refusal}"
    width = max((len(display(r.platform)) for r in res.results), default=0)
    lines = [head]
    for r in res.results:
        lines.append(f"  {MARK[r.outcome]} {display(r.platform).ljust(width)}  {r.message}")
    return "\n".join(lines)


def change(ch: Change) -> str:
    words = f"{state_words(ch.old)} → {state_words(ch.new)}"
    if ch.outside:
        words += " (changed outside miniship)"
    text = f"[review] {ch.app.key} {ch.version} on {display(ch.platform)}: {words}"
    if ch.reason:
        text += f"\n  reason: {ch.reason}"
    return text


def apps(entries: Sequence[AppEntry], emulated: frozenset[str]) -> str:
    if not entries:
        return "No apps to show. Apps are [apps.<name>] sections in miniship.toml."
    lines = []
    for app in entries:
        lines.append(f"{app.key} — {app.name} (times in {app.timezone.key})")
        if app.roles.open:
            lines.append("  roles: anyone may publish (set roles.publish in miniship.toml)")
        for name, section in app.platforms.items():
            cls = platform_class(name)
            note = " (emulated)" if name in emulated else ""
            lines.append(f"  {cls.display_name}: {cls.describe_app(section)}{note}")
    return "\n".join(lines)


def status(found: Sequence[AppStatus], emulated: frozenset[str]) -> str:
    blocks = []
    for app_status in found:
        app = app_status.app
        lines = [f"{app.key} — {app.name} (times in {app.timezone.key})"]
        for ps in app_status.platforms:
            lines.extend(_platform_status(ps, app.timezone, ps.platform in emulated))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _platform_status(ps: PlatformStatus, zone: ZoneInfo, emulated: bool) -> list[str]:
    name = display(ps.platform) + (" (emulated)" if emulated else "")
    if ps.error:
        said = f"could not ask: {ps.error}"
    elif ps.overview is not None:
        o = ps.overview
        parts = [f"live {o.live_version or 'none'}"]
        if o.trial_version:
            parts.append(f"trial {o.trial_version}")
        if o.review is not None and o.review.version:
            parts.append(f"latest review {o.review.version} {o.review.state.replace('_', ' ')}")
        said = " · ".join(parts)
    else:
        said = "no answer"
    lines = [f"  {name}: {said}"]
    if ps.overview is not None:
        lines.extend(f"    platform says: {extra}" for extra in ps.overview.lines)
    if not ps.releases:
        lines.append("    no releases in miniship yet")
    for view in ps.releases[:5]:
        lines.append("    " + _release_line(view, zone))
    return lines


def _release_line(view: TargetView, zone: ZoneInfo) -> str:
    t = view.target
    state = ReleaseState(t.state)
    when = {
        ReleaseState.UPLOADED: ("uploaded", t.uploaded_at),
        ReleaseState.IN_REVIEW: ("submitted", t.submitted_at),
        ReleaseState.DELAYED: ("submitted", t.submitted_at),
        ReleaseState.RELEASED: ("released", t.released_at),
        ReleaseState.APPROVED: ("decided", t.decided_at),
        ReleaseState.REJECTED: ("decided", t.decided_at),
    }.get(state, ("updated", t.updated_at))
    line = (
        f"{view.release.version:<10} {state_words(state):<15} {when[0]} {local_time(when[1], zone)}"
    )
    if t.review_reason and state in (ReleaseState.REJECTED, ReleaseState.DELAYED):
        line += f"\n      reason: {t.review_reason}"
    return line


def event_line(event: Event, zone: ZoneInfo) -> str:
    where = f" {display(event.platform)}" if event.platform else ""
    version = f" {event.version}" if event.version else ""
    when = local_time(event.at, zone)
    text = f"{when}  {event.actor}  {event.action}{version}{where}: {event.outcome}"
    if event.message:
        text += f" — {event.message}"
    return text


def history(app_key: str, zone: ZoneInfo, events: Sequence[Event]) -> str:
    if not events:
        return f"{app_key}: nothing has happened yet"
    return f"{app_key} history (times in {zone.key}):\n" + "\n".join(
        "  " + event_line(e, zone) for e in events
    )
