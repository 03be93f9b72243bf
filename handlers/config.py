"""Settings (environment and ``.env``) and the apps file (``miniship.toml``).

Settings say how miniship runs: where the database is, where the apps file is, whether
the platform emulators stand in for the real platforms. Platform credentials are each
adapter's own settings (``WECHAT_…``, ``ALIPAY_…``; see platforms/).

miniship.toml says which mini programs miniship releases::

    timezone = "Asia/Shanghai"          # default for every app and channel
    digest = "09:30"                    # daily digest time in each channel ("off": none)

    [channels.C0123456789]              # optional: a channel's own zone and digest time
    timezone = "Europe/Berlin"
    digest = "off"

    [apps.demo]
    name = "Demo Shop"
    timezone = "Asia/Shanghai"
    channel = "C0123456789"             # Slack channel for the release cards
    roles = { publish = ["U012ABCDEF", "S0RELEASERS"] }   # view / release / publish

    [apps.demo.wechat]                  # parsed by platforms.wechat.WeChatPlatform.AppConfig
    appid = "wx…"
    template_id = 1

    [apps.demo.alipay]                  # parsed by platforms.alipay.AlipayPlatform.AppConfig
    app_id = "2021…"
    template_id = "2021…"

Secrets are never written into the file: a secret field takes ``"env:NAME"`` or
``"file:/path"``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

import platforms
from handlers.freezes import FreezeWindow, read_weekly
from handlers.rollouts.plan import Plan, PlanError, read_plans
from platforms.errors import ConfigError

__all__ = [
    "ROLE_NAMES",
    "AppEntry",
    "ChannelEntry",
    "DefinedApp",
    "MinishipConfig",
    "Roles",
    "Settings",
    "check_tags",
    "load_config",
    "parse_app",
    "with_apps",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_DIGEST = "09:30"
CHANNEL = r"^[CGD][A-Z0-9]{2,}$"
APP_KEY = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
TAG = r"[a-z0-9][a-z0-9_-]{0,31}"


class Settings(BaseSettings):
    """How this miniship process runs. Every field can be set in the environment or .env."""

    model_config = SettingsConfigDict(
        env_prefix="MINISHIP_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str = Field(
        "sqlite:///var/miniship.db",
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
    )
    config: Path = Path("miniship.toml")
    emulators: Literal["auto", "on", "off"] = "auto"
    """auto: emulate each platform that has no credentials; on: emulate all; off: none."""
    emulator_review_seconds: float = Field(30.0, gt=0)
    fleet_concurrency: int = Field(8, ge=1, le=256)
    """Apps a fleet run (`submit @shops …`) works on at once."""
    fleet_rate: float = Field(10.0, gt=0, le=1000)
    """Apps a fleet run starts per second on each platform (slowed down when the platform
    answers with a rate limit)."""
    emulator_merchants: int = Field(3, ge=0, le=5000)
    """Mini programs that authorized the emulated platform outside miniship: what
    ``apps sync wechat`` finds when trying miniship out."""
    emulator_state: Path = Path("var/emulators")
    """Folder where in-process emulators keep their state between runs."""
    qr_dir: Path = Path("var/qr")
    """Folder where the console saves trial QR codes (it prints their paths)."""
    watch_concurrency: int = Field(16, ge=1, le=256)
    """Platform questions a watch round has in flight at once (mind each platform's rate
    limits: WeChat's per-API daily quotas, Alipay's per-second limits)."""
    watch_seconds: float | None = Field(None, gt=0)
    """How often the review watcher asks the platforms (default 300 s; 3 s when emulated)."""
    ops_port: int | None = Field(None, ge=1, le=65535)
    """Port for /healthz, /readyz and /metrics in Socket Mode and the console (in HTTP mode
    they are on Slack's port)."""
    push_port: int | None = Field(None, ge=1, le=65535)
    """Port for platform pushes (/push/…) when Slack's HTTP server does not carry them."""
    grace_minutes: float = Field(10.0, ge=0)
    """A timed release found due this late (miniship was down) still goes out; later, not."""
    reminder_minutes: float = Field(30.0, ge=0)
    """A reminder goes to the release's thread this long before a timed release (0: none)."""
    nudge_hours: float = Field(48.0, gt=0)
    """A review pending longer than this gets a nudge in its thread (and again after each
    further such stretch)."""
    log_level: str = "WARNING"
    log_format: Literal["text", "json"] = "text"
    """json: one JSON object per line (level, logger, message, and the command, app,
    platform and release a line is about), for log collectors."""
    secret_key: SecretStr | None = None
    """Fernet key(s) encrypting the platform credentials miniship keeps (MINISHIP_SECRET_KEY):
    one or more, comma-separated; the first encrypts, all decrypt (so keys can be rotated).
    Make one with ``python -c "from cryptography.fernet import Fernet;
    print(Fernet.generate_key().decode())"``."""
    secret_key_file: Path | None = None
    """A file holding those keys instead (MINISHIP_SECRET_KEY_FILE), e.g. a mounted secret."""
    confirm: str = "publish,withdraw,rollback,offline,gray,template,rollout"
    """Commands that ask "Really …?" before they run (MINISHIP_CONFIRM, comma-separated;
    "none" for none): gray asks only to stop, template only to delete, rollout to start,
    advance or abort. Slack asks with
    Confirm/Cancel buttons only the requester can use; the console asks [y/N]; a line
    ending in --yes answers yes."""
    leader_seconds: float = Field(5.0, gt=0, le=60)
    """Replicas on one PostgreSQL database: how often each checks whether it leads (runs the
    scheduler) or may take over from a leader gone; a takeover comes within about this."""
    stop_seconds: float = Field(25.0, ge=0, le=600)
    """On SIGTERM or Ctrl-C: how long running commands, pushes and timed releases may take
    to finish before the process stops anyway (keep it below the orchestrator's own grace
    period: Kubernetes gives 30 s, Docker 10 s unless told otherwise)."""
    confirm_minutes: float = Field(10.0, gt=0)
    """How long a Slack Confirm button works."""
    approval_hours: float = Field(24.0, gt=0)
    """How long a request for a second person's approval stays open."""
    rollout_retry_minutes: float = Field(30.0, gt=0)
    """A rollout step the health gate could not judge (no figures, the platform not
    answering) or a freeze held is tried again after this long."""
    rollout_ask_hours: float = Field(6.0, gt=0)
    """A rollout step held this long for want of figures asks a person to decide."""
    public_url: str | None = None
    """Where browsers reach miniship's push port (MINISHIP_PUBLIC_URL), e.g.
    https://miniship.example.com: a platform's authorization page sends the admin back to
    <public_url>/connect/<platform>."""
    archive_dir: Path = Path("var/archives")
    """Where builds handed over through the CI API are unpacked while they upload."""
    archive_mb: float = Field(32.0, gt=0, le=1024)
    """The largest build archive (zip) the CI API takes, in MiB (MINISHIP_ARCHIVE_MB)."""
    webhook_urls: str = ""
    """Where release events are POSTed (MINISHIP_WEBHOOK_URLS, comma-separated http(s)
    URLs; docs/ci.md), signed with MINISHIP_WEBHOOK_SECRET (or _FILE)."""
    webhook_secret: SecretStr | None = None
    """The HMAC-SHA256 key webhook deliveries are signed with (MINISHIP_WEBHOOK_SECRET)."""
    webhook_secret_file: Path | None = None
    """A file holding that key instead (MINISHIP_WEBHOOK_SECRET_FILE), e.g. a mounted secret."""
    webhook_attempts: int = Field(8, ge=1, le=20)
    """How many times a webhook delivery is tried (2 s, 4 s, 8 s … apart, at most 5 min)."""

    @property
    def webhooks(self) -> tuple[list[str], bytes]:
        """The webhook URLs and the key they are signed with (no URLs: no webhooks).

        Raises:
            ConfigError: URLs without a key, or a URL that is not http(s).
        """
        urls = [u.strip() for u in self.webhook_urls.split(",") if u.strip()]
        if not urls:
            return [], b""
        for url in urls:
            try:
                usable = bool(re.match(r"^https?://[^/\s]+", url) and httpx.URL(url).host)
            except httpx.InvalidURL:  # a port that is no number, say
                usable = False
            if not usable:
                raise ConfigError(f"MINISHIP_WEBHOOK_URLS: {url[:80]!r} is not an http(s) URL")
        if self.webhook_secret is not None:
            key = self.webhook_secret.get_secret_value()
        elif self.webhook_secret_file is not None:
            try:
                key = self.webhook_secret_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"MINISHIP_WEBHOOK_SECRET_FILE {self.webhook_secret_file}: {exc.strerror}"
                ) from None
        else:
            key = ""
        if len(key) < 16:
            raise ConfigError(
                "MINISHIP_WEBHOOK_URLS needs MINISHIP_WEBHOOK_SECRET (or _FILE): at least 16 "
                'characters, e.g. python -c "import secrets; print(secrets.token_hex(32))"'
            )
        return urls, key.encode("utf-8")

    @property
    def confirming(self) -> frozenset[str]:
        """The command names in ``confirm``."""
        words = {w.strip().lower() for w in self.confirm.split(",") if w.strip()}
        return frozenset() if words <= {"none", "off"} else frozenset(words)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(
                "MINISHIP_PUBLIC_URL must be an http(s) URL such as https://miniship.example.com"
            )
        return value


ROLE_NAMES = ("view", "release", "publish", "override")
"""view: status, history, App Home · release: upload, submit · publish: publish, withdraw ·
override: act during a freeze or lock (with a reason)."""

EVERYONE = "*"


def check_tags(tags: Sequence[str]) -> list[str]:
    """``tags`` once each, in order; ValueError naming the first that is not a tag."""
    for tag in tags:
        if not re.fullmatch(TAG, tag):
            raise ValueError(f"{tag!r} is not a tag: lower-case letters, digits, - and _ (≤ 32)")
    return list(dict.fromkeys(tags))


def _slack_ids(value: tuple[str, ...]) -> tuple[str, ...]:
    for item in value:
        if item != EVERYONE and not re.fullmatch(r"[UWS][A-Z0-9]{2,}", item):
            raise ValueError(f'{item!r} is not a Slack user id (U…/W…), user-group id (S…) or "*"')
    return value


class Roles(BaseModel):
    """Who may do what with one app: Slack user ids (U…, W…), user-group ids (S…) or "*"."""

    model_config = ConfigDict(extra="forbid")

    view: tuple[str, ...] = (EVERYONE,)
    release: tuple[str, ...] = (EVERYONE,)
    publish: tuple[str, ...] = (EVERYONE,)
    override: tuple[str, ...] = ()  # nobody, unless named: a freeze means something

    @field_validator("view", "release", "publish", "override")
    @classmethod
    def _ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _slack_ids(value)

    @property
    def open(self) -> bool:
        """Anyone may publish: fine for trying miniship out, not for production."""
        return EVERYONE in self.publish


@dataclass(frozen=True)
class AppEntry:
    key: str
    name: str
    timezone: ZoneInfo
    platforms: Mapping[str, BaseModel] = field(default_factory=dict)  # name → AppConfig
    channel: str | None = None  # Slack channel id for the app's release cards
    roles: Roles = field(default_factory=Roles)
    version_prefix: str = ""  # a prefix new versions carry, e.g. "v" (WeChat-only apps)
    approvals: int = 0  # 1: publish, rollback and offline need a second person
    tags: tuple[str, ...] = ()  # groups it belongs to: `status @shops`
    source: str = "file"  # miniship.toml; "chat" (app add); a platform ("wechat": sync)


@dataclass(frozen=True)
class ChannelEntry:
    """Where the daily digest of some apps goes, in which zone, at what time (None: off).

    ``id`` is a Slack channel id, or "" for the apps without a channel (the console
    shows their digest; Slack has nowhere to post it).
    """

    id: str
    timezone: ZoneInfo
    digest: dt.time | None
    apps: tuple[str, ...]


@dataclass(frozen=True)
class MinishipConfig:
    apps: Mapping[str, AppEntry]
    path: Path | None = None
    channels: Mapping[str, ChannelEntry] = field(default_factory=dict)
    freezes: tuple[FreezeWindow, ...] = ()  # [[freeze]] windows
    # the file's own zone: for what spans apps (freeze all)
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    admins: tuple[str, ...] = ()  # who may add, change and remove apps (Slack ids)
    admin_channel: str | None = None  # where apps a platform added or retired are said
    rollouts: Mapping[str, Plan] = field(default_factory=dict)  # [rollouts.<name>] plans
    data: Mapping[str, Any] = field(default_factory=dict, repr=False)  # the file as read
    file_apps: Mapping[str, AppEntry] | None = None  # the file's apps (None: ``apps``)
    source: str = "miniship.toml"

    def app(self, key: str) -> AppEntry | None:
        return self.apps.get(key)

    def zone_of(self, apps: Sequence[AppEntry]) -> ZoneInfo:
        """The zone to read and show times for ``apps`` in: the one they share, else the
        file's top-level ``timezone`` (``freeze all``, ``history all``, a group's status)."""
        zones = {a.timezone for a in apps}
        return zones.pop() if len(zones) == 1 else self.timezone

    @property
    def in_file(self) -> Mapping[str, AppEntry]:
        """The apps miniship.toml defines, as it defines them (no chat-set tags)."""
        return self.apps if self.file_apps is None else self.file_apps

    def platform_apps(self, platform: str) -> dict[str, BaseModel]:
        """Every app's config section for ``platform``."""
        return {k: a.platforms[platform] for k, a in self.apps.items() if platform in a.platforms}


class _AppSection(BaseModel):
    model_config = ConfigDict(extra="allow")  # platform sections are checked separately

    name: str | None = None
    timezone: str | None = None
    channel: str | None = Field(None, pattern=CHANNEL)
    roles: Roles = Field(default_factory=Roles)
    version_prefix: str = Field("", pattern=r"^[A-Za-z]{0,8}$")
    approvals: int = Field(0, ge=0, le=1)
    tags: tuple[str, ...] = ()

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_tags(value))


class _ChannelSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str | None = None
    digest: str | None = None


def _digest_time(text: str, where: str) -> dt.time | None:
    """``"09:30"`` → 09:30; ``"off"`` → None."""
    if text.strip().lower() == "off":
        return None
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ConfigError(f'{where}: digest must be a time like "09:30", or "off"; got {text!r}')
    return dt.time(int(match[1]), int(match[2]))


def _zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: unknown time zone {name!r} (e.g. Asia/Shanghai)") from None


def parse_config(data: Mapping[str, Any], source: str = "miniship.toml") -> MinishipConfig:
    """Validate a parsed apps file; every problem is a ConfigError naming where it is."""
    unknown = set(data) - {
        "timezone",
        "digest",
        "apps",
        "channels",
        "freeze",
        "admins",
        "admin_channel",
        "rollouts",
    }
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {', '.join(sorted(unknown))}")
    default_zone = _zone(str(data.get("timezone", DEFAULT_TIMEZONE)), source)
    apps_data = data.get("apps", {})
    if not isinstance(apps_data, Mapping):
        raise ConfigError(f"{source}: [apps] must be a table of apps")
    apps: dict[str, AppEntry] = {}
    for key, raw in apps_data.items():
        apps[key] = parse_app(key, raw, default_zone, f"{source} [apps.{key}]")
    try:
        top = _Admins.model_validate(
            {"admins": data.get("admins", []), "admin_channel": data.get("admin_channel")}
        )
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_error(exc)}") from None
    try:
        plans = read_plans(data.get("rollouts", {}), source)
    except PlanError as exc:
        raise ConfigError(str(exc)) from None
    default_digest = _digest_time(str(data.get("digest", DEFAULT_DIGEST)), source)
    return MinishipConfig(
        apps,
        channels=_channels(data.get("channels", {}), apps, default_zone, default_digest, source),
        freezes=_freezes(data.get("freeze", []), apps, source),
        timezone=default_zone,
        admins=top.admins,
        admin_channel=top.admin_channel,
        rollouts=plans,
        data=data,
        source=source,
    )


def parse_app(key: str, raw: Any, zone: ZoneInfo, where: str, source: str = "file") -> AppEntry:
    """One ``[apps.<key>]`` table — from miniship.toml, or an app's definition kept in the
    database (``source``: who defined it) — as an app; ``zone`` when it names none."""
    if not re.fullmatch(APP_KEY, key):
        raise ConfigError(f"{where}: {key!r} is not an app key (letters, digits, - and _)")
    if key.lower() == "all":
        raise ConfigError(f"{where}: `all` means every app in commands; pick another key")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a table")
    try:
        section = _AppSection.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_first_error(exc)}") from None
    known = platforms.names()
    sections: dict[str, BaseModel] = {}
    for name, value in (section.model_extra or {}).items():
        if name not in known:
            raise ConfigError(
                f"{where}: unknown key or platform {name!r} (platforms: {', '.join(known)})"
            )
        model = platforms.platform_class(name).AppConfig
        try:
            sections[name] = model.model_validate(value)
        except ValidationError as exc:
            raise ConfigError(f"{where.removesuffix(']')}.{name}]: {_first_error(exc)}") from None
    if not sections:
        raise ConfigError(f"{where}: add at least one platform section, e.g. [apps.{key}.wechat]")
    digits_only = [
        platforms.platform_class(n).display_name
        for n in sections
        if not platforms.platform_class(n).takes_version_prefix
    ]
    if section.version_prefix and digits_only:
        raise ConfigError(
            f"{where}: version_prefix {section.version_prefix!r} cannot be used: "
            f"{', '.join(digits_only)} takes digits-only versions (MAJOR.MINOR.PATCH)"
        )
    return AppEntry(
        key,
        section.name or key,
        _zone(section.timezone, where) if section.timezone else zone,
        sections,
        section.channel,
        section.roles,
        section.version_prefix,
        section.approvals,
        section.tags,
        source,
    )


def with_apps(config: MinishipConfig, defined: Sequence[DefinedApp]) -> MinishipConfig:
    """``config`` (miniship.toml) with the apps kept in the database added: the file wins
    for the apps it names (their chat-set tags count when the file gives none). A stored
    definition that no longer validates (a platform removed…) is left out and logged."""
    file = config.in_file
    apps = dict(file)
    for d in defined:
        if d.key in file:
            if d.tags and not file[d.key].tags:
                apps[d.key] = dataclasses.replace(file[d.key], tags=d.tags)
            continue
        if d.definition is None:
            continue  # a file app no longer in the file: history only
        raw = {**d.definition, "tags": list(d.tags)}
        try:
            apps[d.key] = parse_app(d.key, raw, config.timezone, f"[apps.{d.key}]", d.source)
        except ConfigError as exc:
            log.error("app %s as stored cannot be used: %s", d.key, exc)
    data = config.data
    zone, digest = config.timezone, _digest_time(str(data.get("digest", DEFAULT_DIGEST)), "")
    channels = _channels(data.get("channels", {}), apps, zone, digest, config.source)
    return dataclasses.replace(config, apps=apps, channels=channels, file_apps=file)


@dataclass(frozen=True)
class DefinedApp:
    """An app as the database keeps it (see :class:`storage.models.App`)."""

    key: str
    source: str
    definition: Mapping[str, Any] | None
    tags: tuple[str, ...] = ()


class _Admins(BaseModel):
    admins: tuple[str, ...] = ()
    admin_channel: str | None = Field(None, pattern=CHANNEL)

    @field_validator("admins")
    @classmethod
    def _ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _slack_ids(value)


class _FreezeSection(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    apps: tuple[str, ...] = ()  # none: every app
    reason: str = ""
    weekly: str | None = None  # "fri 18:00 - mon 09:00", in each app's zone
    start: dt.datetime | None = Field(None, alias="from")  # a dated range, app's zone
    end: dt.datetime | None = Field(None, alias="to")


def _freezes(raw: Any, apps: Mapping[str, AppEntry], source: str) -> tuple[FreezeWindow, ...]:
    """``[[freeze]]`` tables: weekly windows or dated ranges when nothing goes live."""
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: freeze must be a list of [[freeze]] tables")
    out: list[FreezeWindow] = []
    for n, item in enumerate(raw, 1):
        where = f"{source} [[freeze]] #{n}"
        try:
            section = _FreezeSection.model_validate(item)
        except ValidationError as exc:
            raise ConfigError(f"{where}: {_first_error(exc)}") from None
        unknown = [a for a in section.apps if a not in apps]
        if unknown:
            raise ConfigError(f"{where}: unknown app(s) {', '.join(unknown)}")
        dated = section.start is not None and section.end is not None
        if (section.weekly is None) == (not dated):
            raise ConfigError(
                f'{where}: give either weekly = "fri 18:00 - mon 09:00" or from and to'
            )
        if section.weekly is not None:
            try:
                weekly = read_weekly(section.weekly)
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            out.append(FreezeWindow(section.apps, section.reason, weekly=weekly))
            continue
        assert section.start is not None and section.end is not None
        start, end = section.start.replace(tzinfo=None), section.end.replace(tzinfo=None)
        if end <= start:
            raise ConfigError(f"{where}: to must come after from")
        out.append(FreezeWindow(section.apps, section.reason, start=start, end=end))
    return tuple(out)


def _channels(
    raw: Any,
    apps: Mapping[str, AppEntry],
    default_zone: ZoneInfo,
    default_digest: dt.time | None,
    source: str,
) -> dict[str, ChannelEntry]:
    """Every channel the apps post to (and "" for apps without one), with its settings."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: [channels] must be a table of channel ids")
    given: dict[str, tuple[ZoneInfo, dt.time | None]] = {}
    for cid, value in raw.items():
        where = f"{source} [channels.{cid}]"
        if not re.fullmatch(CHANNEL, cid):
            raise ConfigError(f"{where}: {cid!r} is not a Slack channel id (C…, G…)")
        try:
            section = _ChannelSection.model_validate(value)
        except ValidationError as exc:
            raise ConfigError(f"{where}: {_first_error(exc)}") from None
        given[cid] = (
            default_zone if section.timezone is None else _zone(section.timezone, where),
            default_digest if section.digest is None else _digest_time(section.digest, where),
        )
    members: dict[str, list[str]] = {}
    for app in apps.values():
        members.setdefault(app.channel or "", []).append(app.key)
    return {
        cid: ChannelEntry(cid, *given.get(cid, (default_zone, default_digest)), tuple(keys))
        for cid, keys in members.items()
    }


def load_config(path: Path) -> MinishipConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path} not found: copy miniship.toml from the repository or set MINISHIP_CONFIG"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    config = parse_config(data, str(path))
    return dataclasses.replace(config, path=path)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg
