"""The tables. Every datetime is stored and returned as aware UTC (sqlmodel's UTCDateTime)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

__all__ = [
    "ApiToken",
    "App",
    "AppsRevision",
    "ConnectRequest",
    "Credential",
    "Delivery",
    "Event",
    "Release",
    "ReleaseTarget",
    "Rollout",
    "TimedAction",
    "WebhookDelivery",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class App(SQLModel, table=True):
    """A mini program miniship releases (kept so history can refer to it even once retired).

    ``source`` says where it comes from: ``file`` (miniship.toml, which defines it), ``chat``
    (added with ``app add``) or a platform that reported its authorization (``wechat``,
    ``alipay``). Apps not from the file carry their ``definition``: the same table an
    ``[apps.<key>]`` section of miniship.toml would be. ``tags`` are those set from chat.
    """

    key: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    source: str = Field(default="file", max_length=16)
    definition: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    tags: list[str] = Field(default_factory=list, sa_type=JSON)
    updated_at: datetime = Field(default_factory=utcnow, index=True)
    updated_by: str = Field(default="", max_length=200)
    retired_at: datetime | None = None  # removed, or its authorization withdrawn


class AppsRevision(SQLModel, table=True):
    """One row: a counter that every write of the app table raises in its own transaction.

    How each process notices that another added, changed or removed an app: a revision
    the database keeps, not a time stamp — the hosts' clocks differ, and two changes may
    fall in one second.
    """

    __tablename__ = "apps_revision"

    id: int = Field(default=1, primary_key=True)  # the one row
    revision: int = 0


class Release(SQLModel, table=True):
    """One version of one app, across the platforms it is uploaded to."""

    __table_args__ = (UniqueConstraint("app_key", "version", name="uq_release_app_version"),)

    id: int | None = Field(default=None, primary_key=True)
    app_key: str = Field(foreign_key="app.key", index=True, max_length=64)
    version: str = Field(max_length=64)
    notes: str = Field(default="", sa_type=Text)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    card_channel: str | None = Field(default=None, max_length=32)  # the Slack release card
    card_ts: str | None = Field(default=None, max_length=32)


class ReleaseTarget(SQLModel, table=True):
    """A release on one platform: its state in the life cycle and the platform's ids.

    ``revision`` grows with every change; a transition is a compare-and-set on it.
    """

    __tablename__ = "release_target"
    __table_args__ = (
        UniqueConstraint("release_id", "platform", name="uq_target_release_platform"),
    )

    id: int | None = Field(default=None, primary_key=True)
    release_id: int = Field(foreign_key="release.id", index=True)
    platform: str = Field(max_length=32)
    state: str = Field(max_length=16, index=True)
    revision: int = 0
    platform_ref: str = Field(default="", max_length=128)  # WeChat auditid, …
    review_reason: str = Field(default="", sa_type=Text)
    detail: str = Field(default="", sa_type=Text)  # the platform's last word, for people
    uploaded_at: datetime = Field(default_factory=utcnow)
    submitted_at: datetime | None = None
    decided_at: datetime | None = None
    released_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class Event(SQLModel, table=True):
    """Who did what, when, and what the platform answered."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    app_key: str | None = Field(default=None, index=True, max_length=64)
    release_id: int | None = Field(default=None, foreign_key="release.id")
    version: str | None = Field(default=None, max_length=64)
    platform: str | None = Field(default=None, max_length=32)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=32)
    outcome: str = Field(max_length=16)  # ok | failed | refused | changed
    message: str = Field(default="", sa_type=Text)
    exchanges: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)


class TimedAction(SQLModel, table=True):
    """A publish planned for a given minute, and what became of it.

    This row is the truth about the plan; the scheduler's own job table only says when to
    wake up. ``state`` follows :class:`storage.states.TimedState`, and like a release's
    state it moves by compare-and-set on ``revision``.
    """

    __tablename__ = "timed_action"

    id: int | None = Field(default=None, primary_key=True)
    action: str = Field(default="publish", max_length=16)
    release_id: int = Field(foreign_key="release.id", index=True)
    app_key: str = Field(index=True, max_length=64)
    version: str = Field(max_length=64)
    platforms: list[str] = Field(default_factory=list, sa_type=JSON)
    due_at: datetime = Field(index=True)
    state: str = Field(default="pending", max_length=16, index=True)
    revision: int = 0
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    channel: str | None = Field(default=None, max_length=32)  # where it was asked for
    finished_at: datetime | None = None
    outcome: str = Field(default="", sa_type=Text)  # what happened, for people


class Delivery(SQLModel, table=True):
    """Something that must happen once: a request from outside (a Slack event) handled,
    or a message posted (a reminder, a day's digest, a nudge).

    Slack retries an event it thinks was not received; the first insert of its key wins,
    so a retry never runs a command twice, whichever process receives it. The same holds
    for two scheduler processes sending one reminder.
    """

    key: str = Field(primary_key=True, max_length=200)
    at: datetime = Field(default_factory=utcnow, index=True)


class Credential(SQLModel, table=True):
    """A secret a platform adapter was given at run time (an authorizer's refresh token,
    the component verify ticket), kept across restarts. ``ciphertext`` is Fernet-encrypted
    and bound to its platform and name; only :mod:`storage.vault` reads or writes it."""

    __table_args__ = (UniqueConstraint("platform", "name", name="uq_credential_platform_name"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    name: str = Field(max_length=200)
    ciphertext: str = Field(sa_type=Text, repr=False)  # kept out of log lines all the same
    updated_at: datetime = Field(default_factory=utcnow)


class ConnectRequest(SQLModel, table=True):
    """An authorization link miniship made (``connect <app> <platform>``), waiting for the
    platform's authorization page to send the admin back.

    The link's ``state`` is a random token; only its SHA-256 is kept. The callback is
    accepted once, before ``expires_at``, and only for the platform it was made for: the
    app the grant is announced for comes from this row, never from the callback's query.
    ``app_key`` "" is a link for any mini program (``connect alipay``): the one the
    platform's grant names becomes an app.
    """

    __tablename__ = "connect_request"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    platform: str = Field(max_length=32)
    app_key: str = Field(max_length=64)
    requested_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)
    used_at: datetime | None = None


class Confirmation(SQLModel, table=True):
    """A destructive command waiting for its requester to confirm it (Slack's Confirm
    button; the console asks at once).

    The button carries a random token; only its SHA-256 is kept. It is taken once, by the
    person who typed the command, before ``expires_at``; ``command`` is the line run then.
    """

    __tablename__ = "confirmation"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    actor: str = Field(max_length=200)
    command: str = Field(sa_type=Text)
    channel: str | None = Field(default=None, max_length=64)
    question: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)
    answered_at: datetime | None = None
    answer: str | None = Field(default=None, max_length=16)  # confirmed | cancelled


class Freeze(SQLModel, table=True):
    """A freeze (a window in which nothing goes live) or a lock (until unlocked) on one app,
    or on every app (``app_key`` "*"), set from chat. Windows from miniship.toml are
    configuration, not rows."""

    __tablename__ = "freeze"

    id: int | None = Field(default=None, primary_key=True)
    app_key: str = Field(max_length=64, index=True)  # "*": every app
    kind: str = Field(max_length=16)  # freeze | lock
    starts_at: datetime
    ends_at: datetime | None = None  # None: until lifted
    reason: str = Field(default="", sa_type=Text)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    lifted_at: datetime | None = None
    lifted_by: str | None = Field(default=None, max_length=200)


class ApprovalRequest(SQLModel, table=True):
    """A publish, rollback or offline waiting for a second person (``approvals = 1``).

    ``command`` is the line run on approval, as the requester. ``state`` moves once, by
    compare-and-set: pending → approved | denied | expired.
    """

    __tablename__ = "approval_request"

    id: int | None = Field(default=None, primary_key=True)
    app_key: str = Field(max_length=64, index=True)
    version: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=32)
    command: str = Field(sa_type=Text)
    channel: str | None = Field(default=None, max_length=64)
    requested_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    state: str = Field(default="pending", max_length=16)
    decided_by: str | None = Field(default=None, max_length=200)
    decided_at: datetime | None = None
    note: str = Field(default="", sa_type=Text)


class FleetRun(SQLModel, table=True):
    """One command over many apps (``submit @shops 1.3.0``): see :mod:`handlers.fleet`."""

    __tablename__ = "fleet_run"

    id: int | None = Field(default=None, primary_key=True)
    command: str = Field(sa_type=Text)  # as typed
    created_by: str = Field(max_length=200)
    retried_by: str | None = Field(default=None, max_length=200)  # who last retried it
    channel: str | None = Field(default=None, max_length=64)  # where it was typed
    state: str = Field(default="running", max_length=16, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    card_channel: str | None = Field(default=None, max_length=32)  # its Slack card
    card_ts: str | None = Field(default=None, max_length=32)

    @property
    def runs_as(self) -> str:
        """Who its apps run as: who retried it last, else who started it."""
        return self.retried_by or self.created_by


class FleetItem(SQLModel, table=True):
    """One app of a fleet run: the single-app command line it stands for, and how it went."""

    __tablename__ = "fleet_item"
    __table_args__ = (UniqueConstraint("run_id", "app_key", name="uq_fleet_item_app"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="fleet_run.id", index=True)
    app_key: str = Field(max_length=64)
    line: str = Field(sa_type=Text)
    state: str = Field(default="pending", max_length=16)
    attempts: int = 0
    message: str = Field(default="", sa_type=Text)
    started_at: datetime | None = None
    finished_at: datetime | None = None


ROLLOUT_ACTIVE_WHERE = "state IN ('running', 'paused', 'halted', 'stepping')"
"""The rollouts under way (storage.states.RolloutState), as the partial index reads them."""


class Rollout(SQLModel, table=True):
    """A staged rollout of one release on one platform: a gray release that grows step by
    step (``steps``, percentages; the last is 100, the full release), each step after a
    health gate. See :mod:`handlers.rollouts`.

    ``step`` is the index in ``steps`` of the share live now (-1: none yet). The next step
    is a timed action (``timed_action`` with action ``rollout``, id ``action_id``, due
    ``next_at``). ``state`` follows :class:`storage.states.RolloutState` and moves by
    compare-and-set on ``revision``. At most one rollout per app and platform is under way
    (running, paused, halted or stepping): a partial unique index says so to the database,
    so two starts at once cannot both keep one.
    """

    __tablename__ = "rollout"
    __table_args__ = (
        Index(
            "uq_rollout_active",
            "app_key",
            "platform",
            unique=True,
            sqlite_where=text(ROLLOUT_ACTIVE_WHERE),
            postgresql_where=text(ROLLOUT_ACTIVE_WHERE),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    app_key: str = Field(max_length=64, index=True)
    version: str = Field(max_length=64)
    platform: str = Field(max_length=32)
    release_id: int = Field(foreign_key="release.id", index=True)
    previous: str | None = Field(default=None, max_length=64)  # the version it replaces
    plan: str = Field(default="", max_length=64)  # a named plan of miniship.toml, if any
    steps: list[int] = Field(default_factory=list, sa_type=JSON)
    every_seconds: int = 86400
    step: int = -1
    state: str = Field(default="running", max_length=16, index=True)
    revision: int = 0
    on_regression: str = Field(default="revert", max_length=16)  # revert | pause
    thresholds: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    action_id: int | None = None  # the timed action of the next step
    next_at: datetime | None = None
    step_at: datetime | None = None  # when the share live now went out
    gray_since: datetime | None = None  # when the staged release began (15-day clock)
    holding_since: datetime | None = None  # the gate has had no data since
    asked_at: datetime | None = None  # a person was asked to decide a long hold
    warned_at: datetime | None = None  # warned that the platform releases on its own soon
    note: str = Field(default="", sa_type=Text)  # the last thing that happened, for people
    started_by: str = Field(max_length=200)
    channel: str | None = Field(default=None, max_length=64)
    fleet_id: int | None = Field(default=None, foreign_key="fleet_run.id", index=True)
    held_by: str | None = Field(default=None, sa_type=Text)  # the freezes holding its step
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class ApiToken(SQLModel, table=True):
    """A token of the CI API (``token create <name>``): what it may do (``roles``) on which
    apps (``apps``: app keys, ``@tag`` or ``*``), as ``token:<name>`` in history.

    Only the SHA-256 of the token is kept (it is 256 random bits: no slow hash is needed,
    and the digest is looked up by equality). ``active_name`` is the name while the token
    is usable and NULL once revoked, so a name is held by one live token at a time (NULLs
    are distinct in a unique index on SQLite and PostgreSQL alike) and may be reused.
    """

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, index=True)
    active_name: str | None = Field(default=None, max_length=64, unique=True)
    token_hash: str = Field(max_length=64, unique=True, repr=False)
    roles: list[str] = Field(default_factory=list, sa_type=JSON)
    apps: list[str] = Field(default_factory=list, sa_type=JSON)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = Field(default=None, max_length=200)


class WebhookDelivery(SQLModel, table=True):
    """A release event waiting to be taken by one webhook URL (handlers/webhooks.py): kept
    until the receiver answers 2xx, refuses it, or the attempts run out, so a delivery
    outlives the process that made the event. ``due_at`` is when it is tried next;
    ``claimed_until`` is set while a process tries it (a lease: a process that died
    mid-attempt leaves the row to the next one once it passes)."""

    __tablename__ = "webhook_delivery"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=40)
    kind: str = Field(max_length=16)
    url: str = Field(max_length=2000)
    body: str = Field(sa_type=Text)
    attempts: int = 0  # made so far
    due_at: datetime = Field(default_factory=utcnow, index=True)
    claimed_until: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
