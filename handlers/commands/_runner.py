"""One command line in, one reply out: the registry parses it, the role it declares is
checked, its module runs it. Every way in (console, Slack, scheduled jobs' buttons) calls
:meth:`Commands.handle`.

The console prints ``Reply.text``; Slack shows errors only to the person who typed
(``Reply.error``) and results on the card of the release the reply is ``about``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import platforms
from handlers import logs, render
from handlers.admin import Admin
from handlers.archives import Archives
from handlers.commands import _fleet, _registry
from handlers.commands._kit import Asked, Context, Question, Reply
from handlers.commands._registry import Parsed
from handlers.commands._words import Scope, UsageError
from handlers.config import AppEntry
from handlers.fleet import Fleets, ItemResult
from handlers.listeners import tell
from handlers.metrics import COMMANDS, command_outcome
from handlers.releases import Actor, CommandRefused, ReleaseService
from handlers.roles import Authorizer, Everyone
from handlers.rollouts.engine import Rollouts
from handlers.timed import TimedReleases
from handlers.tokens import TokenRoles
from handlers.work import STOPPING
from platforms.errors import ConfigError
from storage import ConfirmationRefused
from storage.models import utcnow

__all__ = ["Commands", "Ran"]


YES = re.compile(r"(?<!\S)--yes\s*$", re.IGNORECASE)  # the last word only
OVERRIDE = re.compile(r"(?<!\S)--override(?:\s+(?P<why>.*))?$", re.IGNORECASE | re.DOTALL)
CONFIRM_LIFETIME = timedelta(minutes=10)
APPROVAL_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True)
class Ran:
    """A command line that ran (not one that only asked first) and its reply: what
    :attr:`Commands.listeners` hear (the outgoing webhooks)."""

    actor: Actor
    line: str
    reply: Reply


class Commands:
    def __init__(
        self,
        service: ReleaseService,
        authorizer: Authorizer | None = None,
        *,
        timed: TimedReleases | None = None,
        admin: Admin | None = None,
        clock: Callable[[], datetime] = utcnow,
        confirm: Collection[str] = (),
        confirm_lifetime: timedelta = CONFIRM_LIFETIME,
        approval_lifetime: timedelta = APPROVAL_LIFETIME,
        fleets: Fleets | None = None,
        rollouts: Rollouts | None = None,
        archives: Archives | None = None,
    ) -> None:
        """``confirm`` names the commands that ask before they run (MINISHIP_CONFIRM);
        ``archives``: where the CI API unpacks the builds it is handed."""
        self.service = service
        self.archives = archives
        self.rollouts = rollouts
        # a token of the CI API is answered for from the token table, wherever it acts
        self.authorizer = TokenRoles(authorizer or Everyone(), service.store)
        self.timed = timed
        self.admin = admin or Admin(service, None)
        self.clock = clock
        self.confirming = frozenset(confirm)
        self.confirm_lifetime = confirm_lifetime
        self.approval_lifetime = approval_lifetime
        self.fleets = fleets or Fleets.of(service)
        self.listeners: list[Callable[[Ran], Awaitable[None]]] = []
        """Hear of each command line that ran about a release (``Reply.about``)."""
        asking = {c.name for c in _registry.commands() if c.confirm is not None}
        unknown = self.confirming - asking
        if unknown:
            raise ConfigError(
                f"MINISHIP_CONFIRM names {', '.join(sorted(unknown))}; the commands that can "
                f"ask first are {', '.join(sorted(asking))} (or none)"
            )

    def context(self, actor: Actor, channel: str | None = None, in_fleet: bool = False) -> Context:
        roles = {c.role for c in _registry.commands() if c.role}
        return Context(
            actor,
            channel,
            self.service,
            self.admin,
            self.authorizer,
            self.clock,
            self.timed,
            {role: _registry.doing(role) for role in roles},
            self._approved,
            in_fleet=in_fleet,
            fleet_runs=self.fleets,
            fleet_item=self.fleet_item,
            rollout_engine=self.rollouts,
            archives=self.archives,
        )

    async def _approved(self, requester: Actor, line: str, channel: str | None, by: str) -> Reply:
        """Run a request's line as its requester, once another person approved it."""
        return await self.handle(requester, line, channel, approved_by=by)

    async def handle(
        self,
        actor: Actor,
        text: str,
        channel: str | None = None,
        *,
        approved_by: str = "",
        takes_yes: bool = True,
        in_fleet: bool = False,
    ) -> Reply:
        """Run ``text`` for ``actor``; ``channel`` is where it was typed (Slack), if anywhere.

        A command that asks first answers with the question (``Reply.asked``) and runs
        when :meth:`answer` hears yes, or at once when the line says ``--yes`` — unless
        ``takes_yes`` is False (typed by a person in chat, where the question's buttons are
        the way to say yes: ``--yes`` is for scripts).

        A stopping process refuses new commands; one already running is let finish
        (:class:`handlers.work.Work`), as is the app a fleet run has started on.
        """
        work = self.service.work
        if work.stopping and not in_fleet:
            return Reply(STOPPING, error=True)
        word = text.split(maxsplit=1)[0].lower() if text.strip() else ""
        name = command.name if (command := _registry.find(word)) else "unknown"
        async with work.doing():
            with logs.about(command=name):
                reply = await self._handle(actor, text, channel, approved_by, takes_yes, in_fleet)
        COMMANDS.labels(name, command_outcome(reply.error, reply.asked is not None)).inc()
        if reply.about is not None and reply.asked is None and self.listeners:
            await tell(self.listeners, Ran(actor, text, reply), "a command listener failed")
        return reply

    async def _handle(
        self,
        actor: Actor,
        text: str,
        channel: str | None,
        approved_by: str,
        takes_yes: bool,
        in_fleet: bool,
    ) -> Reply:
        await self.admin.apps.refresh()  # apps another process added, changed or removed
        said_yes = bool(YES.search(text))
        line = YES.sub(" ", text).strip() if said_yes else text
        yes = said_yes and takes_yes
        # one app of a fleet run names its app: never read as a group again
        group = None if in_fleet else await _fleet.group_of(self.context(actor, channel), line)
        if isinstance(group, Reply):
            return group
        if group is not None:
            return await self._fleet(self.context(actor, channel), group, line, yes)
        try:
            parsed, why = _read(line)
        except UsageError as exc:
            return _misused(exc)
        try:
            context = self.context(actor, channel, in_fleet)
            context.override = why
            reply = await self._run(
                context, parsed, line, yes or bool(approved_by), why, approved_by
            )
        except CommandRefused as exc:
            return Reply(str(exc), error=True)
        if reply.asked is not None and said_yes and not yes:
            said = f"{reply.text}\n(`--yes` is for scripts; here, answer with the buttons.)"
            reply = dataclasses.replace(reply, text=said)
        return reply

    async def _run(
        self,
        context: Context,
        parsed: Parsed,
        line: str,
        yes: bool,
        why: str | None,
        approved_by: str,
    ) -> Reply:
        command, args = parsed.command, parsed.args
        scope = args.scope()
        stop = await self._stopped(context, parsed, scope, why)
        if isinstance(stop, Reply):
            return stop
        app = self.service.app(scope.app) if scope.app is not None else None
        second = command.two_person and args.second_person()
        if second and app is not None and app.approvals and not approved_by:
            return await self._request(context, command.name, scope, line)
        if not yes:
            question = await command.question(context, args)
            if question is not None and (question.always or command.name in self.confirming):
                return await self._ask(context, command.name, scope, line, question)
        if not stop:
            return await command.execute(context, args)
        # an override: recorded when the command runs (not when it is asked), and said
        await self._record(context.actor, command.name, scope, "override", stop)
        try:
            reply = await command.execute(context, args)
        except CommandRefused as exc:
            reply = Reply(str(exc), error=True)
        nothing = reply.error or reply.outcome in ("refused", "skipped")
        said = "Override recorded (nothing was done)" if nothing else "Override recorded"
        return dataclasses.replace(reply, text=f"{reply.text}\n⚠ {said}: {stop}")

    async def _stopped(
        self, context: Context, parsed: Parsed, scope: Scope, why: str | None
    ) -> Reply | str:
        """The refusal when the actor lacks the command's role on the app it names, or the
        app is frozen or locked and the command would change what is live; else "" — or,
        ``why`` given by someone with the override role, the override to record."""
        command = parsed.command
        if command.role == "admin":
            return await context.require_admin(command.name, scope.app) or ""
        if scope.app is None:
            return ""
        app = self.service.app(scope.app)
        if command.role is not None:
            refusal = await context.require(
                app, command.role, command.name, scope.version, scope.platform
            )
            if refusal is not None:
                return refusal
        if not (command.guarded and parsed.args.acts_now()):
            return ""
        holds = await self.service.freezes.active(app.key, app.timezone, self.clock())
        if not holds:
            return ""
        said = render.holds(holds, app.timezone)
        if why is None:
            await self._record(context.actor, command.name, scope, "refused", said)
            return Reply(
                f"Not done: {said}\nSomeone with the override role can act anyway: add "
                "`--override <why>` at the end.",
                error=True,
            )
        refusal = await context.require(app, "override", command.name, scope.version)
        return refusal if refusal is not None else f"{why} — {said}"

    async def _request(self, context: Context, name: str, scope: Scope, line: str) -> Reply:
        """The command becomes a request another person with the publish role approves."""
        assert scope.app is not None
        row = await self.service.store.add_request(
            scope.app,
            scope.version,
            name,
            line,
            context.channel,
            context.actor.id,
            self.approval_lifetime,
        )
        hours = round(self.approval_lifetime.total_seconds() / 3600)
        text = (
            f"✋ Request #{row.id}: `{line}` needs a second person ({scope.app} has "
            f"approvals = 1). Another person with the publish role approves it with "
            f"`approve {row.id}` (or `deny {row.id}`) within {hours} h; nothing runs until then."
        )
        await self._record(context.actor, name, scope, "requested", f"#{row.id}: {line}")
        about = (scope.app, scope.version) if scope.version else None
        return Reply(text, about=about, request=row.id)

    async def _fleet(self, context: Context, group: _fleet.Group, line: str, yes: bool) -> Reply:
        """A command over a group: checked, asked about, then one fleet run."""
        try:  # the words are the same for every app: checked once, as each app's line is
            _read(group.line(group.apps[0].key))
        except UsageError as exc:
            return _misused(exc)
        name = group.command.name
        refusal, quota = await _fleet.refusal(context, group)
        if refusal:
            await self._record(context.actor, name, Scope(), "refused", refusal)
            return Reply(refusal, error=True)
        if not yes:
            return await self._ask(context, name, Scope(), line, _fleet.question(group, quota))
        run = await self.fleets.start(
            context.actor, line, group.items(), context.channel, self.fleet_item
        )
        return Reply(
            f"Fleet run #{run.id}: `{line}` on {len(group.apps)} apps. `fleet {run.id}` shows "
            f"how far it got; `fleet {run.id} cancel` stops it.",
            fleet=run.id,
        )

    async def fleet_item(self, actor: Actor, line: str, channel: str | None) -> ItemResult:
        """One app of a fleet run: its line, as its starter (the run was confirmed)."""
        reply = await self.handle(actor, f"{line} --yes", channel, in_fleet=True)
        return _fleet.item_result(reply)

    async def resume_fleets(self) -> list[int]:
        """Carry on with the fleet runs a stop left unfinished (at start)."""
        return await self.fleets.resume(self.fleet_item)

    async def take_up_idle_fleets(self) -> list[int]:
        """Drive the fleet runs whose process stopped (the leader, at each look)."""
        return await self.fleets.take_up_idle(self.fleet_item)

    async def _ask(
        self, context: Context, name: str, scope: Scope, line: str, question: Question
    ) -> Reply:
        row, token = await self.service.store.ask_confirmation(
            context.actor.id, line, context.channel, question.text, self.confirm_lifetime
        )
        await self._record(context.actor, name, scope, "asked", question.text)
        return Reply(question.text, private=True, asked=Asked(token, row.expires_at))

    async def answer(self, actor: Actor, token: str, yes: bool) -> Reply:
        """The requester's Confirm (``yes``) or Cancel: run the command, or say nothing ran."""
        try:
            row = await self.service.store.answer_confirmation(
                token, actor.id, "confirmed" if yes else "cancelled"
            )
        except ConfirmationRefused as exc:
            return Reply(f"{exc}; nothing was done.", error=True)
        return await self.answered(actor, row.command, row.channel, yes)

    async def answered(self, actor: Actor, line: str, channel: str | None, yes: bool) -> Reply:
        """Record the answer to ``line``'s question; run it on yes."""
        try:
            parsed = _read(line)[0]
            name, scope = parsed.command.name, parsed.args.scope()
        except UsageError:  # the line was parsed when asked; a later miniship may differ
            name, scope = line.split()[0], Scope()
        await self._record(actor, name, scope, "confirmed" if yes else "cancelled", line)
        if not yes:
            return Reply(f"Cancelled: `{line}` was not run; nothing was done.", private=True)
        return await self.handle(actor, f"{line} --yes", channel)

    async def _record(
        self, actor: Actor, action: str, scope: Scope, outcome: str, message: str
    ) -> None:
        await self.service.store.record(
            actor=actor.id,
            action=action,
            outcome=outcome,
            app=scope.app,
            version=scope.version,
            platform=scope.platform,
            message=message,
        )

    async def may(self, actor: Actor, app: AppEntry, role: str) -> bool:
        return await self.authorizer.allows(actor, app, role)


def _read(line: str) -> tuple[Parsed, str | None]:
    """The command ``line`` is, and the why of its ``--override`` (if it says one).

    Raises:
        UsageError: the line is not a command it can read.
    """
    words, why = _override(line) if _guarded(line) else (line, None)
    return _registry.parse(words, platforms.names()), why


def _misused(exc: UsageError) -> Reply:
    """What a line the command cannot read gets: why, and the command's usage."""
    usage = f"\nUsage: `{exc.usage}`" if exc.usage else ""
    return Reply(f"{exc.message}{usage}", error=True)


def _guarded(line: str) -> bool:
    """Whether the line's command is one a freeze stops (only those read ``--override``;
    elsewhere it may be part of notes or a reason)."""
    words = line.split()
    if words and words[0].lower() == "/ship":
        words = words[1:]
    command = _registry.find(words[0].lower()) if words else None
    return command is not None and command.guarded


def _override(line: str) -> tuple[str, str | None]:
    """The line without ``--override <why>`` (the last thing on it), and the why."""
    found = OVERRIDE.search(line)
    if found is None:
        return line, None
    why = " ".join((found.group("why") or "").split())
    if not why:
        raise UsageError("say why after --override, e.g. `--override fix for the checkout crash`")
    return line[: found.start()].rstrip(), why
