"""The release card's "Schedule…" button: a modal to plan a timed publish without typing.

Clicking the button opens a modal (``views.open``, within Slack's 3 s for the trigger)
with a date picker and a time picker in the zone of the card's channel (the app's zone
when the channel has none of its own), and a checkbox per platform of the app — those
where the release may be planned are checked. Submitting it runs, as the person who
submitted, exactly the line they could have typed::

    publish <app> <platform…> <version> at <YYYY-MM-DD HH:MM> --yes

so roles, freezes, the two-person rule, version rules and history apply as typed; the
submission itself is the confirmation (``--yes``). The command reads ``at`` in the
app's zone, so a time picked in another zone is converted first: the instant is the one
picked. What the modal can tell at once (no platform, no date or time, a time in the
past or more than a year away, a wall time the zone skips) is said in the modal, which
stays open; everything else is the command's reply, in the release's thread as for a
typed publish-at.

The modal's ``private_metadata`` carries the app, the version and the zone as compact
JSON; it comes back from the network and is checked as strictly as a button's value.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

import platforms
from handlers import cards
from handlers.commands import APP, MAX_VERSION, VERSION, Commands
from handlers.config import AppEntry, MinishipConfig
from handlers.releases import ReleaseService
from handlers.when import MAX_AHEAD, WhenError, describe, parse_when

__all__ = [
    "CALLBACK",
    "DATE",
    "PLATFORMS",
    "TIME",
    "Planned",
    "Schedule",
    "command_line",
    "initial_moment",
    "metadata",
    "modal",
    "parse_metadata",
    "read_submission",
    "register",
    "zone_for",
]

log = logging.getLogger(__name__)

CALLBACK = cards.SCHEDULE  # the modal's callback_id: the same name as the card's button
DATE, TIME, PLATFORMS = "date", "time", "platforms"  # block ids (and their action ids)
MAX_METADATA = 3000  # Slack's limit on a view's private_metadata
MAX_OPTIONS = 10  # checkboxes in one element
LEAD = timedelta(hours=1)  # the time first offered: an hour from now…
STEP = 300  # …rounded up to the next 5 minutes (seconds)

_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_CLOCK = re.compile(r"\d{2}:\d{2}")

Block = dict[str, Any]


class _Answer(Protocol):
    async def __call__(
        self, text: str, public: bool, blocks: list[cards.Block] | None = None
    ) -> None: ...


class _Binding(Protocol):
    """What the modal needs of :class:`handlers.slack.SlackBinding`."""

    @property
    def commands(self) -> Commands: ...

    @property
    def service(self) -> ReleaseService: ...

    async def run(self, user: str, text: str, channel: str | None, answer: _Answer) -> None: ...


@dataclass(frozen=True)
class Schedule:
    """What the modal is about: the release, and the zone its times are shown in."""

    app: str
    version: str
    zone: ZoneInfo


@dataclass(frozen=True)
class Planned:
    """A submission read: the platforms checked and the instant picked (aware UTC)."""

    platforms: tuple[str, ...]
    due: datetime


# -- the zone and the first time offered --------------------------------------------------


def zone_for(config: MinishipConfig, app: AppEntry, channel: str | None) -> ZoneInfo:
    """The zone a card in ``channel`` shows times in: the channel's, when miniship.toml
    has that channel, else the app's."""
    entry = config.channels.get(channel) if channel else None
    return entry.timezone if entry is not None else app.timezone


def initial_moment(now: datetime, zone: ZoneInfo) -> datetime:
    """An hour from ``now``, rounded up to the next 5 minutes, on ``zone``'s wall clock."""
    later = now.astimezone(UTC) + LEAD
    stamp = math.ceil(later.timestamp() / STEP) * STEP
    return datetime.fromtimestamp(stamp, UTC).astimezone(zone)


# -- private_metadata ---------------------------------------------------------------------


def metadata(schedule: Schedule) -> str:
    fields = {"app": schedule.app, "version": schedule.version, "zone": schedule.zone.key}
    text = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    if len(text) > MAX_METADATA:  # app keys, versions and zone names are short
        raise ValueError("private_metadata too long")
    return text


def parse_metadata(text: str) -> Schedule:
    """The modal's release and zone from its ``private_metadata``; ValueError unless it is
    exactly what :func:`metadata` makes (it comes back from the network)."""
    if not text or len(text) > MAX_METADATA:
        raise ValueError("not a miniship schedule")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError("not a miniship schedule") from None
    if not isinstance(data, dict) or set(data) != {"app", "version", "zone"}:
        raise ValueError("not a miniship schedule")
    app, version, zone = data["app"], data["version"], data["zone"]
    if not isinstance(app, str) or not APP.fullmatch(app):
        raise ValueError("bad app in schedule")
    if not isinstance(version, str) or len(version) > MAX_VERSION or not VERSION.fullmatch(version):
        raise ValueError("bad version in schedule")
    if not isinstance(zone, str) or len(zone) > 64 or not _ZONE.fullmatch(zone):
        raise ValueError("bad zone in schedule")
    try:
        return Schedule(app, version, ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError("bad zone in schedule") from None


# -- the modal ----------------------------------------------------------------------------


def _display(platform: str) -> str:
    try:
        return platforms.platform_class(platform).display_name
    except KeyError:
        return platform


def _text(text: str) -> Block:
    return {"type": "plain_text", "text": text}


def _option(platform: str) -> Block:
    return {"text": _text(_display(platform)), "value": platform}


def modal(
    app: AppEntry,
    schedule: Schedule,
    initial: datetime,
    choices: Sequence[str],
    checked: Sequence[str],
) -> Block:
    """The modal: date and time (``initial``, on ``schedule.zone``'s wall clock) and a
    checkbox per platform in ``choices``, those in ``checked`` checked."""
    zone = schedule.zone.key
    local = initial.astimezone(schedule.zone)
    options = [_option(p) for p in choices[:MAX_OPTIONS]]
    boxes: Block = {"type": "checkboxes", "action_id": PLATFORMS, "options": options}
    ticked = [o for o in options if o["value"] in checked]
    if ticked:
        boxes["initial_options"] = ticked
    name = cards.escape(app.name[:100])
    intro = (
        f"Publish *{name}* {cards.escape(schedule.version)} at the time you pick ({zone}). "
        "At that minute miniship checks again that it is approved and that nothing newer "
        "is live; a reminder goes to the release's thread beforehand."
    )
    return {
        "type": "modal",
        "callback_id": CALLBACK,
        "title": _text("Schedule publish"),
        "submit": _text("Schedule"),
        "close": _text("Cancel"),
        "private_metadata": metadata(schedule),
        "blocks": [
            {
                "type": "section",
                "block_id": "about",
                "text": {"type": "mrkdwn", "text": intro, "verbatim": True},
            },
            {
                "type": "input",
                "block_id": DATE,
                "label": _text("Date"),
                "element": {
                    "type": "datepicker",
                    "action_id": DATE,
                    "initial_date": f"{local:%Y-%m-%d}",
                },
            },
            {
                "type": "input",
                "block_id": TIME,
                "label": _text(f"Time ({zone})"),
                "element": {
                    "type": "timepicker",
                    "action_id": TIME,
                    "initial_time": f"{local:%H:%M}",
                },
            },
            {
                "type": "input",
                "block_id": PLATFORMS,
                "label": _text("Platforms"),
                "element": boxes,
            },
        ],
    }


# -- the submission -----------------------------------------------------------------------


def _state(values: Mapping[str, Any], block: str) -> Mapping[str, Any]:
    actions = values.get(block)
    state = actions.get(block) if isinstance(actions, Mapping) else None
    return state if isinstance(state, Mapping) else {}


def _picked_platforms(values: Mapping[str, Any], app: AppEntry) -> tuple[str, ...] | str:
    """The checked platforms, in the app's order; or what is wrong with them."""
    selected = _state(values, PLATFORMS).get("selected_options")
    if not isinstance(selected, list):
        return "Pick at least one platform."
    chosen: set[str] = set()
    for option in selected:
        value = option.get("value") if isinstance(option, Mapping) else None
        if not isinstance(value, str) or value not in app.platforms:
            return "That platform is not one this app is on."
        chosen.add(value)
    if not chosen:
        return "Pick at least one platform."
    return tuple(p for p in app.platforms if p in chosen)


def _picked_moment(values: Mapping[str, Any], zone: ZoneInfo) -> datetime | dict[str, str]:
    """The picked date and time on ``zone``'s wall clock (aware); or the errors."""
    day = _state(values, DATE).get("selected_date")
    clock = _state(values, TIME).get("selected_time")
    errors: dict[str, str] = {}
    picked_day: date | None = None
    picked_clock: time | None = None
    try:
        if isinstance(day, str) and _DAY.fullmatch(day):
            picked_day = date.fromisoformat(day)
    except ValueError:
        pass
    try:
        if isinstance(clock, str) and _CLOCK.fullmatch(clock):
            picked_clock = time.fromisoformat(clock)
    except ValueError:
        pass
    if picked_day is None:
        errors[DATE] = "Pick a date."
    if picked_clock is None:
        errors[TIME] = "Pick a time."
    if picked_day is None or picked_clock is None:
        return errors
    local = datetime.combine(picked_day, picked_clock, tzinfo=zone)
    back = local.astimezone(UTC).astimezone(zone)
    if back.replace(tzinfo=None) != local.replace(tzinfo=None):
        return {TIME: f"{clock} does not exist on {day} in {zone.key} (the clocks skip it)."}
    return local


def read_submission(
    values: Mapping[str, Any], app: AppEntry, zone: ZoneInfo, now: datetime
) -> Planned | dict[str, str]:
    """A submitted modal's ``view.state.values`` as what to plan; or ``{block_id:
    message}`` for the modal to show (it stays open)."""
    chosen = _picked_platforms(values, app)
    moment = _picked_moment(values, zone)
    errors = dict(moment) if isinstance(moment, dict) else {}
    if isinstance(chosen, str):
        errors[PLATFORMS] = chosen
    if isinstance(moment, dict) or isinstance(chosen, str):
        return errors
    due = moment.astimezone(UTC)
    if due <= now:
        return {TIME: f"{describe(due, zone)} is in the past; pick a later time."}
    if due - now > MAX_AHEAD:
        return {DATE: "That is more than a year away."}
    # the command reads the time on the app's wall clock: it must mean the same instant
    try:
        again = parse_when(f"at {_wall(due, app.timezone)}", now, app.timezone)
    except WhenError as exc:
        return {TIME: str(exc)}
    if again != due:  # a wall time the app's zone has twice: the command takes the first
        return {
            TIME: f"In {app.timezone.key}, {_wall(due, app.timezone)} happens twice "
            "(the clocks go back); pick another time."
        }
    return Planned(chosen, due)


def _wall(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"


def command_line(app: AppEntry, version: str, planned: Planned) -> str:
    """The publish-at line a person would type for ``planned``, the time in the app's
    zone; ``--yes``: submitting the modal was the confirmation."""
    names = " ".join(planned.platforms)
    return f"publish {app.key} {names} {version} at {_wall(planned.due, app.timezone)} --yes"


# -- Slack ----------------------------------------------------------------------------------


async def opened(binding: _Binding, value: str, channel: str | None) -> Block | None:
    """The modal for a Schedule… click whose button carried ``value`` (None: not a button
    miniship made, or an app it no longer has). Only the database is asked: the trigger
    to open it lasts 3 s."""
    try:
        app_key, version, _ = cards.parse_button_value(value)
    except ValueError:
        return None
    service = binding.service
    app = service.config.app(app_key)
    if app is None:
        return None
    zone = zone_for(service.config, app, channel)
    checked: list[str] = []
    release = await service.store.release(app.key, version)
    if release is not None and release.id is not None:
        targets = await service.store.targets(release.id)
        checked = [t.platform for t in targets if cards.schedulable(t.state)]
    initial = initial_moment(binding.commands.clock(), zone)
    return modal(app, Schedule(app.key, version, zone), initial, list(app.platforms), checked)


def _submitted(
    binding: _Binding, view: Mapping[str, Any]
) -> tuple[AppEntry, str, Planned] | dict[str, str]:
    """(app, version, what to plan) from a submitted view, or the errors to show."""
    try:
        schedule = parse_metadata(str(view.get("private_metadata") or ""))
    except ValueError:
        return {DATE: "This form was not made by miniship; nothing was planned."}
    app = binding.service.config.app(schedule.app)
    if app is None:
        return {DATE: f"miniship has no app `{schedule.app}` any more; nothing was planned."}
    state = view.get("state")
    values = state.get("values") if isinstance(state, Mapping) else None
    if not isinstance(values, Mapping):
        values = {}
    read = read_submission(values, app, schedule.zone, binding.commands.clock())
    if isinstance(read, dict):
        return read
    return app, schedule.version, read


def _to_person(client: Any, user: str, channel: str | None) -> _Answer:
    """Answers to a submission: in the release's channel (privately unless ``public``);
    a private one goes to the app's DM when Slack refuses it there."""

    async def answer(text: str, public: bool, blocks: list[cards.Block] | None = None) -> None:
        if channel and public:
            await client.chat_postMessage(channel=channel, text=text, blocks=blocks)
            return
        if channel:
            try:
                await client.chat_postEphemeral(
                    channel=channel, user=user, text=text, blocks=blocks
                )
                return
            except SlackApiError as exc:
                log.info("could not answer %s in %s: %s", user, channel, exc)
        await client.chat_postMessage(channel=user, text=text, blocks=blocks)

    return answer


def register(app: AsyncApp, binding: _Binding) -> None:
    """The Schedule… button and its modal, on the Bolt ``app``."""

    @app.action(cards.SCHEDULE)
    async def schedule(ack: Any, body: dict[str, Any], action: dict[str, Any], client: Any) -> None:
        await ack()
        user = str(body["user"]["id"])
        channel = (body.get("channel") or {}).get("id")
        view = await opened(binding, str(action.get("value", "")), channel)
        if view is None:
            await _to_person(client, user, channel)(
                "That button is not one miniship made; nothing was done.", False
            )
            return
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.view(CALLBACK)
    async def submitted(ack: Any, body: dict[str, Any], client: Any) -> None:
        read = _submitted(binding, body.get("view") or {})
        if isinstance(read, dict):
            await ack(response_action="errors", errors=read)
            return
        await ack()
        entry, version, planned = read
        release = await binding.service.store.release(entry.key, version)
        channel = (release.card_channel if release is not None else None) or entry.channel
        user = str(body["user"]["id"])
        line = command_line(entry, version, planned)
        await binding.run(user, line, channel, _to_person(client, user, channel))
