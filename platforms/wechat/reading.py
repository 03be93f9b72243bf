"""How WeChat's answers are read: the fields of each answer turned into small records
and the shared value objects of :mod:`platforms.base`, and the review states in words.

Nothing here sends a request; :mod:`platforms.wechat.wire` hands the answers over.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from platforms.base import GrayPlan, ReviewState, Template
from platforms.errors import BadResponse, PlatformError

__all__ = ["APPROVED", "DELAYED", "IN_REVIEW", "REJECTED", "WITHDRAWN", "as_int", "media_ids"]


APPROVED, REJECTED, IN_REVIEW, WITHDRAWN, DELAYED = 0, 1, 2, 3, 4

_STATES: dict[int, ReviewState] = {
    APPROVED: ReviewState.APPROVED,
    REJECTED: ReviewState.REJECTED,
    IN_REVIEW: ReviewState.IN_REVIEW,
    WITHDRAWN: ReviewState.WITHDRAWN,
    DELAYED: ReviewState.DELAYED,
}

_STATUS_WORDS: dict[int, str] = {
    APPROVED: "approved (status 0)",
    REJECTED: "rejected (status 1)",
    IN_REVIEW: "under review (status 2)",
    WITHDRAWN: "withdrawn (status 3)",
    DELAYED: "under review, delayed (status 4)",
}

_VERSION_STATES: dict[int, str] = {
    APPROVED: "approved",
    REJECTED: "rejected",
    IN_REVIEW: "in review",
    WITHDRAWN: "development",  # pulled out of review: the trial version again
    DELAYED: "in review",
}

_GRAY_STATES = {0: "running", 1: "running", 2: "paused"}
"""getgrayreleaseplan's status: 0 is "initial", not running; it counts as running only when
something was released (a percentage, or members first), which _gray_from checks. 3 finished
and 4 deleted are over."""


def _status_words(status: int) -> str:
    return _STATUS_WORDS.get(status, f"in an unknown state (status {status})")


@dataclass(frozen=True)
class _Audit:
    """One review as get_auditstatus / get_latest_auditstatus describe it."""

    auditid: int
    status: int
    reason: str = ""
    screenshots: tuple[str, ...] = ()  # media ids of the rejection's screenshots
    user_version: str | None = None


@dataclass(frozen=True)
class _Kept:
    """One version in get_history_version's version_list."""

    version: str
    app_version: int | None
    description: str = ""
    commit_time: int | None = None


@dataclass(frozen=True)
class _Info:
    """getversioninfo: the live and the trial version."""

    live: str | None = None
    live_at: int | None = None
    live_desc: str = ""
    trial: str | None = None
    trial_at: int | None = None
    trial_desc: str = ""


def _bad(api: str, what: str) -> BadResponse:
    return BadResponse("wechat", "", "", f"WeChat's answer to {api} is malformed: {what}.")


def _cannot_tell(why: str) -> PlatformError:
    """Raised by a confirmation check when WeChat's answers cannot say whether a change
    happened: :meth:`Platform.confirm_change` then leaves the outcome unknown."""
    return PlatformError("wechat", "", "", f"WeChat's answers cannot tell: {why}.")


def as_int(value: object) -> int | None:
    """An id or code given as a number or as a string of digits (both are seen).

    Shared with the emulator, which reads the same ids from requests.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def media_ids(value: object) -> tuple[str, ...]:
    """The media ids in a ``screenshot`` / ``ScreenShot`` value: pipe-separated text (ids
    may also come as a number, or a list), blanks and repeats left out; ``()`` for none.

    Shared with whoever reads the audit push's ``ScreenShot``.

        >>> media_ids("xx| yy||xx")
        ('xx', 'yy')
    """
    parts = value if isinstance(value, list | tuple) else [value]
    found: list[str] = []
    for part in parts:
        for media_id in (_text(part) or "").split("|"):
            media_id = media_id.strip()
            if media_id and media_id not in found:
                found.append(media_id)
    return tuple(found)


def _int_field(data: Mapping[str, Any], key: str, api: str) -> int:
    value = as_int(data.get(key))
    if value is None:
        raise _bad(api, f"no usable {key}")
    return value


def _text(value: object) -> str | None:
    """A version or message given as a string or number; ``None`` when absent or empty."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        return str(value) or None
    return None


def _field(data: Mapping[str, Any], key: str) -> Any:
    """``data[key]`` matching the key case-insensitively (``screenshot`` / ``ScreenShot``)."""
    if key in data:
        return data[key]
    lowered = key.lower()
    for k, v in data.items():
        if isinstance(k, str) and k.lower() == lowered:
            return v
    return None


def _when(value: object) -> datetime | None:
    """Unix seconds (number or digits) as aware UTC; ``None`` when absent or zero."""
    seconds = as_int(value)
    if not seconds or seconds < 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _audit_from(data: Mapping[str, Any], api: str, auditid: int | None = None) -> _Audit:
    found = auditid if auditid is not None else _int_field(data, "auditid", api)
    return _Audit(
        auditid=found,
        status=_int_field(data, "status", api),
        reason=_text(_field(data, "reason")) or "",
        screenshots=media_ids(_field(data, "screenshot")),
        user_version=_text(data.get("user_version")),
    )


def _section(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    part = data.get(key)
    return part if isinstance(part, Mapping) else {}


def _info_from(data: Mapping[str, Any]) -> _Info:
    live, trial = _section(data, "release_info"), _section(data, "exp_info")
    return _Info(
        live=_text(live.get("release_version")),
        live_at=as_int(live.get("release_time")),
        live_desc=_text(live.get("release_desc")) or "",
        trial=_text(trial.get("exp_version")),
        trial_at=as_int(trial.get("exp_time")),
        trial_desc=_text(trial.get("exp_desc")) or "",
    )


def _kept_from(data: Mapping[str, Any]) -> list[_Kept]:
    """get_history_version's entries, newest first (by app_version, then commit time)."""
    found: list[_Kept] = []
    entries = data.get("version_list")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        version = _text(entry.get("user_version"))
        if version is None:
            continue
        found.append(
            _Kept(
                version=version,
                app_version=as_int(entry.get("app_version")),
                description=_text(entry.get("user_desc")) or "",
                commit_time=as_int(entry.get("commit_time")),
            )
        )
    found.sort(key=lambda k: (k.app_version or 0, k.commit_time or 0), reverse=True)
    return found


def _recommitted(before: _Info, now: _Info, version: str) -> bool:
    """Whether getversioninfo shows a commit of ``version`` made after ``before`` was read.

    A re-upload of the trial version itself shows by exp_time (it changes with every commit)
    or exp_desc moving. When WeChat gives neither, nothing tells: the upload's outcome then
    stays unknown rather than being confirmed by the older commit.
    """
    if now.trial != version:
        return False
    if before.trial != version:
        return True
    if (before.trial_at, before.trial_desc) != (now.trial_at, now.trial_desc):
        return True
    if now.trial_at is None:
        raise _cannot_tell(f"{version} was the trial version already, and no exp_time shows")
    return False


def _new_review(before: _Audit | None, latest: _Audit | None, version: str) -> bool:
    """Whether ``latest`` is a review submitted after ``before`` was read: another auditid,
    pending, and of ``version`` (when WeChat says which version; it may not)."""
    return (
        latest is not None
        and (before is None or latest.auditid != before.auditid)
        and latest.status in (IN_REVIEW, DELAYED)
        and latest.user_version in (None, version)
    )


NOTHING_LISTED = (
    "WeChat lists no versions to roll back to: its version history comes back empty, as it "
    "does after a rollback (no second rollback until a new version is published) or when no "
    "earlier version was released through this platform. If mp.weixin.qq.com → 管理 → "
    "版本管理 offers an earlier version, roll back there"
)
"""Why nothing can be rolled back to when get_history_version lists no versions at all."""


def _rollback_targets(kept: Sequence[_Kept], live: str | None) -> tuple[list[_Kept], str]:
    """The kept versions a rollback can go to (newest first), and why there is none.

    The sheet does not say whether version_list holds the live version too: when it does,
    only versions older than the live one count, and none when the live one is not the
    newest (it is itself a rollback: WeChat allows no second one, 87012).

    Nor does it say what the list holds after a rollback. WeChat's page calls it the
    versions one can roll back to, and it is seen empty after one (:data:`NOTHING_LISTED`);
    when it still lists them, the live version's place in it tells (above).
    """
    if live is None:
        return [], "nothing is live on WeChat"
    if not kept:
        return [], NOTHING_LISTED
    position = next((n for n, k in enumerate(kept) if k.version == live), None)
    if position is not None and position > 0:
        return [], (
            f"the live version {live} is itself a rollback; WeChat allows no second rollback "
            "until a new version is published"
        )
    older = kept[position + 1 :] if position is not None else list(kept)
    targets: list[_Kept] = []
    for k in older:
        if k.version != live and k.version not in {t.version for t in targets}:
            targets.append(k)
    return targets, "" if targets else "WeChat keeps no earlier version of this mini program"


def _gray_from(data: Mapping[str, Any], version: str | None) -> GrayPlan | None:
    """The staged release getgrayreleaseplan describes, when one is running or paused."""
    plan = _section(data, "gray_release_plan")
    status, percent = as_int(plan.get("status")), as_int(plan.get("gray_percentage"))
    if status not in _GRAY_STATES or percent is None:
        return None
    if percent <= 0 and not (
        plan.get("support_debuger_first") or plan.get("support_experiencer_first")
    ):
        return None  # status 0 "initial" with nothing released: no plan
    return GrayPlan(
        percent=percent,
        version=version,
        state=_GRAY_STATES[status],
        since=_when(plan.get("create_timestamp")),
    )


def _image_type(content_type: str, content: bytes) -> str | None:
    """The image's MIME type: from Content-Type when it names an image, else the magic bytes."""
    given = content_type.split(";")[0].strip().lower()
    if given.startswith("image/"):
        return given
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return None


def _image_complete(mime: str, content: bytes) -> bool:
    """False for a JPEG or PNG cut short (its end marker missing)."""
    if mime == "image/jpeg":
        return content.rstrip(b"\x00").endswith(b"\xff\xd9")
    if mime == "image/png":
        return b"IEND" in content[-16:]
    return bool(content)


def _template_from(entry: Mapping[str, Any], *, draft: bool) -> Template | None:
    ident = as_int(entry.get("draft_id" if draft else "template_id"))
    if ident is None:
        return None
    return Template(
        id=str(ident),
        version=_text(entry.get("user_version")) or "",
        description=_text(entry.get("user_desc")) or "",
        created_at=_when(entry.get("create_time")),
        source=_text(entry.get("source_miniprogram"))
        or _text(entry.get("source_miniprogram_appid"))
        or "",
        developer=_text(entry.get("developer")) or "",
        draft=draft,
    )


def _granted(authorization: Mapping[str, Any]) -> tuple[int, ...]:
    """The permission-set ids in ``func_info[].funcscope_category.id``."""
    ids: list[int] = []
    entries = authorization.get("func_info")
    for entry in entries if isinstance(entries, list) else []:
        scope = entry.get("funcscope_category") if isinstance(entry, Mapping) else None
        ident = as_int(scope.get("id")) if isinstance(scope, Mapping) else None
        if ident is not None and ident not in ids:
            ids.append(ident)
    return tuple(ids)
