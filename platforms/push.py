"""What a platform push says, as platform-neutral values, so handlers never parse vendor payloads.

Two vendors push to us:

- WeChat posts encrypted XML (decrypted by :class:`platforms.wechat.crypto.WeChatCrypto`)
  to the message URL for audit results (``weapp_audit_success`` / ``_fail`` / ``_delay``,
  fact sheet wechat-api.md §7) and to the authorization-event URL every 10 minutes for the
  ``component_verify_ticket`` (§3.1). :func:`wechat_events` reads the decrypted fields.
- Alipay posts form fields (verified with :func:`platforms.alipay.sign.verify_notify`) for
  ``alipay.open.mini.version.audit.passed`` / ``.rejected`` (alipay-api.md §4).
  :func:`alipay_events` reads them.

Both return a list of :class:`PushEvent` — empty for pushes this bot does not act on — and
raise :class:`PushRejected` for a push that claims to be one we act on but is malformed.

A genuine push can be sent again by anyone who saw it. Two things tell a replay: the time
the platform signed into the push (:func:`check_fresh`: older than :data:`PUSH_WINDOW` is
:class:`PushStale`), and, within that window, the push's name (:func:`push_digest`, a
digest of what the platform signed), which the receiver records once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

__all__ = [
    "ALIPAY_PASSED",
    "ALIPAY_REJECTED",
    "PUSH_SKEW",
    "PUSH_WINDOW",
    "PushEvent",
    "PushKind",
    "PushRejected",
    "PushRequest",
    "PushStale",
    "alipay_events",
    "check_fresh",
    "push_digest",
    "wechat_events",
]

PushKind = Literal["approved", "rejected", "delayed", "verify_ticket", "authorized", "unauthorized"]

ALIPAY_PASSED = "alipay.open.mini.version.audit.passed"
ALIPAY_REJECTED = "alipay.open.mini.version.audit.rejected"

_WECHAT_AUDIT: dict[str, tuple[PushKind, str]] = {
    "weapp_audit_success": ("approved", "SuccTime"),
    "weapp_audit_fail": ("rejected", "FailTime"),
    "weapp_audit_delay": ("delayed", "DelayTime"),
}

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)

PUSH_WINDOW = timedelta(hours=1)
"""How long after the time it carries a push is still taken. WeChat gives up retrying
within seconds; a later Alipay retry is answered as handled and the watcher's next poll
reads the same decision, so nothing is lost. The receiver remembers each push's name at
least this long (plus :data:`PUSH_SKEW`), so every replay is caught by one or the other."""

PUSH_SKEW = timedelta(minutes=5)
"""How far ahead of this machine's clock a push may be dated (the clocks differ a little)."""


class PushRejected(Exception):
    """A push that must not be acted on; ``reason`` says why (safe to log, holds no secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PushStale(PushRejected):
    """A push that verified but was sent outside :data:`PUSH_WINDOW` of our clock: a
    replay, or a retry too late to tell from one. The receiver answers it as handled (so
    the platform stops sending it) and acts on nothing."""


@dataclass(frozen=True)
class PushEvent:
    """One thing a platform told us by push.

    ``mini_program`` is WeChat's ``ToUserName`` original id (``gh_…``) or the ``$APPID$``
    path appid when the caller knows it, the component appid for a verify ticket, and
    Alipay's ``mini_app_id``. ``at`` is aware UTC. ``ticket`` is the
    ``component_verify_ticket`` value — a secret, so it is left out of ``repr``. ``app`` is
    the miniship app key, filled in by the adapter's ``read_push`` (``None`` when no
    configured app matches, and for verify tickets).
    """

    platform: str
    kind: PushKind
    mini_program: str
    version: str | None
    reason: str = ""
    at: datetime | None = None
    ticket: str | None = field(default=None, repr=False)
    app: str | None = None
    """The miniship app key the push is about, when the adapter could tell (``read_push``)."""
    push_id: str = ""
    """The name of the push this event came in (:func:`push_digest`), set by ``read_push``:
    the same for every replay of that push, different for every push the platform sends."""


@dataclass(frozen=True)
class PushRequest:
    """A push as our HTTP endpoint received it, handed to ``Platform.read_push``.

    ``path`` holds the path parameters (``{"appid": "wx…"}`` from ``/push/wechat/{appid}``),
    ``query`` the query string, ``body`` the raw request body.
    """

    path: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    content_type: str = ""


# --------------------------------------------------------------------------- helpers


def _unix(text: str | None, name: str, *, millis: bool = False) -> datetime | None:
    """Unix seconds (or milliseconds) text as an aware UTC datetime; ``None`` when absent."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    if not value.isascii() or not value.isdigit():
        raise PushRejected(f"{name} is not a unix time: {value[:32]!r}")
    number = int(value)
    try:
        return datetime.fromtimestamp(number / 1000 if millis else number, UTC)
    except (OverflowError, OSError, ValueError):
        raise PushRejected(f"{name} is out of range: {value[:32]!r}") from None


def check_fresh(text: str | None, name: str, now: float, *, millis: bool = False) -> None:
    """Refuse a push whose signed time ``text`` (unix seconds, or milliseconds) is older
    than :data:`PUSH_WINDOW` or further ahead than :data:`PUSH_SKEW` at ``now`` (unix
    seconds). A push that carries no time passes: only its recorded name tells a replay.

    Raises:
        PushStale: the push was sent outside the window.
        PushRejected: ``text`` is not a unix time.
    """
    sent = _unix(text, name, millis=millis)
    if sent is None:
        return
    at = datetime.fromtimestamp(now, UTC)
    if sent < at - PUSH_WINDOW:
        raise PushStale(
            f"{name} {sent:%Y-%m-%d %H:%M:%S} UTC is more than {_span(PUSH_WINDOW)} ago"
        )
    if sent > at + PUSH_SKEW:
        raise PushStale(
            f"{name} {sent:%Y-%m-%d %H:%M:%S} UTC is more than {_span(PUSH_SKEW)} ahead of "
            "this machine's clock"
        )


def push_digest(platform: str, *signed: str) -> str:
    """A push's name: a digest of exactly the parts the platform signed, so a replay gets
    the same name however its unsigned parts are dressed up, and two pushes never share
    one. Each part is length-prefixed, so no two lists of parts run together."""
    digest = hashlib.sha256(platform.encode("utf-8"))
    for part in signed:
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def _span(span: timedelta) -> str:
    minutes = int(span.total_seconds()) // 60
    return f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"


def _reason(text: str | None) -> str:
    """A vendor reason as plain text: ``<br>`` becomes a newline, outer whitespace goes."""
    return _BR.sub("\n", text or "").strip()


# --------------------------------------------------------------------------- WeChat


_WECHAT_GRANTS: dict[str, PushKind] = {
    "authorized": "authorized",
    "updateauthorized": "authorized",  # what it granted changed: still authorized
    "unauthorized": "unauthorized",
}
"""Authorization events on the authorization-event URL (fact sheet §3.1): fields
``AuthorizerAppid``, ``AuthorizationCode`` …"""


def wechat_events(fields: Mapping[str, str], *, appid: str | None = None) -> list[PushEvent]:
    """Events in a decrypted WeChat push (the flat dict from ``WeChatCrypto.decrypt_push``).

    ``appid`` is the authorizer appid from the ``$APPID$`` path segment when the message URL
    has one; it then names the mini program instead of ``ToUserName`` (the XML carries no
    appid, fact sheet §7).

    Raises:
        PushRejected: a ticket push without a ticket, an audit event without a mini
            program, or a time that is not unix seconds.
    """
    if fields.get("InfoType") == "component_verify_ticket":
        ticket = (fields.get("ComponentVerifyTicket") or "").strip()
        if not ticket:
            raise PushRejected("component_verify_ticket push without ComponentVerifyTicket")
        return [
            PushEvent(
                platform="wechat",
                kind="verify_ticket",
                mini_program=(fields.get("AppId") or "").strip(),
                version=None,
                at=_unix(fields.get("CreateTime"), "CreateTime"),
                ticket=ticket,
            )
        ]
    info = fields.get("InfoType")
    if info in _WECHAT_GRANTS:
        authorizer = (fields.get("AuthorizerAppid") or "").strip()
        if not authorizer:
            raise PushRejected(f"{info} push without AuthorizerAppid")
        return [
            PushEvent(
                platform="wechat",
                kind=_WECHAT_GRANTS[info],
                mini_program=authorizer,
                version=None,
                at=_unix(fields.get("CreateTime"), "CreateTime"),
            )
        ]
    if fields.get("MsgType", "event") != "event":
        return []
    audit = _WECHAT_AUDIT.get(fields.get("Event", ""))
    if audit is None:
        return []
    kind, time_field = audit
    mini_program = (appid or fields.get("ToUserName") or "").strip()
    if not mini_program:
        raise PushRejected(f"{fields.get('Event')} push names no mini program")
    at = _unix(fields.get(time_field), time_field) or _unix(fields.get("CreateTime"), "CreateTime")
    return [
        PushEvent(
            platform="wechat",
            kind=kind,
            mini_program=mini_program,
            version=None,
            reason="" if kind == "approved" else _reason(fields.get("Reason")),
            at=at,
        )
    ]


# --------------------------------------------------------------------------- Alipay


def _memos(value: Any) -> list[str]:
    """Memo texts of a ``base_audit_reason`` / ``promote_audit_reason`` (object or JSON)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value] if value.strip() else []
    if not isinstance(value, dict):
        return []
    memos = value.get("memos")
    if not isinstance(memos, list):
        return []
    return [
        m["memo"].strip()
        for m in memos
        if isinstance(m, dict) and isinstance(m.get("memo"), str) and m["memo"].strip()
    ]


def alipay_events(params: Mapping[str, str]) -> list[PushEvent]:
    """Events in a (verified) Alipay message-service push.

    The rejection reason is ``audit_reason``; when that is empty, the memos of
    ``base_audit_reason`` and ``promote_audit_reason`` (the sheet's field list is from
    third-party handlers, so both readings are accepted).

    Raises:
        PushRejected: ``biz_content`` is not a JSON object with ``mini_app_id``, or
            ``utc_timestamp`` is not milliseconds since the epoch.
    """
    method = params.get("msg_method")
    if method == ALIPAY_PASSED:
        kind: PushKind = "approved"
    elif method == ALIPAY_REJECTED:
        kind = "rejected"
    else:
        return []
    try:
        biz = json.loads(params.get("biz_content") or "")
    except ValueError:
        raise PushRejected(f"{method}: biz_content is not JSON") from None
    if not isinstance(biz, dict):
        raise PushRejected(f"{method}: biz_content is not a JSON object")
    mini_app_id = biz.get("mini_app_id")
    if not isinstance(mini_app_id, str | int) or not str(mini_app_id).strip():
        raise PushRejected(f"{method}: biz_content has no mini_app_id")
    version = biz.get("mini_app_version")
    reason = ""
    if kind == "rejected":
        audit_reason = biz.get("audit_reason")
        reason = _reason(audit_reason if isinstance(audit_reason, str) else "")
        if not reason:
            memos = _memos(biz.get("base_audit_reason")) + _memos(biz.get("promote_audit_reason"))
            reason = "\n".join(memos)
    return [
        PushEvent(
            platform="alipay",
            kind=kind,
            mini_program=str(mini_app_id).strip(),
            version=str(version) if isinstance(version, str | int) and str(version) else None,
            reason=reason,
            at=_unix(params.get("utc_timestamp"), "utc_timestamp", millis=True),
        )
    ]
