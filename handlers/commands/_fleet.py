"""What the runner does with a command that names a group instead of an app:
``submit @shops 1.3.0`` or ``publish all 1.3.0 at 10:00`` becomes one fleet run
(:mod:`handlers.fleet`) of the single-app lines, asked about first."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import platforms
from handlers import policy
from handlers.commands import _registry
from handlers.commands._kit import Command, Context, Question, Reply
from handlers.commands._words import UsageError
from handlers.config import AppEntry
from handlers.fleet import ItemResult
from handlers.releases import CommandRefused
from platforms.errors import ConfigError, PlatformError
from storage import ItemState, RolloutState

__all__ = ["Group", "group_of", "item_result", "question", "quota_refusal", "refusal"]

MESSAGE_KEPT = 300  # characters of an app's result kept with its fleet item


@dataclass(frozen=True)
class Group:
    """A command line naming ``@tag`` or ``all``, and the apps it stands for."""

    command: Command[Any]
    target: str  # "@shops" or "all"
    rest: str  # the line after the target, as typed
    apps: list[AppEntry]
    args: Any = None  # the line's arguments, read as the command reads them (None: unread)

    def line(self, app: str) -> str:
        return f"{self.command.name} {app} {self.rest}".strip()

    def items(self) -> list[tuple[str, str]]:
        return [(a.key, self.line(a.key)) for a in self.apps]


async def group_of(context: Context, text: str) -> Group | Reply | None:
    """The group ``text`` names in its app's place, for a command that runs over groups:
    the apps in it the actor has the command's role for. None when it names an app (or
    the command takes no group); the refusal when that leaves no app."""
    words = re.sub(r"^\s*/ship\b", "", text, flags=re.IGNORECASE).split(maxsplit=2)
    if len(words) < 2 or not (words[1].startswith("@") or words[1].lower() == "all"):
        return None
    command = _registry.find(words[0].lower())
    if command is None or not command.fleet:
        return None
    target, rest = words[1].lower(), words[2] if len(words) > 2 else ""
    try:  # the platforms the line names, read as the command reads them (not from notes)
        parsed = _registry.parse(f"{command.name} x {without_override(rest)}", platforms.names())
        named = set(getattr(parsed.args, "platforms", ()))
        not_over_groups = parsed.args.over_group()
        args: Any = parsed.args
    except UsageError:
        named = set()  # the runner reports the usage error on the first app's line
        not_over_groups = None
        args = None
    if not_over_groups:
        return Reply(not_over_groups, True)
    apps = [
        a
        for a in context.service.config.apps.values()
        if (target == "all" or target[1:] in a.tags)
        and (not named or named & set(a.platforms))
        and await context.may(a, command.role or "view")
    ]
    if not apps:
        role = command.role or "view"
        which = f"no app you have the {role} role for"
        which += "" if target == "all" else f" is tagged {target}"
        on = f" on {', '.join(sorted(named))}" if named else ""
        return Reply(f"Nothing to do: {which}{on}. `apps` lists the apps and their tags.", True)
    return Group(command, target, rest, apps, args)


def without_override(rest: str) -> str:
    """The line without a closing ``--override <why>`` (each app's line keeps it)."""
    return re.split(r"(?<!\S)--override(?:\s|$)", rest, maxsplit=1)[0].strip()


def question(group: Group, quota: str) -> Question:
    """ "Submit 1.3.0 on 132 apps (@shops: WeChat 132, Alipay 20)? …" — always asked."""
    per = Counter(p for a in group.apps for p in a.platforms)
    counts = ", ".join(f"{platforms.platform_class(p).display_name} {n}" for p, n in per.items())
    rollouts = (
        " Each app's rollout is gated on its own figures; `fleet <id> cancel` only stops "
        f"starting more, `rollout {group.target} <version> pause | resume | abort` steers "
        "those under way."
        if group.command.name == "rollout"
        else ""
    )
    return Question(
        f"Run `{group.line(group.target)}` on {len(group.apps)} apps ({counts})?{quota} It "
        "runs as one fleet run: `fleet` shows how far it got, `fleet <id> cancel` stops "
        f"it.{rollouts}",
        always=True,
    )


def overrides(rest: str) -> bool:
    """Whether the line closes with ``--override <why>``."""
    return without_override(rest) != rest.strip()


async def refusal(context: Context, group: Group) -> tuple[str, str]:
    """(refusal, words for the question) of a command over a group, checked before it is
    asked and again before it starts: a WeChat submission over more apps than the audit
    quota has left; a rollout control no app's rollout would take."""
    said, quota = await quota_refusal(context, group)
    if said:
        return said, quota
    said, rollouts = await rollouts_refusal(context, group)
    return said, quota + rollouts


async def rollouts_refusal(context: Context, group: Group) -> tuple[str, str]:
    """``rollout @tag <version> pause | resume | abort``: refused when no app of the group
    has a rollout of that version that can take the control (nothing to start); else what
    the question adds — the apps skipped, and the halted rollouts a resume leaves alone
    unless the line says ``--override <why>``."""
    args = group.args
    control = getattr(args, "control", "")
    if group.command.name != "rollout" or not control or context.rollout_engine is None:
        return "", ""
    platform = args.platforms[0] if args.platforms else None
    overriding = overrides(group.rest)
    taking: list[str] = []
    halted: list[str] = []
    standing: Counter[str] = Counter()
    for app in group.apps:
        try:
            rollout = await context.rollouts.current(app.key, platform, args.version)
        except CommandRefused:
            standing["none under way"] += 1
            continue
        if not policy.rollout_allows(control, rollout.state) and not policy.rollout_busy(
            rollout.state
        ):  # one taking its step waits for it (the item is tried again), not skipped
            standing[policy.rollout_words(rollout.state)] += 1
            continue
        if control == "resume" and rollout.state == RolloutState.HALTED:
            halted.append(app.key)
            if not overriding:
                continue
        taking.append(app.key)
    where = f"{group.target}" + (f" on {context.service.display(platform)}" if platform else "")
    if not taking and not halted:
        if set(standing) == {"none under way"}:
            return f"Nothing started: no rollout of {args.version} is under way in {where}.", ""
        states = ", ".join(f"{n} {w}" for w, n in standing.items())
        return (
            f"Nothing started: no rollout of {args.version} in {where} can {control} now "
            f"({states}).",
            "",
        )
    if not taking:
        return (
            f"Nothing started: the rollouts of {args.version} in {where} that could resume "
            f"were halted on a regression ({_some(halted)}); resuming puts the version that "
            f"regressed back before users. Resume one with `rollout <app> {args.version} "
            "resume`, or all of them with `--override <why>` at the end of the line.",
            "",
        )
    words = ""
    if halted and overriding:
        words += (
            f" Halted on a regression, resumed too (--override): {_some(halted)} — the "
            "version that regressed goes back before their users."
        )
    elif halted:
        words += (
            f" Halted on a regression, skipped (not resumed): {_some(halted)}; add "
            "`--override <why>` at the end to resume them too."
        )
    idle = len(group.apps) - len(taking) - (0 if overriding else len(halted))
    if idle:
        words += (
            f" {idle} {'app has' if idle == 1 else 'apps have'} no rollout to {control}: skipped."
        )
    return "", words


def _some(keys: list[str], shown: int = 5) -> str:
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


async def quota_refusal(context: Context, group: Group) -> tuple[str, str]:
    """(refusal, words on the quota): a WeChat submission over more apps than the
    third-party platform's monthly audit quota has left is refused, never half-spent."""
    if group.command.name != "submit":
        return "", ""
    wechat = [a for a in group.apps if "wechat" in a.platforms]
    if not wechat or "wechat" not in context.service.adapters:
        return "", ""
    try:
        quotas = await context.service.quotas(wechat[0], "wechat")
    except (PlatformError, ConfigError):
        return "", " (WeChat's audit quota could not be read; it refuses once spent)"
    left = next((q.remaining for q in quotas if q.action == "submit"), None)
    if left is None:
        return "", ""
    if len(wechat) > left:
        return (
            f"Not started: {len(wechat)} WeChat submissions, but the platform's audit quota "
            f"has {left} left this month. Submit a smaller group (tag part of the apps) or "
            "ask WeChat for more quota; nothing was submitted.",
            "",
        )
    return "", f" WeChat's audit quota: {left} left this month, {len(wechat)} used by this."


def item_result(reply: Reply) -> ItemResult:
    """How one app's command went, from its reply."""
    said = " ".join(line.strip() for line in reply.text.splitlines()[1:] or [reply.text])
    said = said[:MESSAGE_KEPT] or reply.text[:MESSAGE_KEPT]
    if reply.request is not None:
        return ItemResult(ItemState.WAITING, said)
    if reply.error or reply.outcome in ("refused", "failed"):
        return ItemResult(ItemState.FAILED, said, transient=reply.transient)
    if reply.outcome == "skipped":
        return ItemResult(ItemState.SKIPPED, said)
    return ItemResult(ItemState.OK, said)
