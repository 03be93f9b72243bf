"""Slack Block Kit for releases: the release card and the App Home. Pure functions.

A release card is one Slack message per release: the app and version, its notes, one
section per platform with its state, and buttons for the next sensible step on each
platform. Publish and Withdraw ask for confirmation first. The card is rebuilt from the
stored release and updated in place after every change.

Everything shown comes from people (notes, review reasons, app names), so it is escaped
for mrkdwn and clipped to stay inside Slack's limits (https://docs.slack.dev/reference/block-kit):
a message holds at most 50 blocks and a Home tab 100; a section's text is at most 3000
characters, a header's 150, a confirm dialog's title 100 and its text 300, a button's
value 2000.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import platforms
from handlers import policy
from handlers.commands import APP, MAX_VERSION, VERSION, action_id, buttons, find
from handlers.config import AppEntry
from handlers.releases import spent_words
from handlers.render import attention_line, group_counts, local_time
from handlers.views import GroupStatus, ReleaseCard, TargetLine
from platforms.base import Quota
from storage.states import ReleaseState

__all__ = [
    "APPROVE",
    "CANCEL",
    "CONFIRM",
    "DENY",
    "HOME_ATTENTION",
    "HOME_ROW_APPS",
    "MAX_HOME_BLOCKS",
    "MAX_MESSAGE_BLOCKS",
    "ROLLOUT",
    "SCHEDULE",
    "Block",
    "HomeRow",
    "HomeSummary",
    "approval",
    "button_value",
    "button_verbs",
    "confirmation",
    "escape",
    "home_fits",
    "home_view",
    "mention",
    "next_steps",
    "overrides",
    "parse_button_value",
    "publish_now",
    "release_card",
    "retry",
    "rollout_controls",
    "schedulable",
]

Block = dict[str, Any]


MAX_MESSAGE_BLOCKS = 50
MAX_HOME_BLOCKS = 100
MAX_VALUE = 2000  # a button's value
MAX_HEADER = 150  # a header block's plain_text
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_NOTES = 2500  # of a section's 3000, escaped
MAX_REASON = 300  # a review reason quoted under its platform
MAX_NAME = 100  # an app's name inside longer texts
MAX_SECTION = 3000  # a section's text
MAX_NOTE = 450  # a hold or a spent quota under a Home row (five fit a section)

_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")


# -- text -------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Text shown as-is in mrkdwn: Slack's three control characters escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_clipped(text: str, limit: int) -> str:
    """``escape(text)``, cut (never inside an entity) so that it is at most ``limit`` long."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    out: list[str] = []
    used = 0
    for char in text:
        piece = escape(char)
        if used + len(piece) > limit - 1:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out).rstrip() + "…"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _display(platform: str) -> str:
    try:
        return platforms.platform_class(platform).display_name
    except KeyError:  # a platform no longer in the registry: show its stored name
        return platform


def _person(actor: str) -> str:
    """A Slack user id as a mention; anything else (``console:root``…) as plain text."""
    return f"<@{actor}>" if _SLACK_USER.fullmatch(actor) else escape(actor)


def mention(who: str) -> str:
    """A Slack user (U…, W…) or user group (S…) id as a mention; anything else as text."""
    if re.fullmatch(r"S[A-Z0-9]{2,}", who):
        return f"<!subteam^{who}>"
    return _person(who)


# -- buttons ----------------------------------------------------------------------------


def next_steps(state: ReleaseState | str, platform: str) -> list[str]:
    """The command verbs ("submit", "publish", "withdraw") offered next on ``platform``:
    exactly those the release policy lets start from ``state``."""
    try:
        cls = platforms.platform_class(platform)
    except KeyError:  # a platform no longer in the registry: offer what all can do
        return policy.offered(state, button_verbs())
    return policy.offered(
        state,
        button_verbs(),
        withdraws_decided=cls.withdraws_decided,
        expedites=cls.offers("expedite"),
    )


def button_verbs() -> list[str]:
    """The commands that declare a card button (``Command.button``), in help's order."""
    return [c.name for c in buttons()]


def button_value(app: str, version: str, platform: str, override: bool = False) -> str:
    """What a button carries: compact JSON naming the release and the platform ("" for
    every platform the app is on); ``override``: it acts through a freeze (the override
    role is checked when it is clicked)."""
    fields: dict[str, Any] = {"app": app, "version": version, "platform": platform}
    if override:
        fields["override"] = True
    value = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    if len(value) > MAX_VALUE:  # app keys and versions are short; this cannot happen
        raise ValueError("button value too long")
    return value


def parse_button_value(value: str) -> tuple[str, str, str]:
    """(app, version, platform) from a button's value; ValueError unless well formed.

    Values arrive from the network, so each part is checked as strictly as the command
    grammar would: the result is safe to put back into a command line.
    """
    if not value or len(value) > MAX_VALUE:
        raise ValueError("not a miniship button value")
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):
        raise ValueError("not a miniship button value") from None
    if not isinstance(data, dict) or set(data) - {"override"} != {"app", "version", "platform"}:
        raise ValueError("not a miniship button value")
    if data.get("override", True) is not True:
        raise ValueError("bad override in button value")
    app, version, platform = data["app"], data["version"], data["platform"]
    if not isinstance(app, str) or not APP.fullmatch(app):
        raise ValueError("bad app in button value")
    if not isinstance(version, str) or len(version) > MAX_VERSION or not VERSION.fullmatch(version):
        raise ValueError("bad version in button value")
    if not isinstance(platform, str) or platform not in ("", *platforms.names()):
        raise ValueError("bad platform in button value")
    return app, version, platform


def overrides(value: str) -> bool:
    """Whether a (well-formed) button value acts through a freeze."""
    try:
        return bool(json.loads(value).get("override"))
    except (ValueError, AttributeError, RecursionError):
        return False


def _button(verb: str, app: AppEntry, version: str, platform: str, override: bool = False) -> Block:
    command = find(verb)
    assert command is not None and command.button is not None
    look = command.button
    button: Block = {
        "type": "button",
        "action_id": action_id(verb),
        "text": {"type": "plain_text", "text": look.label},
        "value": button_value(app.key, version, platform, override),
    }
    if look.style:
        button["style"] = look.style
    if look.confirm:
        button["confirm"] = _confirm(look.confirm, look.style, app, version, platform, override)
    return button


def _confirm(
    words: tuple[str, str],
    style: str | None,
    app: AppEntry,
    version: str,
    platform: str,
    override: bool = False,
) -> Block:
    label, consequence = words
    if override:
        consequence = (
            "It goes live through whatever freeze or lock holds the app when you click "
            "(you need the override role); the override is recorded in your name."
        )
    where = _display(platform) if platform else "every platform"
    title = _clip(f"{label} {version} on {where}?", MAX_CONFIRM_TITLE)
    tail = f" {version} on {where}? {consequence}"
    name = _clip(app.name, max(10, MAX_CONFIRM_TEXT - len(label) - 1 - len(tail)))
    return {
        "title": {"type": "plain_text", "text": title},
        "text": {"type": "plain_text", "text": _clip(f"{label} {name}{tail}", MAX_CONFIRM_TEXT)},
        "confirm": {"type": "plain_text", "text": label},
        "deny": {"type": "plain_text", "text": "Cancel"},
        "style": style or "primary",
    }


def retry(
    text: str, app: AppEntry, version: str, verb: str, platforms_: Sequence[str]
) -> list[Block]:
    """A thread reply saying ``text``, with buttons that run ``verb`` again on each
    platform a split outcome left unfinished — [] when ``verb`` has no card button (the
    text says the command to type)."""
    if verb not in button_verbs() or not platforms_:
        return []
    elements = []
    for platform in platforms_:
        button = _button(verb, app, version, platform)
        button["text"] = {"type": "plain_text", "text": f"Retry on {_display(platform)}"}
        elements.append(button)
    return [_said(text), {"type": "actions", "block_id": "retry", "elements": elements[:5]}]


def _said(text: str, mention: str = "") -> Block:
    """``text`` shown as-is (escaped), after ``mention``: mrkdwn made here (the owners'
    mentions, :func:`mention`), kept as it is."""
    said = _escape_clipped(text, 2900 - len(mention))
    return {
        "type": "section",
        "block_id": "said",
        "text": {"type": "mrkdwn", "text": mention + said, "verbatim": True},
    }


APPROVE = "miniship_approve"
DENY = "miniship_deny"


def approval(text: str, request: int) -> list[Block]:
    """A request for a second person, with Approve and Deny (miniship checks who clicks:
    the publish role, and not the requester)."""
    value = str(request)
    return [
        _said(text),
        {
            "type": "actions",
            "block_id": "approval",
            "elements": [
                {
                    "type": "button",
                    "action_id": APPROVE,
                    "text": {"type": "plain_text", "text": "Approve"},
                    "style": "primary",
                    "value": value,
                },
                {
                    "type": "button",
                    "action_id": DENY,
                    "text": {"type": "plain_text", "text": "Deny"},
                    "value": value,
                },
            ],
        },
    ]


CONFIRM = "miniship_confirm"
CANCEL = "miniship_cancel"


def confirmation(question: str, token: str, expires_at: datetime) -> list[Block]:
    """A question only its requester sees, with Confirm and Cancel (the buttons carry the
    confirmation's token; miniship checks who clicks and that it has not expired)."""
    if len(token) > MAX_VALUE:
        raise ValueError("confirmation token too long")
    deadline = int(expires_at.timestamp())

    def button(label: str, action: str, style: str | None) -> Block:
        element: Block = {
            "type": "button",
            "action_id": action,
            "text": {"type": "plain_text", "text": label},
            "value": token,
        }
        if style:
            element["style"] = style
        return element

    return [
        {
            "type": "section",
            "block_id": "question",
            "text": {"type": "mrkdwn", "text": _escape_clipped(question, 2900), "verbatim": True},
        },
        {
            "type": "actions",
            "block_id": "answer",
            "elements": [button("Confirm", CONFIRM, "danger"), button("Cancel", CANCEL, None)],
        },
        {
            "type": "context",
            "block_id": "expiry",
            "elements": [
                {
                    "type": "mrkdwn",
                    # Slack shows the time in each reader's own zone
                    "text": f"Only you can confirm this, before <!date^{deadline}^{{time}}"
                    f"|{expires_at:%H:%M} UTC>; nothing runs until then.",
                }
            ],
        },
    ]


def publish_now(
    app: AppEntry, version: str, platforms_: Sequence[str], text: str, override: bool = False
) -> list[Block]:
    """A message saying ``text`` with a "Publish now" button (after a missed timed release,
    or one a freeze held: ``override``).

    The button publishes on ``platforms_`` — one platform, or every one the app is on.
    """
    platform = platforms_[0] if len(platforms_) == 1 else ""
    button = _button("publish", app, version, platform, override)
    button["text"] = {"type": "plain_text", "text": "Publish now"}
    return [_said(text), {"type": "actions", "block_id": "now", "elements": [button]}]


# -- the release card -------------------------------------------------------------------


def _platform_line(target: TargetLine, zone: ZoneInfo) -> str:
    text = f"*{escape(_display(target.platform))}* — {escape(policy.words(target.state))}"
    if target.at is not None:
        text += f" · {target.moment} {local_time(target.at, zone)}"
    if target.reason:
        text += "\n> " + _escape_clipped(target.reason, MAX_REASON)
    return text


def _step_button(verb: str, app: AppEntry, target: TargetLine) -> Block:
    button = _button(verb, app, target.version, target.platform)
    if verb == "submit" and policy.resubmits(target.state):
        button["text"] = {"type": "plain_text", "text": "Resubmit"}
    return button


def _platform_blocks(
    app: AppEntry, target: TargetLine, spent: frozenset[str] = frozenset()
) -> list[Block]:
    blocks: list[Block] = [
        {
            "type": "section",
            "block_id": f"p:{target.platform}",
            "text": {
                "type": "mrkdwn",
                "text": _platform_line(target, app.timezone),
                "verbatim": True,
            },
        }
    ]
    steps = [verb for verb in next_steps(target.state, target.platform) if verb not in spent]
    if steps:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"a:{target.platform}",
                "elements": [_step_button(verb, app, target) for verb in steps],
            }
        )
    return blocks


def release_card(
    card: ReleaseCard,
    *,
    emulated: frozenset[str] = frozenset(),
    schedule_lines: Sequence[str] = (),
    spent: Mapping[str, Sequence[Quota]] | None = None,
    controls: Sequence[Block] = (),
) -> tuple[str, list[Block]]:
    """(fallback text for notifications, blocks) of a release's card.

    ``controls``: blocks above the footer (a staged rollout's buttons, :func:`rollout_controls`).

    ``emulated`` names the platforms served by in-process emulators; ``schedule_lines``
    (plain text, escaped here) are added at the bottom, e.g. a scheduled publish;
    ``spent``: per platform, the quotas used up — their actions are not offered, and the
    footer says why.
    """
    spent = spent or {}
    app = card.app
    ordered = sorted(card.targets, key=lambda t: t.platform)
    title = f"{app.name} {card.version}"
    blocks: list[Block] = [
        {
            "type": "header",
            "block_id": "head",
            "text": {"type": "plain_text", "text": _clip(title, MAX_HEADER), "emoji": False},
        },
        {
            "type": "section",
            "block_id": "notes",
            "text": {
                "type": "mrkdwn",
                "text": _escape_clipped(card.notes.strip(), MAX_NOTES)
                if card.notes.strip()
                else "_no release notes_",
                "verbatim": True,
            },
        },
    ]
    used_up = {p: frozenset(q.action for q in quotas) for p, quotas in spent.items()}
    schedule_lines = [
        *(
            f"{_display(p)}: {spent_words(q)}"
            for p, quotas in sorted(spent.items())
            for q in quotas
            if any(q.action in next_steps(t.state, p) for t in ordered if t.platform == p)
        ),
        *schedule_lines,
    ]
    footer = _card_footer(card.created_by, ordered, emulated, schedule_lines)
    schedule = _schedule_block(app, card.version, ordered)
    room = MAX_MESSAGE_BLOCKS - len(blocks) - 1  # the footer takes the last one
    room -= len(schedule)  # and the Schedule… button the one before it
    room -= len(controls)
    shown = 0
    for target in ordered:
        piece = _platform_blocks(app, target, used_up.get(target.platform, frozenset()))
        if len(piece) > room:
            break
        blocks.extend(piece)
        room -= len(piece)
        shown += 1
    if shown < len(ordered):
        footer.append(f"…and {len(ordered) - shown} more platforms: `/ship status {app.key}`")
    blocks.extend(schedule)
    blocks.extend(controls)
    blocks.append(
        {
            "type": "context",
            "block_id": "foot",
            "elements": [{"type": "mrkdwn", "text": line, "verbatim": True} for line in footer],
        }
    )
    states = " · ".join(f"{_display(t.platform)}: {policy.words(t.state)}" for t in ordered)
    text = escape(_clip(f"{title} — {states}" if states else title, 1000))
    return text, blocks


ROLLOUT = "miniship_rollout_"  # + pause | resume | advance | abort: a rollout's controls
_ROLLOUT_LOOK: dict[str, tuple[str, str | None, str]] = {
    # label, style, what the confirm dialog says ("" : none)
    "pause": ("Pause", None, ""),
    "resume": ("Resume", "primary", ""),
    "advance": (
        "Advance anyway",
        "danger",
        "The next step goes out now, without the health gate (past a halt: the override "
        "role, recorded).",
    ),
    "abort": ("Abort", "danger", "Users who have the new version go back to the live one."),
}


def rollout_controls(
    app: str,
    version: str,
    controls: Sequence[str],
    text: str = "",
    mention: str = "",
    *,
    platform: str = "",
) -> list[Block]:
    """A staged rollout's buttons (under ``text`` when given, escaped, after ``mention``):
    each runs ``rollout <app> <version> [<platform>] <control>`` — the rollout of that
    version on that platform only, so a button on an older card cannot steer a newer
    rollout; Advance anyway and Abort ask in Slack's own dialog."""
    elements: list[Block] = []
    for control in controls:
        label, style, consequence = _ROLLOUT_LOOK[control]
        button: Block = {
            "type": "button",
            "action_id": ROLLOUT + control,
            "text": {"type": "plain_text", "text": label},
            "value": button_value(app, version, platform),
        }
        if style:
            button["style"] = style
        if consequence:
            button["confirm"] = {
                "title": {"type": "plain_text", "text": _clip(f"{label}?", MAX_CONFIRM_TITLE)},
                "text": {
                    "type": "plain_text",
                    "text": _clip(f"{label}: rollout of {app} {version}. {consequence}", 300),
                },
                "confirm": {"type": "plain_text", "text": label},
                "deny": {"type": "plain_text", "text": "Cancel"},
                "style": style or "primary",
            }
        elements.append(button)
    if not elements:
        return [_said(text, mention)] if text else []
    actions: Block = {"type": "actions", "block_id": "rollout", "elements": elements}
    return [_said(text, mention), actions] if text else [actions]


SCHEDULE = "miniship_schedule"  # not a command button (those start with ship_): opens a modal


def schedulable(state: ReleaseState | str) -> bool:
    """Whether a publish of a release in ``state`` may be planned (the release policy)."""
    try:
        return policy.allows("schedule", state)
    except ValueError:  # a state this version does not know
        return False


def _schedule_block(app: AppEntry, version: str, targets: Sequence[TargetLine]) -> list[Block]:
    """The card's "Schedule…" button (a modal with date, time and platforms), when the
    release may be planned on at least one platform; else nothing."""
    if not any(schedulable(t.state) for t in targets):
        return []
    button: Block = {
        "type": "button",
        "action_id": SCHEDULE,
        "text": {"type": "plain_text", "text": "Schedule…"},
        "value": button_value(app.key, version, ""),
    }
    return [{"type": "actions", "block_id": "schedule", "elements": [button]}]


def _card_footer(
    created_by: str,
    targets: Sequence[TargetLine],
    emulated: frozenset[str],
    schedule_lines: Sequence[str],
) -> list[str]:
    first = f"Uploaded by {_person(created_by)}"
    fake = [_display(t.platform) for t in targets if t.platform in emulated]
    if fake:
        first += " · emulated platforms: " + escape(", ".join(fake))
    lines = [first]
    # a context block holds at most 10 elements; the first is taken, one may be the overflow
    lines.extend(_escape_clipped(line, 500) for line in list(schedule_lines)[:8] if line.strip())
    return lines


# -- App Home ---------------------------------------------------------------------------

HOME_ATTENTION = 10
"""Lines of the App Home's "needs attention" list (the rest: ``/ship status all``)."""
HOME_ROLLOUTS = 10
"""Lines of the App Home's "rollouts in progress" list (the rest: ``/ship rollout <app>
status``)."""
_HOME_FIXED = 9  # header, intro, summary, attention, its "more", rollouts, their "more",
# the rows' heading, "more"
HOME_ROW_APPS = (MAX_HOME_BLOCKS - _HOME_FIXED) // 2
"""No more apps than this get rows under a summary (each takes a divider and a section at
least): who builds rows needs to read no more, at 50 apps or at 5,000."""


@dataclass(frozen=True)
class HomeRow:
    """One app on one platform, as the App Home shows it."""

    app: AppEntry
    platform: str
    state: ReleaseState | None  # of the newest release on this platform
    version: str | None  # the newest release's version
    in_review: str | None
    live: str | None
    last_change: datetime | None
    emulated: bool
    holds: tuple[str, ...] = ()  # freezes and locks in force, as sentences
    spent: tuple[Quota, ...] = ()  # the platform's quotas used up: their buttons are not shown


@dataclass(frozen=True)
class HomeSummary:
    """What the App Home says above its rows: where the apps the viewer may view stand."""

    status: GroupStatus  # their newest releases counted, and what needs attention
    zone: ZoneInfo  # the times of the attention list
    owned: int  # how many of them the viewer owns (named in their release or publish role)
    hidden: int = 0  # app × platform rows of the viewer's apps not built (no room)
    rollouts: tuple[str, ...] = ()  # the staged rollouts under way of those apps, in words


def _home_row(row: HomeRow, may: Callable[[str, str], bool]) -> list[Block]:
    name = _escape_clipped(row.app.name, MAX_NAME)
    where = escape(_display(row.platform)) + (" (emulated)" if row.emulated else "")
    steps: list[str] = []
    if row.state is None or row.version is None:
        newest = "no releases yet"
    else:
        newest = f"{escape(row.version)} {escape(policy.words(row.state))}"
        steps = next_steps(row.state, row.platform)
    facts = [
        f"newest: {newest}",
        f"in review: {escape(row.in_review) if row.in_review else '—'}",
        f"live: {escape(row.live) if row.live else '—'}",
        f"last change: {local_time(row.last_change, row.app.timezone)}",
    ]
    used_up = [q for q in row.spent if q.action in steps]  # said only where it matters
    notes = [*(spent_words(q) for q in used_up), *row.holds]  # as the card's footer
    section: Block = {
        "type": "section",
        "block_id": f"h:{row.app.key}:{row.platform}",
        "text": {
            "type": "mrkdwn",
            "text": f"*{name}* · {where}\n"
            + " · ".join(facts)
            + "".join(f"\n{_escape_clipped(n, MAX_NOTE)}" for n in notes[:5]),
            "verbatim": True,
        },
    }
    buttons: list[Block] = []
    if row.state is not None and row.version is not None:
        spent = {q.action for q in used_up}
        buttons = [
            _button(verb, row.app, row.version, row.platform)
            for verb in steps
            if verb not in spent and may(row.app.key, verb)
        ]
    if len(buttons) == 1:
        section["accessory"] = buttons[0]
        return [section]
    if not buttons:
        return [section]
    actions: Block = {
        "type": "actions",
        "block_id": f"ha:{row.app.key}:{row.platform}",
        "elements": buttons,
    }
    return [section, actions]


def _context(block_id: str, text: str) -> Block:
    return {
        "type": "context",
        "block_id": block_id,
        "elements": [{"type": "mrkdwn", "text": text}],
    }


def _section(block_id: str, text: str) -> Block:
    return {
        "type": "section",
        "block_id": block_id,
        "text": {"type": "mrkdwn", "text": text, "verbatim": True},
    }


def _home_summary(summary: HomeSummary, rows: int) -> list[Block]:
    """The counts of every app the viewer may view, what needs attention, and the heading
    of the rows below (``rows``: how many there are)."""
    g = summary.status
    counts = [f"*{escape(_display(p))}*: {escape(said)}" for p, said in group_counts(g)]
    noun = "app" if g.apps == 1 else "apps"
    head = f"*{g.apps:,} {noun} you may view* — where each one's newest release stands"
    blocks = [_section("summary", _clip("\n".join([head, *counts]), MAX_SECTION))]
    if g.attention:
        shown = [
            "• " + _escape_clipped(attention_line(a, summary.zone), 250)
            for a in g.attention[:HOME_ATTENTION]
        ]
        head = f"*Needs attention ({len(g.attention):,})*"
        blocks.append(_section("attention", _clip("\n".join([head, *shown]), MAX_SECTION)))
        more = len(g.attention) - len(shown)
        if more > 0:
            blocks.append(
                _context("attention-more", f"…and {more:,} more — `/ship status all` lists them")
            )
    else:
        blocks.append(_section("attention", "*Nothing needs attention* ✓"))
    if summary.rollouts:
        shown = [f"• {_escape_clipped(r, 250)}" for r in summary.rollouts[:HOME_ROLLOUTS]]
        head = f"*Rollouts in progress ({len(summary.rollouts):,})*"
        blocks.append(_section("rollouts", _clip("\n".join([head, *shown]), MAX_SECTION)))
        more = len(summary.rollouts) - len(shown)
        if more > 0:
            blocks.append(
                _context(
                    "rollouts-more", f"…and {more:,} more — `/ship rollout <app> status` shows one"
                )
            )
    if summary.owned:
        mine = "app" if summary.owned == 1 else "apps"
        heading = (
            f"*Your {mine}* ({summary.owned:,}) — those naming you to release or publish "
            "them; buttons act on the newest version"
        )
    elif rows:
        heading = "*Every app* — buttons act on the newest version"
    else:
        heading = (
            "*Your apps* — none names you to release or publish it, so none is shown in "
            "detail here; `/ship status <app>` shows one app"
        )
    blocks.append(_section("yours", heading))
    return blocks


def home_view(
    rows: Sequence[HomeRow],
    *,
    may: Callable[[str, str], bool],
    summary: HomeSummary | None = None,
) -> Block:
    """The App Home: a summary of every app the viewer may view (when given), then a row
    per app × platform, with buttons the viewer may use — inside Slack's 100 blocks.

    ``may(app_key, verb)`` says whether the viewer may run ``verb`` ("submit",
    "publish", "withdraw") on the app; buttons they may not use are not shown, nor those
    whose platform quota is spent (``HomeRow.spent``).
    """
    blocks = _home_head()
    if not rows and (summary is None or not summary.status.apps):
        blocks.append(
            _section(
                "empty",
                "No apps to show. An admin adds them with `/ship app add …` "
                "or `/ship apps sync wechat`, or as `[apps.<name>]` sections in "
                "*miniship.toml*. If apps are configured, ask for the *view* role in "
                "their `roles`.",
            )
        )
        return {"type": "home", "blocks": blocks}
    hidden = 0
    if summary is not None:
        blocks += _home_summary(summary, len(rows))
        hidden = summary.hidden
    placed, shown = _fit_rows(rows, may, MAX_HOME_BLOCKS - len(blocks), more=hidden > 0)
    blocks += placed
    left = len(rows) - shown + hidden
    if left:
        blocks.append(
            _context(
                "more",
                f"…and {left:,} more app × platform {'row' if left == 1 else 'rows'} not "
                "shown here; `/ship status` shows all.",
            )
        )
    return {"type": "home", "blocks": blocks}


def home_fits(
    rows: Sequence[HomeRow],
    *,
    may: Callable[[str, str], bool],
    summary: HomeSummary,
    more: bool,
) -> bool:
    """Whether every one of ``rows`` fits on the Home under ``summary`` (``more``: other
    rows follow, and the line saying so needs room): who builds rows app by app stops
    building at the first app that does not."""
    room = MAX_HOME_BLOCKS - len(_home_head()) - len(_home_summary(summary, len(rows)))
    return _fit_rows(rows, may, room, more=more)[1] == len(rows)


def _home_head() -> list[Block]:
    return [
        {
            "type": "header",
            "block_id": "head",
            "text": {"type": "plain_text", "text": "miniship releases"},
        },
        _context(
            "intro",
            "Where the mini programs you may view stand, what needs attention, and your "
            "own apps per platform with their buttons; times in each app's time zone. "
            "`/ship help` lists every command.",
        ),
    ]


def _fit_rows(
    rows: Sequence[HomeRow], may: Callable[[str, str], bool], room: int, *, more: bool
) -> tuple[list[Block], int]:
    """The blocks of as many of ``rows`` as fit in ``room`` blocks, a divider between apps
    (and one left for the "more" line unless every row fits and ``more`` is False), and
    how many rows that is."""
    blocks: list[Block] = []
    previous: str | None = None
    for shown, row in enumerate(rows):
        piece = [] if row.app.key == previous else [{"type": "divider"}]
        piece += _home_row(row, may)
        last = shown == len(rows) - 1 and not more
        if len(blocks) + len(piece) + (0 if last else 1) > room:
            return blocks, shown
        blocks.extend(piece)
        previous = row.app.key
    return blocks, len(rows)
