"""Results of the use cases as plain text, for the console and for Slack messages.

Times are shown in the app's time zone, with the zone's abbreviation.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from handlers import policy
from handlers.apps import Synced
from handlers.config import AppEntry
from handlers.fleet import Progress
from handlers.freezes import FreezeView
from handlers.releases import ActionResult, AppStatus, Change, Outcome, PlatformStatus
from handlers.views import (
    AppAccess,
    Attention,
    EventView,
    GroupStatus,
    PlatformQuotas,
    Scheduled,
    TargetLine,
    TemplateList,
    TimedView,
)
from handlers.when import describe
from platforms import platform_class
from platforms.base import BEIJING, GrayPlan, Template

__all__ = [
    "apps",
    "attention_line",
    "change",
    "connect_any_link",
    "connect_link",
    "digest",
    "duration",
    "event_line",
    "group_counts",
    "group_status",
    "history",
    "history_csv",
    "history_export",
    "history_filters",
    "history_page",
    "hold",
    "holds",
    "local_time",
    "moment",
    "quotas",
    "result",
    "schedule",
    "scheduled",
    "status",
    "templates",
    "timed_line",
]

MARK = {Outcome.OK: "✓", Outcome.FAILED: "✗", Outcome.REFUSED: "–"}


def display(platform: str) -> str:
    return platform_class(platform).display_name


def local_time(when: datetime | None, zone: ZoneInfo) -> str:
    if when is None:
        return "—"
    return when.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def moment(when: datetime, zone: ZoneInfo) -> str:
    """The exact time both ways: ``2026-12-01 10:00 CST (+08:00) = 02:00 UTC``."""
    return describe(when, zone)


def duration(span: timedelta) -> str:
    """``2 d 3 h``, ``3 h 5 min``, ``12 min``, ``40 s``: the two largest units."""
    seconds = max(0, round(span.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60 % 60, seconds // 3600 % 24, seconds // 86400
    parts = [(days, "d"), (hours, "h"), (minutes, "min")]
    first = next(i for i, (n, _) in enumerate(parts) if n)
    shown = [f"{n} {unit}" for n, unit in parts[first : first + 2] if n]
    return " ".join(shown)


def hold(h: FreezeView, zone: ZoneInfo) -> str:
    """``🧊 demo is frozen by console:root until 2026-12-05 18:00 CST … (code freeze)``."""
    what = "frozen" if h.kind == "freeze" else "locked"
    scope = "every app is" if h.scope == "all apps" else f"{h.scope} is"
    until = f"until {moment(h.until, zone)}" if h.until else "until unlocked"
    if h.kind == "freeze" and h.until is None:
        until = "until unfrozen"
    why = f" ({h.reason})" if h.reason else ""
    mark = "🧊" if h.kind == "freeze" else "🔒"
    return f"{mark} {scope} {what} by {h.by} {until}{why}"


def holds(found: Sequence[FreezeView], zone: ZoneInfo) -> str:
    return "\n".join(hold(h, zone) for h in found)


def result(res: ActionResult) -> str:
    head = f"{res.app.key} {res.version} · {res.action}"
    if res.refusal:
        return f"{head}\n  {res.refusal}"
    width = max((len(display(r.platform)) for r in res.results), default=0)
    lines = [head]
    for r in res.results:
        lines.append(f"  {MARK[r.outcome]} {display(r.platform).ljust(width)}  {r.message}")
    lines.extend(f"  ⚠ {note}" for note in res.notes)
    finish = res.finish()
    if finish:
        lines.append("  To finish: " + ", then ".join(f"`{c}`" for c in finish))
    return "\n".join(lines)


def change(ch: Change) -> str:
    words = f"{policy.words(ch.old)} → {policy.words(ch.new)}"
    if ch.outside:
        words += " (changed outside miniship)"
    text = f"[review] {ch.app.key} {ch.version} on {display(ch.platform)}: {words}"
    if ch.reason:
        text += f"\n  reason: {ch.reason}"
    step = _next_after(ch)
    if step:
        text += f"\n  next: {step}"
    return text


def _next_after(ch: Change) -> str:
    """What a rejection or a delay leaves to do, as the policy allows it."""
    app, p, version = ch.app.key, ch.platform, ch.version
    if policy.has_evidence(ch.new):
        cls = platform_class(p)
        back = (
            f" — or send it back to development: `withdraw {app} {p} {version}`"
            if policy.allows("withdraw", ch.new, withdraws_decided=cls.withdraws_decided)
            else ""
        )
        return (
            f"fix what the reviewers found, then `submit {app} {p} {version}` again — or "
            f"upload a fix as a new version: `upload {app} {p} <version> <notes>`{back}"
        )
    delayed = policy.shows_reason(ch.new) and policy.allows("expedite", ch.new)
    if delayed and platform_class(p).offers("expedite"):
        return f"`expedite {app} {p} {version}` asks {display(p)} for a faster review"
    return ""


SOURCES = {"file": "miniship.toml", "chat": "added from chat"}


def app_head(app: AppEntry) -> list[str]:
    """``shop — Shop (times in Asia/Shanghai)`` and what describes it: tags, where it is
    defined, its channel, who may publish it."""
    lines = [f"{app.key} — {app.name} (times in {app.timezone.key})"]
    source = SOURCES.get(app.source)
    about = [source if source is not None else f"reported by {display(app.source)}"]
    if app.tags:
        about.append("tags " + " ".join(f"@{t}" for t in app.tags))
    if app.channel:
        about.append(f"cards in <#{app.channel}>")
    lines.append("  " + " · ".join(about))
    if app.roles.open:
        lines.append(f"  roles: anyone may publish (set roles.publish {_roles_set(app)})")
    return lines


def _roles_set(app: AppEntry) -> str:
    """Where the roles of ``app`` are set: "in miniship.toml" for its apps; for an app kept
    in the database, its owners (the release and publish roles) from chat."""
    return "in miniship.toml" if app.source == "file" else f"with `app set {app.key} owners`"


def role_lacking(app: AppEntry, role: str, doing: str) -> str:
    """The refusal of someone without ``role`` on ``app``, saying where that role is set."""
    said = f"You need the *{role}* role for {app.key} to {doing}. Ask someone who has it; "
    if app.source == "file":
        return f"{said}the roles of {app.key} are set {_roles_set(app)}."
    if role in ("release", "publish"):
        return f"{said}an admin names who may release and publish it {_roles_set(app)}."
    return (
        f"{said}{app.key} is kept in the database, where chat sets only who may release and "
        f"publish it ({_roles_set(app)})."
    )


def app_added(app: AppEntry, emulated: frozenset[str]) -> str:
    lines = [f"Added {app.key}: miniship releases it from now on.", *app_head(app)]
    lines += [_platform_line(name, section, emulated) for name, section in app.platforms.items()]
    return "\n".join(lines)


def app_changed(app: AppEntry, fields: Sequence[str]) -> str:
    return "\n".join([f"Changed {', '.join(fields)} of {app.key}.", *app_head(app)])


def _platform_line(name: str, section: BaseModel, emulated: frozenset[str]) -> str:
    cls = platform_class(name)
    note = " (emulated)" if name in emulated else ""
    return f"  {cls.display_name}: {cls.describe_app(section)}{note}"


def synced(s: Synced) -> str:
    name = display(s.platform)
    lines = [f"{name}: {s.authorized} mini programs authorize the platform."]
    if s.added:
        lines.append(f"  added {len(s.added)}: {_some(s.added)}")
    if s.retired:
        lines.append(f"  removed {len(s.retired)} no longer authorized: {_some(s.retired)}")
    if s.kept:
        lines.append(f"  no longer authorized, kept while work is under way: {_some(s.kept)}")
    if s.unlisted:
        lines.append(f"  not authorized on {name} (from the file or chat): {_some(s.unlisted)}")
    if len(lines) == 1:
        lines.append("  nothing to add: every one is an app already.")
    return "\n".join(lines)


BAR = 20  # characters of a progress bar


def fleet_bar(p: Progress) -> str:
    """``#7 submit @shops 1.3.0 [████████░░░░] 132 / 500 done · 3 failed · 12 in flight``."""
    total, c = p.total, p.counts
    filled = round(BAR * p.finished / total) if total else BAR
    parts = [f"{p.finished} / {total} done"]
    for state, words in (
        ("failed", "failed"),
        ("skipped", "skipped"),
        ("waiting", "waiting for approval"),
        ("cancelled", "cancelled"),
        ("running", "in flight"),
    ):
        if c.get(state):
            parts.append(f"{c[state]} {words}")
    state = "" if p.run.state == "running" else f" — {p.run.state}"
    bar = "█" * filled + "░" * (BAR - filled)
    line = f"#{p.run.id} {p.run.command} [{bar}] {' · '.join(parts)}{state}"
    if p.rollouts:  # its starts are the items; the rollouts go on
        line += "\n🚦 rollouts: " + fleet_rollouts(p)
    return line


def fleet_rollouts(p: Progress) -> str:
    """``3 advanced · 1 held · 1 halted`` (every standing of :data:`policy.ROLLOUT_STANDINGS`
    that has any), and how many are still under way."""
    said = [f"{p.rollouts[w]} {w}" for w in policy.ROLLOUT_STANDINGS if p.rollouts.get(w)]
    ended = p.rollouts.get("completed", 0) + p.rollouts.get("aborted", 0)
    going = sum(p.rollouts.values()) - ended
    return " · ".join(said) + (f" ({going} under way)" if going else " (all ended)")


def fleet(p: Progress, *, detail: bool = False, shown: int = 20) -> str:
    lines = [fleet_bar(p)]
    if detail:
        lines.append(f"  started by {p.run.created_by} at {p.run.created_at:%Y-%m-%d %H:%M} UTC")
        if p.run.retried_by:
            lines.append(f"  retried by {p.run.retried_by} (the retried apps run as them)")
    for app, why in p.failures[:shown]:
        lines.append(f"  ✗ {app}: {why}")
    if len(p.failures) > shown:
        lines.append(f"  … and {len(p.failures) - shown} more failed (`fleet {p.run.id}`)")
    for app, why in p.skipped[:shown]:
        lines.append(f"  – {app} skipped: {why}")
    if len(p.skipped) > shown:
        lines.append(f"  … and {len(p.skipped) - shown} more skipped (`fleet {p.run.id}`)")
    for app, what in p.stuck[:shown]:
        lines.append(f"  ⚠ {app}: {what}")
    if len(p.stuck) > shown:
        lines.append(f"  … and {len(p.stuck) - shown} more rollouts to look at")
    going = sum(p.rollouts.values()) - p.rollouts.get("completed", 0) - p.rollouts.get("aborted", 0)
    if detail and going:  # rollout @shops 1.4.0 …: steered as it was started
        group = " ".join(p.run.command.split()[:3])
        lines.append(f"  `{group} pause | resume | abort` steers its rollouts under way")
    if detail and p.run.state == "running":
        lines.append(f"  `fleet {p.run.id} cancel` stops it (what ran stays done)")
    elif detail and p.failures:
        lines.append(f"  `fleet {p.run.id} retry` runs the failed apps again")
    return "\n".join(lines)


def fleet_list(runs: Sequence[Progress]) -> str:
    if not runs:
        return "No fleet runs yet. A command naming `@tag` or `all` instead of an app starts one."
    return "\n".join(fleet_bar(p) for p in runs)


def _some(keys: Sequence[str], shown: int = 20) -> str:
    more = f" … and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def apps(entries: Sequence[AppAccess], emulated: frozenset[str]) -> str:
    if not entries:
        return (
            "No apps to show. Apps are [apps.<name>] sections in miniship.toml, or added "
            "with `app add`."
        )
    lines = []
    for entry in entries:
        app = entry.app
        lines += app_head(app)
        for name, section in app.platforms.items():
            lines.append(_platform_line(name, section, emulated))
            grant = entry.grants.get(name)
            if name in entry.errors:
                lines.append(f"    authorization unknown: {entry.errors[name]}")
            elif grant is not None and not grant.authorized:
                lines.append(f"    not authorized — `connect {app.key} {name}` gives the link")
            elif grant is not None:
                granted = ", ".join(grant.permission_names) or "no permission sets"
                lines.append(f"    authorized: {granted}")
    return "\n".join(lines)


def templates(found: Sequence[TemplateList]) -> str:
    blocks = []
    for listing in found:
        head = f"{display(listing.platform)} template library"
        if listing.error:
            blocks.append(f"{head}: could not ask: {listing.error}")
            continue
        kept = [t for t in listing.templates if not t.draft]
        drafts = [t for t in listing.templates if t.draft]
        lines = [f"{head} ({len(kept)}):"]
        lines += [_template_line(t) for t in kept] or ["  none"]
        lines.append(f"Draft box ({len(drafts)}) — `template add <draft_id>` makes one a template:")
        lines += [_template_line(t) for t in drafts] or ["  empty"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _template_line(t: Template) -> str:
    kind = "draft" if t.draft else "template"
    parts = [f"  {kind} {t.id}: {t.version}"]
    if t.description:
        parts.append(f"“{t.description}”")
    if t.source:
        parts.append(f"from {t.source}")
    if t.developer:
        parts.append(f"by {t.developer}")
    if t.created_at is not None:
        parts.append(t.created_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M Beijing"))
    return " · ".join(parts)


def quotas(app: str, found: Sequence[PlatformQuotas]) -> str:
    lines = [f"{app} — platform limits"]
    for pq in found:
        name = display(pq.platform)
        if pq.error:
            lines.append(f"  {name}: could not ask: {pq.error}")
        elif not pq.quotas:
            lines.append(f"  {name}: no limits the platform reports")
        for q in pq.quotas:
            left = "unknown" if q.remaining is None else str(q.remaining)
            of = f" of {q.limit}" if q.limit is not None else ""
            note = " (counted by miniship)" if q.counted_here else ""
            mark = "  ✗ spent" if q.spent else ""
            lines.append(f"  {name}: {q.what}: {left}{of} left{note}{mark}")
    return "\n".join(lines)


def connect_link(app: str, platform: str, link: str) -> str:
    return (
        f"To let miniship release {app} on {display(platform)}, an administrator of the "
        "mini program opens this link and confirms (it works once; open it within 10 "
        "minutes):\n"
        f"{link}\nWhen they are done, `apps` shows {app} as authorized."
    )


def connect_any_link(platform: str, link: str) -> str:
    return (
        f"An administrator of any {display(platform)} mini program opens this link, picks "
        "the mini program and confirms; it then becomes an app (its id as key), announced "
        "in the admin channel, with no restart. The link works once, within 40 minutes:\n"
        f"{link}"
    )


ATTENTION_SHOWN = 25


def group_status(g: GroupStatus, zone: ZoneInfo, page: int = 1, command: str = "status all") -> str:
    """A group's releases counted per platform and state, and what needs a person:
    :data:`ATTENTION_SHOWN` a page (``command`` with ``page N`` shows page N)."""
    lines = [f"{g.label} — {g.apps} apps (their newest releases; times in {zone.key})"]
    lines += [f"  {display(platform)}: {counted}" for platform, counted in group_counts(g)]
    if not g.attention:
        lines.append("  nothing needs attention")
        return "\n".join(lines)
    pages = -(-len(g.attention) // ATTENTION_SHOWN)
    if page > pages:
        lines.append(
            f"  needs attention ({len(g.attention)}): there is no page {page}; "
            f"the last is `{command} page {pages}`"
        )
        return "\n".join(lines)
    first = (page - 1) * ATTENTION_SHOWN
    shown = g.attention[first : first + ATTENTION_SHOWN]
    where = f", page {page} of {pages}" if pages > 1 else ""
    lines.append(f"  needs attention ({len(g.attention)}{where}):")
    lines += [f"    {attention_line(a, zone)}" for a in shown]
    if page < pages:
        more = len(g.attention) - first - len(shown)
        lines.append(
            f"    … and {more} more: `{command} page {page + 1}`; `status <app>` shows one app"
        )
    return "\n".join(lines)


def group_counts(g: GroupStatus) -> list[tuple[str, str]]:
    """(platform, ``"600 approved · 3 rejected · 12 no release yet"``) for each platform
    of a group, most common state first (``status @tag`` and the App Home's summary)."""
    out = []
    for platform in sorted({*g.counts, *g.unreleased}):
        per = sorted(g.counts.get(platform, {}).items(), key=lambda kv: -kv[1])
        parts = [f"{n} {words}" for words, n in per]
        if g.unreleased.get(platform):
            parts.append(f"{g.unreleased[platform]} no release yet")
        out.append((platform, " · ".join(parts)))
    return out


def attention_line(a: Attention, zone: ZoneInfo) -> str:
    """``shop 1.3.0 on WeChat: rejected since 2026-12-04 10:00 CST — reason``."""
    t = a.line
    when = f" since {local_time(t.updated_at, zone)}" if t.updated_at else ""
    reason = f" — {_clip_line(t.reason, 120)}" if t.reason else ""
    return f"{t.app_key} {t.version} on {display(t.platform)}: {a.why}{when}{reason}"


def _clip_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def status(found: Sequence[AppStatus], emulated: frozenset[str]) -> str:
    blocks = []
    for app_status in found:
        app = app_status.app
        lines = [f"{app.key} — {app.name} (times in {app.timezone.key})"]
        lines += [f"  {hold(h, app.timezone)}" for h in app_status.holds]
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
        if o.gray is not None:
            parts.append(_gray_words(o.gray, zone))
        said = " · ".join(parts)
    else:
        said = "no answer"
    lines = [f"  {name}: {said}"]
    if ps.overview is not None:
        lines.extend(f"    platform says: {extra}" for extra in ps.overview.lines)
    if not ps.releases:
        lines.append("    no releases in miniship yet")
    for t in ps.releases[:5]:
        lines.append("    " + _release_line(t, zone))
    if ps.versions:
        lines.append(f"    versions {display(ps.platform)} keeps:")
        for v in ps.versions:
            when = f" · {local_time(v.created_at, zone)}" if v.created_at else ""
            back = " · can roll back to" if v.rollback else ""
            text = " ".join(v.description.split())  # one line, however it was written
            desc = f" · “{text[:60]}{'…' if len(text) > 60 else ''}”" if text else ""
            lines.append(f"      {v.version}: {v.state}{when}{desc}{back}")
    return lines


def _gray_words(plan: GrayPlan, zone: ZoneInfo) -> str:
    share = (
        f"at {plan.percent}%"
        if plan.percent is not None
        else "at a share the platform does not report"
    )
    words = f"gray {plan.version or ''} {share} ({plan.state}"
    if plan.since is not None:
        words += f" since {local_time(plan.since, zone)}"
    return words.replace("gray  at", "gray at") + ")"


def _release_line(t: TargetLine, zone: ZoneInfo) -> str:
    line = f"{t.version:<10} {policy.words(t.state):<15} {t.moment} {local_time(t.at, zone)}"
    if t.reason:
        line += f"\n      reason: {t.reason}"
    return line


def event_line(event: EventView, zone: ZoneInfo) -> str:
    where = f" {display(event.platform)}" if event.platform else ""
    version = f" {event.version}" if event.version else ""
    when = local_time(event.at, zone)
    text = f"{when}  {event.actor}  {event.action}{version}{where}: {event.outcome}"
    if event.message:
        text += f" — {event.message}"
    return text


def history(app_key: str, zone: ZoneInfo, events: Sequence[EventView]) -> str:
    if not events:
        return f"{app_key}: nothing has happened yet"
    return f"{app_key} history (times in {zone.key}):\n" + "\n".join(
        "  " + event_line(e, zone) for e in events
    )


MESSAGE_SHOWN = 300  # characters of an event's message in a listing (the CSV has it all)


def history_filters(
    platforms: Sequence[str],
    actions: Sequence[str],
    actor: str | None,
    since: datetime | None,
    until: datetime | None,
    zone: ZoneInfo,
) -> list[str]:
    """What a history query keeps, in words: ``["on WeChat", "publish, gray", …]``."""
    out: list[str] = []
    if platforms:
        out.append("on " + " and ".join(display(p) for p in platforms))
    if actions:
        out.append(", ".join(actions))
    if actor is not None:
        out.append(f"by {actor}")
    if since is not None:
        out.append(f"since {local_time(since, zone)}")
    if until is not None:
        out.append(f"before {local_time(until, zone)}")
    return out


def history_page(
    scope: str,
    zone: ZoneInfo,
    events: Sequence[EventView],
    *,
    filters: Sequence[str] = (),
    older: str | None = None,
    apps: bool = False,
    paged: bool = False,
) -> str:
    """One page of history, newest last.

    Args:
        scope: the app (``demo``) or the apps (``every app you may view (demo, shop)``).
        events: newest first, as queried.
        filters: what the query keeps, in words (:func:`history_filters`).
        older: the command that shows the page before this one (None: there is none).
        apps: name each event's app (several apps).
        paged: the page is an older one (``--before``).
    """
    what = " · ".join([scope, *filters])
    if not events:
        if paged:
            return f"{what}: no older events"
        return f"{what}: no events match" if filters else f"{what}: nothing has happened yet"
    lines = [f"History of {what} (times in {zone.key}):"]
    for e in reversed(events):
        shown = replace(e, message=_clipped(e.message))
        where = f"{e.app_key or '—'}  " if apps else ""
        lines.append(f"  {where}{event_line(shown, zone)}")
    if older is not None:
        lines.append(f"{len(events)} shown; older events: `{older}`")
    return "\n".join(lines)


def _clipped(message: str) -> str:
    """On one line, and not too long for a listing."""
    text = " ".join(message.split())
    return text if len(text) <= MESSAGE_SHOWN else text[: MESSAGE_SHOWN - 1] + "…"


def history_export(
    scope: str,
    rows: int,
    filename: str,
    *,
    filters: Sequence[str] = (),
    rest: str | None = None,
    limit: int,
) -> str:
    """What goes with an export: how many events, and how to get those left out."""
    what = " · ".join([scope, *filters])
    if not rows:
        return f"{what}: no events match, so there is nothing to export"
    noun = "event" if rows == 1 else "events"
    text = f"{what}: {rows:,} {noun} exported to {filename}"
    if rest is not None:
        text += (
            f"\nThat is the newest {limit:,}; there are more. Narrow it with --since/--until, "
            f"or export the next ones with `{rest}`"
        )
    return text


CSV_HEADER = (
    "id",
    "at (UTC)",
    "at (local)",
    "actor",
    "action",
    "outcome",
    "app",
    "version",
    "platform",
    "message",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run these as formulas


def history_csv(events: Sequence[EventView], zone: ZoneInfo) -> bytes:
    """The events as CSV (RFC 4180, UTF-8 with a byte-order mark so that a spreadsheet
    reads Chinese text right), in the order given; times in ISO 8601, in UTC and in
    ``zone``. A text cell that a spreadsheet would take for a formula gets a leading
    apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header = list(CSV_HEADER)
    header[2] = f"at ({zone.key})"
    writer.writerow(header)
    for e in events:
        writer.writerow(
            [
                "" if e.id is None else e.id,
                _iso(e.at.astimezone(UTC)).replace("+00:00", "Z"),
                _iso_in(e.at, zone),
                *(
                    _cell(v)
                    for v in (e.actor, e.action, e.outcome, e.app_key, e.version, e.platform)
                ),
                _cell(e.message),
            ]
        )
    return out.getvalue().encode("utf-8-sig")


def _cell(value: str | None) -> str:
    if not value:
        return ""
    return "'" + value if value.startswith(_FORMULA) else value


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _iso_in(moment: datetime, zone: ZoneInfo) -> str:
    try:
        return _iso(moment.astimezone(zone))
    except OverflowError:  # off the calendar there: UTC alone says it
        return ""


# -- timed releases -----------------------------------------------------------------------


def _platform_list(names: Sequence[str]) -> str:
    return ", ".join(display(p) for p in names)


def timed_line(action: TimedView, zone: ZoneInfo) -> str:
    """``#7 demo 1.2.0 on WeChat at 2026-12-01 10:00 CST (+08:00) = 02:00 UTC, by …``."""
    return (
        f"#{action.id} {action.app_key} {action.version} on {_platform_list(action.platforms)} "
        f"at {moment(action.due_at, zone)}, planned by {action.created_by}"
    )


def schedule(actions: Sequence[TimedView], zones: Mapping[str, ZoneInfo]) -> str:
    if not actions:
        return "No timed releases pending. Plan one with `publish <app> <version> at <time>`."
    lines = ["Timed releases pending (`schedule cancel <id>` cancels one):"]
    for a in actions:
        lines.append("  ⏰ " + timed_line(a, zones[a.app_key]))
    return "\n".join(lines)


def scheduled(s: Scheduled) -> str:
    a = s.action
    zone = s.app.timezone
    lines = [
        f"⏰ Timed release #{a.id}: {a.app_key} {a.version} will be published on "
        f"{_platform_list(a.platforms)} at {moment(a.due_at, zone)}."
    ]
    if s.waiting:
        lines.append(
            f"  Not approved yet ({'; '.join(s.waiting)}): unless it is by then, "
            "nothing is published."
        )
    if s.remind_at is not None:
        lines.append(
            f"  A reminder goes to the release's thread at {local_time(s.remind_at, zone)}."
        )
    lines.append(f"  `schedule cancel {a.id}` cancels it.")
    return "\n".join(lines)


def digest(
    zone: ZoneInfo,
    now: datetime,
    *,
    in_review: Sequence[TargetLine],
    released: Sequence[TargetLine],
    planned: Sequence[TimedView],
    holds: Sequence[FreezeView] = (),
) -> str:
    """The daily digest of some apps; "" when there is nothing to say."""
    if not (in_review or released or planned or holds):
        return ""
    lines = [f"📋 Releases today, {now.astimezone(zone):%Y-%m-%d} (times in {zone.key})"]
    shown = list(dict.fromkeys(hold(h, zone) for h in holds))  # "all apps" once
    lines += shown
    if in_review:
        lines.append(f"In review ({len(in_review)}, longest waiting first):")
        oldest = sorted(in_review, key=lambda t: t.submitted_at or now)
        for t in oldest[:DIGEST_SHOWN]:
            since = t.submitted_at
            waited = f" for {duration(now - since)}" if since else ""
            lines.append(
                f"  {t.app_key} {t.version} on {display(t.platform)}: "
                f"{policy.words(t.state)}{waited}"
            )
        lines += _more(len(in_review), "in review")
    if released:
        lines.append(f"Released in the last 24 hours ({len(released)}):")
        for t in released[:DIGEST_SHOWN]:
            lines.append(
                f"  {t.app_key} {t.version} on {display(t.platform)} "
                f"at {local_time(t.released_at, zone)}"
            )
        lines += _more(len(released), "released")
    if planned:
        lines.append(f"Scheduled ({len(planned)}):")
        lines.extend("  ⏰ " + timed_line(a, zone) for a in planned[:DIGEST_SHOWN])
        lines += _more(len(planned), "scheduled", "schedule")
    return "\n".join(lines)


DIGEST_SHOWN = 20
"""Lines per digest section: a fleet of hundreds of apps still fits one chat message."""


def _more(count: int, what: str, command: str = "status all") -> list[str]:
    if count <= DIGEST_SHOWN:
        return []
    return [f"  … and {count - DIGEST_SHOWN} more {what} (`{command}`)"]
