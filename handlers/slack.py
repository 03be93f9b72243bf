"""Slack as a way in: ``/ship``, ``@miniship``, card buttons and the App Home.

Every command goes through the same :class:`~handlers.commands.Commands` as the console.
Slack's 3-second limit is met by acknowledging first and working after. What people see:

- errors, refusals and usage help only for the person who typed (ephemeral);
- an action's result on the release's card: one card per release in the app's channel
  (or where the command was typed), updated in place with ``chat.update``, with a short
  reply in its thread for each step — and review decisions the watcher finds land there too;
- pictures that come with a result (the trial version's QR code after ``upload`` and
  ``qr``) as files in the card's thread (``files_upload_v2``, needs the ``files:write``
  scope), else in the channel where the command was typed; a picture Slack refuses is
  explained to the person who typed, and the result itself still goes out;
- private replies (an authorization link) for the person who typed only;
- a mini program's completed authorization (``connect``) in the app's channel;
- status, history, apps and help for the asker only;
- timed releases: the card lists what is planned; reminders, the outcome at fire time (or
  a missed release, with a "Publish now" button) and long-review nudges land in the
  card's thread; each channel's daily digest is posted in the channel.

Retried event deliveries are dropped by their ``event_id`` (first insert wins in the
database); a double click runs once because the second click finds the release already
moved on and is refused without calling the platform.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import re
from collections.abc import Callable, Collection, Iterable
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from handlers import cards, policy, render, schedule_modal, slack_guard, views
from handlers.admin import Admin
from handlers.commands import Commands, Picture, Reply, action_id, button_command, find, status
from handlers.config import EVERYONE, AppEntry, ChannelEntry
from handlers.fleet import Progress
from handlers.releases import Actor, Change, ReleaseService
from handlers.roles import RoleCheck
from handlers.rollouts import words
from handlers.timed import Notice, TimedReleases
from platforms.base import Authorization, Quota
from storage import ACTIVE_ROLLOUT, ReleaseState
from storage.models import Release, utcnow

__all__ = ["SlackBinding", "SlackSettings", "build_app", "make_binding", "unescape"]

log = logging.getLogger(__name__)

MENTION = re.compile(r"^\s*<@[A-Z0-9]+>[:,]?\s*")
CARD_GONE = frozenset({"message_not_found", "channel_not_found", "is_archived"})


class Answer(Protocol):
    """How a reply reaches people: ``public`` in the channel, else only to who asked."""

    async def __call__(
        self, text: str, public: bool, blocks: list[cards.Block] | None = None
    ) -> None: ...


# where a reply's pictures go: (channel, thread ts or None)
Place = tuple[str, str | None]


class SlackSettings(BaseSettings):
    """Slack credentials and where to listen. SLACK_BOT_TOKEN is required."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None  # xapp-…: Socket Mode
    slack_signing_secret: SecretStr | None = None  # HTTP mode
    slack_api_url: str = "https://slack.com/api/"
    port: int = Field(3000, ge=1, le=65535)


class SlackBinding:
    """Runs commands for Slack users and keeps each release's card up to date."""

    def __init__(self, commands: Commands, client: AsyncWebClient) -> None:
        self.commands = commands
        self.service = commands.service
        self.store = commands.service.store
        self.client = client
        self._cards: dict[int, asyncio.Lock] = {}  # one card per release, even when racing

    # -- commands -----------------------------------------------------------------------

    async def run(
        self, user: str, text: str, channel: str | None, answer: Answer, *, typed: bool = False
    ) -> None:
        """Run one command typed (``typed``: ``--yes`` does not skip a question — a person
        in Slack confirms with the question's buttons) or clicked by ``user`` in
        ``channel`` (a click confirmed in Slack's own dialog says ``--yes``)."""
        try:
            reply = await self.commands.handle(
                Actor(user), unescape(text), channel, takes_yes=not typed
            )
            await self._deliver(reply, channel, answer)
            await self._hand_over(user, reply, answer)
        except Exception:
            log.exception("command failed: %s", text)
            with contextlib.suppress(Exception):  # Slack itself may be what failed
                await answer(
                    "Something went wrong running that; its outcome is unknown, so check "
                    "`/ship status`. Details are in miniship's log.",
                    False,
                )

    async def confirmed(
        self, user: str, token: str, yes: bool, channel: str | None, answer: Answer
    ) -> None:
        """The requester clicked Confirm (``yes``) or Cancel under a question."""
        try:
            reply = await self.commands.answer(Actor(user), token, yes)
            await self._deliver(reply, channel, answer)
        except Exception:
            log.exception("confirmed command failed")
            with contextlib.suppress(Exception):
                await answer(
                    "Something went wrong running that; its outcome is unknown, so check "
                    "`/ship status`. Details are in miniship's log.",
                    False,
                )

    async def relay(self, reply: Reply) -> None:
        """A command run elsewhere — a CI API call, as ``token:<name>``: its release card
        brought up to date and its reply said in the card's thread, as a typed command's
        is. There is nobody to answer privately: what would be is logged."""
        await self._deliver(reply, None, _logged)

    async def _hand_over(self, user: str, reply: Reply, answer: Answer) -> None:
        """The reply's files (a history export) to the person who asked, in their DM with
        the bot: Slack has no private files in a channel (needs ``im:write``)."""
        for attachment in reply.files:
            try:
                opened = await self.client.conversations_open(users=user)
                await self.client.files_upload_v2(
                    channel=str(opened["channel"]["id"]),
                    content=attachment.content,
                    filename=attachment.filename,
                    title=attachment.title,
                    initial_comment=f"{attachment.title}, as you asked",
                )
            except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("could not hand %s to %s: %s", attachment.filename, user, exc)
                await answer(
                    f"I could not send you {attachment.filename}: {_upload_problem(exc)}. "
                    "The `im:write` and `files:write` scopes are needed.",
                    False,
                )

    async def _deliver(self, reply: Reply, channel: str | None, answer: Answer) -> None:
        if reply.asked is not None:
            await answer(
                reply.text,
                False,
                cards.confirmation(reply.text, reply.asked.token, reply.asked.expires_at),
            )
        elif reply.request is not None and reply.about is None:  # no card: in the channel
            await answer(reply.text, True, cards.approval(reply.text, reply.request))
        elif reply.error or reply.private or reply.about is None:
            await answer(cards.escape(reply.text) if reply.verbatim else reply.text, False)
        else:
            await self._after_action(reply, channel, answer)

    async def _after_action(self, reply: Reply, channel: str | None, answer: Answer) -> None:
        assert reply.about is not None
        release = await self.store.release(*reply.about)
        if release is None:  # nothing was created: say it where it was typed
            await answer(_qr_hint(reply, _place(None, channel)), True)
            await self._post_pictures(reply, _place(None, channel), answer)
            return
        app = self.service.app(reply.about[0])
        retry = cards.retry(reply.text, app, reply.about[1], reply.action, reply.unfinished)
        if reply.request is not None:  # a second person approves it in the thread
            retry = cards.approval(reply.text, reply.request)
        try:
            release = await self.show(
                release, channel, thread=reply.text, thread_blocks=retry or None
            )
        except SlackApiError as exc:
            await answer(_qr_hint(reply, _place(release, channel)), True)
            await answer(f"I could not post the release card: {_slack_problem(exc)}", False)
            await self._post_pictures(reply, _place(release, channel), answer)
            return
        if release.card_ts is None:  # nothing on any platform yet, or no channel
            await answer(_qr_hint(reply, _place(release, channel)), True)
        elif release.card_channel != channel:
            await answer(
                f"{reply.text}\n(see the release card in <#{release.card_channel}>)", False
            )
        await self._post_pictures(reply, _place(release, channel), answer)

    async def _post_pictures(self, reply: Reply, place: Place | None, answer: Answer) -> None:
        """Each of the reply's pictures as a file at ``place``; the person who typed hears
        (privately) of those Slack refused."""
        if place is None or not reply.pictures:
            return  # nowhere to post: the text said how to get them
        channel, thread_ts = place
        failed: dict[str, list[str]] = {}  # why → the titles of the pictures it stopped
        for picture in reply.pictures:
            try:
                await self._post_picture(picture, channel, thread_ts)
            except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("could not post %s in %s: %s", picture.filename, channel, exc)
                failed.setdefault(_upload_problem(exc), []).append(picture.title)
        if failed:
            assert reply.about is not None
            app, version = reply.about
            count = sum(map(len, failed.values()))
            which = "this picture" if count == 1 else "these pictures"
            lines = "\n".join(f"• {', '.join(titles)}: {why}" for why, titles in failed.items())
            await answer(
                f"The command went ahead, but I could not post {which} in Slack:\n{lines}\n"
                f"Once that is fixed, `/ship qr {app} {version}` posts the trial QR code again.",
                False,
            )

    async def _post_picture(self, picture: Picture, channel: str, thread_ts: str | None) -> None:
        code = picture.code
        comment = picture.caption or f"Scan to open {picture.title}"
        if code.url:
            comment += f" (or open <{code.url}|the image>)"
        if not code.image:  # the platform gave only an address for it
            if code.url:
                await self.client.chat_postMessage(
                    channel=channel, thread_ts=thread_ts, text=comment
                )
            return
        await self.client.files_upload_v2(
            file=code.image,
            filename=picture.filename,
            title=picture.title,
            alt_txt=f"QR code: {picture.title}",
            channel=channel,
            thread_ts=thread_ts,
            initial_comment=comment,
        )

    async def click(
        self, user: str, action: dict[str, Any], channel: str | None, answer: Answer
    ) -> None:
        """A card button: the command it names, on the release its value names."""
        command = button_command(str(action.get("action_id", "")))
        value = str(action.get("value", ""))
        try:
            app_key, version, platform = cards.parse_button_value(value)
        except ValueError:
            command = None
        if command is None:
            await answer("That button is not one miniship made; nothing was done.", False)
            return
        line = f"{command.name} {app_key} {platform} {version}"
        if cards.overrides(value):  # "Publish now" on a release a freeze held
            line += " --override clicked Publish now on a release held by a freeze"
        if command.button is not None and command.button.confirm:
            line += " --yes"  # confirmed in Slack's own dialog; the last word, as always
        await self.run(user, line, channel, answer)

    # -- the release card ---------------------------------------------------------------

    async def _spent(
        self,
        app: AppEntry,
        states: Iterable[tuple[str, ReleaseState | str]],
        shown: Callable[[str], bool] = lambda verb: True,
    ) -> dict[str, list[Quota]]:
        """Per (platform, state) of ``app``: its spent quotas, where a step offered from
        that state (and ``shown``) is one the platform limits — the release card and the
        App Home leave those buttons out. Each platform's quotas are read at most once a
        minute (``ReleaseService.spent_quotas``)."""
        return {
            platform: await self.service.spent_quotas(app, platform)
            for platform, state in states
            if {v for v in cards.next_steps(state, platform) if shown(v)}
            & self.service.quota_actions(platform)
        }

    async def show(
        self,
        release: Release,
        channel: str | None,
        *,
        thread: str = "",
        thread_blocks: list[dict[str, Any]] | None = None,
    ) -> Release:
        """Post or update the release's card, then reply in its thread.

        Returns the release as stored after it (``card_ts`` stays None when there is
        nothing to show yet or nowhere to show it). A card that was deleted, or whose
        channel was archived, is replaced by a new one.
        """
        assert release.id is not None
        app = self.service.app(release.app_key)
        # asked before the card's lock: a slow platform holds up no other update
        spent = await self._spent(
            app, [(t.platform, t.state) for t in await self.store.targets(release.id)]
        )
        async with self._cards.setdefault(release.id, asyncio.Lock()):
            release = await self.store.release(release.app_key, release.version) or release
            app = self.service.app(release.app_key)
            targets = await self.store.targets(release.id or 0)
            if not targets:
                return release
            planned = await self.store.timed_actions(release_id=release.id)
            holds = await self.service.freezes.active(app.key, app.timezone, utcnow())
            waiting = [
                f"✋ request #{r.id}: {r.action} asked by {r.requested_by}, waiting for a "
                f"second person (`approve {r.id}`)"
                for r in await self.store.requests([app.key], utcnow())
                if r.version == release.version
            ]
            rollouts = await self.store.rollouts(release_id=release.id)
            engine = self.commands.rollouts
            text, blocks = cards.release_card(
                views.card(app, release, targets),
                emulated=self.service.emulated,
                spent=spent,
                schedule_lines=[
                    *(render.hold(h, app.timezone) for h in holds),
                    *waiting,
                    *("⏰ " + render.timed_line(views.timed(a), app.timezone) for a in planned),
                    *(engine.lines_for(rollouts, app) if engine is not None else ()),
                ],
                controls=[
                    block
                    for r in rollouts[:1]  # the newest: at most one is under way
                    for block in cards.rollout_controls(
                        app.key,
                        release.version,
                        policy.rollout_controls(r.state),
                        platform=r.platform,
                    )
                ],
            )
            if release.card_channel and release.card_ts:
                try:
                    await self.client.chat_update(
                        channel=release.card_channel, ts=release.card_ts, text=text, blocks=blocks
                    )
                except SlackApiError as exc:
                    if exc.response.get("error") not in CARD_GONE:
                        raise
                    log.warning(
                        "the card of %s %s is gone; posting a new one", app.key, release.version
                    )
                    release = await self._post_card(release, app.channel or channel, text, blocks)
            else:
                release = await self._post_card(release, app.channel or channel, text, blocks)
        if thread and release.card_channel and release.card_ts:
            await self.client.chat_postMessage(
                channel=release.card_channel,
                thread_ts=release.card_ts,
                text=thread,
                blocks=thread_blocks,
            )
        return release

    async def _post_card(
        self, release: Release, channel: str | None, text: str, blocks: list[dict[str, Any]]
    ) -> Release:
        if channel is None:
            return release
        posted = await self.client.chat_postMessage(channel=channel, text=text, blocks=blocks)
        return await self.store.set_card(release, str(posted["channel"]), str(posted["ts"]))

    async def on_change(self, change: Change) -> None:
        """A review decision (or an outside change): update the card, say it in the thread."""
        release = await self.store.release(change.app.key, change.version)
        if release is None or not release.card_ts:
            return
        text = render.change(change)
        pictures = Picture.evidence(change, await self.service.evidence(change))
        try:
            release = await self.show(release, None, thread=text)
            if pictures:
                shown = Reply(text, about=(change.app.key, change.version), pictures=pictures)
                await self._post_pictures(shown, _place(release, None), _logged)
        except SlackApiError as exc:
            log.warning(
                "could not show %s %s's review change on its card: %s",
                change.app.key,
                change.version,
                _slack_problem(exc),
            )

    # -- timed releases (handlers.timed.Announcer) -----------------------------------------

    async def notice(self, notice: Notice) -> None:
        """Say ``notice`` in the release's thread, with the card brought up to date."""
        release = await self.store.release(notice.app.key, notice.version)
        if release is None:
            return
        blocks = None
        # the text may carry what a platform reported (a JS error's message): shown as-is;
        # the owners' mentions are the only mrkdwn made here
        mention = "".join(cards.mention(m) + " " for m in notice.mention)
        text = mention + cards.escape(notice.text)
        if notice.publish_now is not None:
            blocks = cards.publish_now(
                notice.app, notice.version, notice.publish_now, notice.text, bool(notice.override)
            )
        elif notice.controls:
            blocks = cards.rollout_controls(
                notice.app.key,
                notice.version,
                notice.controls,
                notice.text,
                mention,
                platform=notice.platform,
            )
        try:
            await self.show(release, notice.channel, thread=text, thread_blocks=blocks)
        except SlackApiError as exc:
            log.warning(
                "could not post on %s %s's card: %s",
                notice.app.key,
                notice.version,
                _slack_problem(exc),
            )

    async def digest(self, channel: ChannelEntry, text: str) -> None:
        if not channel.id:
            return  # apps without a channel: nowhere to post
        try:
            await self.client.chat_postMessage(channel=channel.id, text=text)
        except SlackApiError as exc:
            log.warning("could not post the digest in %s: %s", channel.id, _slack_problem(exc))

    # -- authorizations (handlers.admin.Admin.listeners) ----------------------------------

    async def on_fleet(self, progress: Progress) -> None:
        """A fleet run's card, in the channel it was started from, updated in place (the
        runner says at most every few seconds; a rollout the run started, each time it
        moves); its failures and skipped apps (each with why) go to the card's thread at the
        end. What apps and platforms said is shown as-is (escaped)."""
        run = progress.run
        if run.id is None:
            return
        text = cards.escape(render.fleet_bar(progress))
        try:
            if run.card_channel and run.card_ts:
                await self.client.chat_update(channel=run.card_channel, ts=run.card_ts, text=text)
            elif run.channel:
                posted = await self.client.chat_postMessage(channel=run.channel, text=text)
                await self.store.set_fleet_card(run.id, str(posted["channel"]), str(posted["ts"]))
                run.card_channel, run.card_ts = str(posted["channel"]), str(posted["ts"])
            said = progress.failures or progress.skipped  # which apps, and why
            if progress.final and said and run.card_ts:  # once, at its end
                await self.client.chat_postMessage(
                    channel=run.card_channel or run.channel or "",
                    thread_ts=run.card_ts,
                    text=cards.escape(render.fleet(progress, shown=50)),
                )
        except SlackApiError as exc:
            log.warning("could not show fleet run #%s: %s", run.id, _slack_problem(exc))

    async def on_app_news(self, text: str) -> None:
        """An app a platform added or retired on its own: said in the admin channel."""
        channel = self.service.config.admin_channel
        if channel is None:
            log.warning("%s (set admin_channel in miniship.toml to hear it in Slack)", text)
            return
        try:
            await self.client.chat_postMessage(channel=channel, text=text)
        except SlackApiError as exc:
            log.warning("could not post in the admin channel: %s", _slack_problem(exc))

    async def on_grant(self, grant: Authorization) -> None:
        """A mini program completed its authorization: say so in the app's channel."""
        app = self.service.config.apps.get(grant.app or "")
        if app is None or not app.channel:
            return  # an app miniship does not know, or one without a channel
        where = f" on {self.service.display(grant.platform)}" if grant.platform else ""
        if grant.authorized:
            granted = ", ".join(grant.permission_names) or "no permission sets"
            text = f"{app.key} authorized miniship{where}: {granted}"
        else:
            text = f"{app.key} did not authorize miniship{where}"
        try:
            await self.client.chat_postMessage(channel=app.channel, text=text)
        except SlackApiError as exc:
            log.warning(
                "could not post %s's authorization in %s: %s",
                app.key,
                app.channel,
                _slack_problem(exc),
            )

    # -- App Home -----------------------------------------------------------------------

    async def home(self, user: str) -> dict[str, Any]:
        """The App Home of ``user``: every app they may view counted per platform and
        state, what needs attention, then rows with buttons for their own apps (for every
        app when they own none and there are few).

        The summary is read in the same few queries at 10 apps or 1,000; only the rows
        cost more (a query per app, and the quotas of the buttons they offer, read at most
        once a minute), and at most :data:`cards.HOME_ROW_APPS` apps get rows.
        """
        actor = Actor(user)
        config = self.service.config
        visible = [a for a in config.apps.values() if await self.commands.may(actor, a, "view")]
        if not visible:
            return cards.home_view([], may=lambda app_key, verb: False)
        now = self.commands.clock()
        group = await status.group(self.service, "all", visible, now, self.commands.timed)
        owned = [a for a in visible if await self._owns(actor, a)]
        needing = {a.line.app_key for a in group.attention}
        candidates = sorted(  # what needs attention first
            owned or (visible if len(visible) <= status.DETAILED else []),
            key=lambda a: (a.key not in needing, a.key),
        )
        detailed = candidates[: cards.HOME_ROW_APPS]  # more never fit
        seen = {a.key: a for a in visible}
        going = [
            words.home_line(r, seen[r.app_key].timezone)
            for r in sorted(  # halted first: they wait for a person
                await self.store.rollouts(states=ACTIVE_ROLLOUT),
                key=lambda r: (
                    policy.rollout_standing(r.state, r.step, held=False) != "halted",
                    r.app_key,
                ),
            )
            if r.app_key in seen
        ]
        summary = cards.HomeSummary(
            group, config.zone_of(visible), owned=len(owned), rollouts=tuple(going)
        )
        allowed: dict[str, set[str]] = {}

        def may(app_key: str, verb: str) -> bool:
            return verb in allowed.get(app_key, ())

        holds = await self.service.freezes.active_of({a.key: a.timezone for a in detailed}, now)
        rows: list[cards.HomeRow] = []
        done = 0
        for app in detailed:  # until the first app whose rows do not fit
            allowed[app.key] = {
                verb
                for verb in cards.button_verbs()
                if await self.commands.may(actor, app, _role(verb))
            }
            held = tuple(render.hold(h, app.timezone) for h in holds[app.key])
            mine = await self._home_rows(app, allowed[app.key], held)
            more = done + 1 < len(candidates)
            if not cards.home_fits([*rows, *mine], may=may, summary=summary, more=more):
                break
            rows += mine
            done += 1
        hidden = sum(len(a.platforms) for a in candidates[done:])
        summary = dataclasses.replace(summary, hidden=hidden)
        return cards.home_view(rows, may=may, summary=summary)

    async def _owns(self, actor: Actor, app: AppEntry) -> bool:
        """Whether ``app``'s roles name ``actor`` (or a user group of theirs) to release or
        publish it — what ``app set <app> owners`` sets; "*" makes nobody an owner."""
        named = tuple(p for p in (*app.roles.release, *app.roles.publish) if p != EVERYONE)
        return bool(named) and await self.commands.authorizer.among(actor, named)

    async def _home_rows(
        self, app: AppEntry, allowed: Collection[str], holds: tuple[str, ...]
    ) -> list[cards.HomeRow]:
        """A row per platform of ``app``: the newest release, the one in review, the live
        one, what holds the app (``holds``), and the quotas spent of the steps the viewer
        may take (``allowed``; the others are not shown, so their quotas are not read)."""
        latest = await self.store.latest(app.key, releases=20)
        rows: list[cards.HomeRow] = []
        for platform in app.platforms:
            mine = [v for v in latest if v.target.platform == platform]
            newest = mine[0] if mine else None
            states = [(platform, newest.state)] if newest else []
            spent = await self._spent(app, states, allowed.__contains__)
            rows.append(
                cards.HomeRow(
                    app=app,
                    platform=platform,
                    state=newest.state if newest else None,
                    version=newest.release.version if newest else None,
                    in_review=next(
                        (v.release.version for v in mine if policy.pending_review(v.state)),
                        None,
                    ),
                    live=next(
                        (v.release.version for v in mine if policy.is_live(v.state)),
                        None,
                    ),
                    last_change=newest.target.updated_at if newest else None,
                    emulated=platform in self.service.emulated,
                    holds=holds,
                    spent=tuple(spent.get(platform, ())),
                )
            )
        return rows


_GUARDED = web.AppKey("miniship_slack_guarded", bool)


class _GuardedApp(AsyncApp):
    """Bolt's app whose HTTP server first refuses, with a 4xx and one warning line, what
    Bolt could not read or a listener could not use (:mod:`handlers.slack_guard`)."""

    def __init__(self, *, signing_secret: str | None, **kwargs: Any) -> None:
        super().__init__(signing_secret=signing_secret, **kwargs)
        self._guard_secret = signing_secret

    def web_app(self, path: str = "/slack/events", port: int = 3000) -> web.Application:
        served = super().web_app(path=path, port=port)
        if self._guard_secret and not served.get(_GUARDED):  # once per server
            served[_GUARDED] = True
            served.middlewares.append(slack_guard.middleware(path, self._guard_secret))
        return served


def build_app(binding: SlackBinding, *, signing_secret: str | None, socket_mode: bool) -> AsyncApp:
    """The Bolt app with miniship's listeners. In HTTP mode every request's signature is
    checked by Bolt's own verification, after :mod:`handlers.slack_guard` has turned away
    what is unsigned or malformed."""
    bolt_app = logging.getLogger("slack_bolt.AsyncApp")  # see TokenNotUnused
    if not any(isinstance(f, slack_guard.TokenNotUnused) for f in bolt_app.filters):
        bolt_app.addFilter(slack_guard.TokenNotUnused())
    app = _GuardedApp(
        client=binding.client,
        signing_secret=signing_secret,
        request_verification_enabled=not socket_mode,
        # we answer within Slack's 3 s ourselves: ack() first, then the work
        process_before_response=False,
    )
    # Bolt logs a failed signature check with the whole body (response_url included)
    bolt_verification = logging.getLogger("slack_bolt.RequestVerification")
    if not any(isinstance(f, slack_guard.Silenced) for f in bolt_verification.filters):
        bolt_verification.addFilter(slack_guard.Silenced())
    store = binding.store

    @app.command("/ship")
    async def ship(ack: Any, body: dict[str, Any], respond: Any) -> None:
        text = str(body.get("text", ""))
        await ack(text=f"`/ship {text}` …" if text.strip() else "")  # Bolt refuses None
        await binding.run(
            str(body["user_id"]), text, body.get("channel_id"), _responder(respond), typed=True
        )

    @app.event("app_mention")
    async def mention(body: dict[str, Any], event: dict[str, Any], client: Any) -> None:
        event_id = body.get("event_id")
        if event_id and not await store.first_delivery(f"slack:{event_id}"):
            return  # a retry of a delivery already handled
        if event.get("bot_id") or "user" not in event:
            return  # another bot mentioning us: not a person's command
        channel, user = str(event["channel"]), str(event["user"])
        text = MENTION.sub("", str(event.get("text", "")), count=1)
        await binding.run(user, text, channel, _in_thread(client, channel, user, event), typed=True)

    @app.action(re.compile(f"^{re.escape(action_id(''))}[a-z][a-z0-9-]*$"))
    async def button(
        ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any, client: Any
    ) -> None:
        await ack()
        user = str(body["user"]["id"])
        on_home = (body.get("container") or {}).get("type") == "view"
        # a Home tab click has no response_url: answer in the app's DM
        answer = _in_dm(client, user) if on_home else _responder(respond, replace=False)
        channel = (body.get("channel") or {}).get("id")
        await binding.click(user, action, channel, answer)
        if on_home:  # the Home tab shows the new state and the buttons that fit it
            await client.views_publish(user_id=user, view=await binding.home(user))

    _rollout_buttons(app, binding)

    @app.action(re.compile(f"^({cards.APPROVE}|{cards.DENY})$"))
    async def decide(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        await ack()
        value = str(action.get("value", ""))
        if not value.isdigit() or len(value) > 9:
            return  # not a request miniship made
        verb = "approve" if action.get("action_id") == cards.APPROVE else "deny"
        channel = (body.get("channel") or {}).get("id")
        await binding.run(
            str(body["user"]["id"]), f"{verb} {value}", channel, _responder(respond, replace=False)
        )

    @app.action(re.compile(f"^({cards.CONFIRM}|{cards.CANCEL})$"))
    async def confirmation(
        ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any
    ) -> None:
        await ack()
        yes = action.get("action_id") == cards.CONFIRM
        await respond(
            delete_original=True
        )  # the question is answered: its buttons must not be clicked again
        channel = (body.get("channel") or {}).get("id")
        token = str(action.get("value", ""))
        await binding.confirmed(
            str(body["user"]["id"]), token, yes, channel, _responder(respond, replace=False)
        )

    @app.event("app_home_opened")
    async def home(event: dict[str, Any], client: Any) -> None:
        if event.get("tab", "home") != "home":
            return
        await client.views_publish(user_id=event["user"], view=await binding.home(event["user"]))

    # the card's Schedule… button and its modal (a timed publish without typing a time)
    schedule_modal.register(app, binding)
    return app


def _rollout_buttons(app: AsyncApp, binding: SlackBinding) -> None:
    """A staged rollout's buttons (``cards.rollout_controls``): ``rollout <app> <version>
    [<platform>] <control>`` — refused, nothing done, when the rollout under way is no
    longer the one the card was for."""

    @app.action(re.compile(f"^{cards.ROLLOUT}(pause|resume|advance|abort)$"))
    async def rollout(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        await ack()
        control = str(action.get("action_id", "")).removeprefix(cards.ROLLOUT)
        try:
            app_key, version, platform = cards.parse_button_value(str(action.get("value", "")))
        except ValueError:
            return  # not a button miniship made
        line = " ".join(w for w in ("rollout", app_key, version, platform, control) if w)
        if control in ("advance", "abort"):
            line += " --yes"  # confirmed in Slack's own dialog
        channel = (body.get("channel") or {}).get("id")
        await binding.run(
            str(body["user"]["id"]), line, channel, _responder(respond, replace=False)
        )


async def _logged(text: str, public: bool, blocks: list[cards.Block] | None = None) -> None:
    """An answer for no one (a review decision has nobody who typed): the log."""
    log.warning("%s", text)


def _responder(respond: Any, *, replace: bool | None = None) -> Answer:
    """Answers through a command's or a click's ``response_url``."""

    async def answer(text: str, public: bool, blocks: list[cards.Block] | None = None) -> None:
        extra = {} if replace is None else {"replace_original": replace}
        await respond(
            text=text,
            blocks=blocks,
            response_type="in_channel" if public else "ephemeral",
            **extra,
        )

    return answer


def _in_thread(client: Any, channel: str, user: str, event: dict[str, Any]) -> Answer:
    """Answers to a mention: in its thread, or only to the person who mentioned us."""
    thread = event.get("thread_ts") or event.get("ts")

    async def answer(text: str, public: bool, blocks: list[cards.Block] | None = None) -> None:
        if public:
            await client.chat_postMessage(channel=channel, thread_ts=thread, text=text)
        else:
            await client.chat_postEphemeral(
                channel=channel,
                user=user,
                text=text,
                blocks=blocks,
                thread_ts=event.get("thread_ts"),
            )

    return answer


def _in_dm(client: Any, user: str) -> Answer:
    async def answer(text: str, public: bool, blocks: list[cards.Block] | None = None) -> None:
        await client.chat_postMessage(channel=user, text=text, blocks=blocks)

    return answer


def _role(verb: str) -> str:
    command = find(verb)
    return command.role if command is not None and command.role else "view"


def unescape(text: str) -> str:
    """Slack sends &, < and > in message and command text as &amp; &lt; &gt;."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _slack_problem(exc: SlackApiError) -> str:
    error = str(exc.response.get("error"))
    if error in ("not_in_channel", "channel_not_found"):
        return f"{error}: invite me to the app's channel, or check its `channel` in miniship.toml"
    if error == "ratelimited":
        return "Slack is rate-limiting me; the release itself went ahead, see `/ship status`"
    return error


def _place(release: Release | None, channel: str | None) -> Place | None:
    """Where a reply's pictures go: the card's thread, else where the command was typed."""
    if release is not None and release.card_channel and release.card_ts:
        return release.card_channel, release.card_ts
    return (channel, None) if channel else None


def _qr_hint(reply: Reply, place: Place | None) -> str:
    """The reply's text, saying how to get its pictures when there is nowhere to post them."""
    if not reply.pictures or place is not None or reply.about is None:
        return reply.text
    app, version = reply.about
    return (
        f"{reply.text}\n(The trial version's QR code is available with "
        f"`/ship qr {app} {version}` typed in a channel.)"
    )


def _upload_problem(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        error = str(exc.response.get("error"))
        if error == "missing_scope":
            return (
                "missing_scope: add the `files:write` bot scope to the Slack app "
                "(OAuth & Permissions, or manifest.yml) and reinstall it to the workspace"
            )
        return _slack_problem(exc)
    if isinstance(exc, SlackClientError):
        return f"the upload failed ({exc})"
    return "Slack did not answer the upload"


def make_binding(
    service: ReleaseService,
    client: AsyncWebClient,
    timed: TimedReleases | None = None,
    admin: Admin | None = None,
    *,
    commands: Callable[..., Commands] | None = None,
) -> SlackBinding:
    """Commands with Slack roles (user groups asked through ``client``), cards kept up to
    date with every review change and timed release, completed authorizations said in
    the app's channel, and rate-limited calls retried. Pass the ``admin`` whose
    authorization callback the push server serves, so its grants are heard."""
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))

    async def members_of(group: str) -> frozenset[str]:
        answer = await client.usergroups_users_list(usergroup=group)
        return frozenset(answer.get("users") or ())

    build = commands or functools.partial(Commands, service, timed=timed, admin=admin)
    made = build(authorizer=RoleCheck(members_of))
    binding = SlackBinding(made, client)
    service.listeners.append(binding.on_change)
    made.admin.listeners.append(binding.on_grant)
    made.admin.apps.listeners.append(binding.on_app_news)
    made.fleets.listeners.append(binding.on_fleet)
    if timed is not None:
        timed.announcers.append(binding)
    return binding
