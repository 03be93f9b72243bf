"""The review: submit (sending back to development what blocks it), status and
withdraw, with Alipay's rules for what a submission carries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import unicodedata
from collections.abc import Mapping
from typing import Any

from platforms.alipay.api import AUDIT_APPLY, AUDIT_CANCEL, BUILD_QUERY, SCREENSHOT_PARTS
from platforms.alipay.config import AlipayAppConfig
from platforms.alipay.errors import _Unsigned
from platforms.alipay.reading import (
    APPROVED,
    _audit_images,
    _decided_at,
    _memos,
    _rejection,
    _status_words,
)
from platforms.alipay.versions import CONFIRMED, SUPERSEDED, AlipayVersions
from platforms.base import (
    REVIEW_IMAGES_MAX,
    ReviewImage,
    ReviewState,
    ReviewStatus,
    SubmitResult,
)
from platforms.errors import (
    AlreadyInReview,
    ConfigError,
    InvalidInput,
    InvalidState,
    NotFound,
    PlatformError,
)

__all__ = ["AlipayReview", "version_desc_length"]


VERSION_DESC_MIN, VERSION_DESC_MAX = 30, 500
SCREENSHOT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
SCREENSHOT_MAX_BYTES = 4 * 1024 * 1024  # the adapter's own check; the emulator has its own

MEMO_IN_TITLE = 150  # characters of a reviewer's memo shown in an image's title

SUBMIT_BLOCKED = frozenset(
    {"CAN_NOT_SUBMIT_WITH_AUDIT_GRAY", "CAN_NOT_SUBMIT_WITH_AUDIT", "CAN_NOT_SUBMIT_WITHOUT_INIT"}
)
"""audit.apply refusals that sending a decided version back to development may clear."""


def version_desc_length(text: str) -> int:
    """Length of ``version_desc`` as Alipay counts it: Chinese (wide) characters count 2."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


class AlipayReview(AlipayVersions):
    """``submit``, ``review_status`` and ``withdraw``."""

    def _screenshots(self, app: str, cfg: AlipayAppConfig) -> dict[str, tuple[str, bytes, str]]:
        """The configured screenshots as multipart file parts, checked before sending."""
        where = f"[apps.{app}.alipay] screenshots"
        parts: dict[str, tuple[str, bytes, str]] = {}
        for part, given in zip(SCREENSHOT_PARTS, cfg.screenshots, strict=False):
            path = given.expanduser()
            mime = SCREENSHOT_TYPES.get(path.suffix.lower())
            if mime is None:
                raise ConfigError(f"{where}: {path} is not a .png, .jpg or .jpeg file")
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise ConfigError(f"{where}: {path} does not exist") from None
            except OSError as exc:
                raise ConfigError(f"{where}: cannot read {path}: {exc.strerror}") from None
            if not data:
                raise ConfigError(f"{where}: {path} is empty")
            if len(data) > SCREENSHOT_MAX_BYTES:
                raise ConfigError(
                    f"{where}: {path} has {len(data) / 1024 / 1024:.1f} MB; Alipay takes "
                    "screenshots of at most 4 MB"
                )
            parts[part] = (path.name, data, mime)
        return parts

    async def submit(
        self, app: str, version: str, notes: str, *, expedite: bool = False
    ) -> SubmitResult:
        """Submit ``version`` for review (multipart ``audit.apply``); ref is the version.

        Sends the app's review details from its config (region, memo, test account,
        screenshots) and ``speed_up`` from ``expedite``; Alipay's word on expediting
        (``speed_up_memo``) ends up in the detail. A rejected or approved-but-unpublished
        version blocks every submission on Alipay. Another such version, and this one when
        rejected, is superseded by the new submission: it is sent back to development first
        and the detail says so. This version when already approved is refused (InvalidState:
        publish it, or withdraw it first), and a version in review or gray release still
        blocks (AlreadyInReview).
        """
        cfg = self._config(app)
        desc = "\n".join(part for part in (notes.strip(), cfg.review_notes.strip()) if part)
        length = version_desc_length(desc)
        if not VERSION_DESC_MIN <= length <= VERSION_DESC_MAX:
            advice = (
                "add detail or set review_notes for the app"
                if length < VERSION_DESC_MIN
                else "shorten the notes or review_notes"
            )
            raise InvalidInput(
                self.name,
                "",
                "",
                f"Alipay needs review notes of {VERSION_DESC_MIN}–{VERSION_DESC_MAX} characters "
                f"(Chinese characters count 2); these have {length} — {advice}.",
            )
        files = await asyncio.to_thread(self._screenshots, app, cfg)  # up to 5 × 4 MB
        fields = {
            "app_version": version,
            "version_desc": desc,
            "region_type": cfg.region_type,
            "speed_up": "true" if expedite else "false",  # Alipay's default is "true"
            "bundle_id": cfg.bundle_id,
        }
        if cfg.region_type == "LOCATION":
            fields["service_region_info"] = json.dumps(
                cfg.service_region_info, ensure_ascii=False, sort_keys=True, separators=(",", ":")
            )
        if cfg.memo:
            fields["memo"] = cfg.memo
        if cfg.test_account:
            fields["test_accout"] = cfg.test_account  # sic: the API's spelling
        if cfg.test_password is not None:
            fields["test_password"] = cfg.test_password.get_secret_value()
        shown = {k: ("***" if k == "test_password" else v) for k, v in fields.items()}
        shown.update({part: name for part, (name, _, _) in files.items()})

        async def apply() -> str:
            sent = self.clock()
            answer = await self._change(
                app,
                AUDIT_APPLY,
                fields,
                "submission",
                self._submitted(app, version, sent),
                multipart=True,
                files=files,
                shown=shown,
            )
            if answer is None:
                return f"submitted for review ({CONFIRMED})"
            detail = "submitted for review"
            if answer.get("speed_up") == "true":
                detail += " (expedited)"
            memo = str(answer.get("speed_up_memo") or "").strip()
            return f"{detail}; Alipay on expediting: {memo}" if memo else detail

        try:
            return SubmitResult(version, await apply())
        except (AlreadyInReview, InvalidState) as refused:
            if refused.code not in SUBMIT_BLOCKED:
                raise
            if isinstance(refused, _Unsigned):
                raise type(refused)(
                    refused.platform,
                    refused.code,
                    refused.platform_message,
                    f"{refused.explanation} (Alipay's refusal carried no signature, so miniship "
                    "sent no version back to development on its word.)",
                ) from None
            cleared = await self._clear_the_way(app, version, refused)
        return SubmitResult(version, f"{await apply()}; {', '.join(cleared)} first")

    def _review(self, app: str, version: str, ref: str, detail: Mapping[str, Any]) -> ReviewStatus:
        """Map ``detail.query``'s answer for ``version`` to a :class:`ReviewStatus`, with the
        image URLs of its review records as ``screenshots``."""
        status = self._reading(app, version, ref, detail)
        shots = tuple(url for url, _, _ in _audit_images(detail))
        return dataclasses.replace(status, screenshots=shots) if shots else status

    def _reading(self, app: str, version: str, ref: str, detail: Mapping[str, Any]) -> ReviewStatus:
        """The state, reason and words of ``detail.query``'s answer for ``version``."""
        status = str(detail.get("status", ""))
        decided = _decided_at(detail.get("gmt_audit_end"))
        words = _status_words(status)
        if status == "INIT":
            state = ReviewState.WITHDRAWN if ref else ReviewState.NOT_SUBMITTED
            return ReviewStatus(state, version, ref, detail=words)
        if status == "AUDITING":
            return ReviewStatus(ReviewState.IN_REVIEW, version, ref, detail=words)
        if status == "AUDIT_REJECT":
            reason = _rejection(detail)
            return ReviewStatus(ReviewState.REJECTED, version, ref, reason, decided, words)
        if status == "GRAY":
            percent = self._gray_plan(app, version, detail).percent
            if percent is not None:
                words = f"{words}, {percent}% of users"
            return ReviewStatus(ReviewState.GRAY, version, ref, decided_at=decided, detail=words)
        if status in APPROVED:
            promotion = "; ".join(_memos(detail.get("promote_audit_record")))
            if promotion:
                words = f"{words}; the marketing review says: {promotion}"
            if detail.get("can_release") == "false":
                words = f"{words}; Alipay does not allow publishing it (can_release false)"
            return ReviewStatus(
                ReviewState.APPROVED, version, ref, decided_at=decided, detail=words
            )
        if status == "RELEASE":
            return ReviewStatus(
                ReviewState.RELEASED, version, ref, decided_at=decided, detail=words
            )
        return ReviewStatus(ReviewState.UNKNOWN, version, ref, decided_at=decided, detail=words)

    async def review_status(self, app: str, version: str, ref: str) -> ReviewStatus:
        """Where ``version`` stands (``detail.query``); a version Alipay does not know yet may
        still be building (``build.query``)."""
        try:
            detail = await self._detail(app, version)
        except NotFound:
            return await self._unlisted(app, version, ref)
        return self._review(app, version, ref, detail)

    async def review_images(self, app: str, version: str, ref: str) -> list[ReviewImage]:
        """The images of ``version``'s review records (``detail.query``:
        ``base_audit_record`` / ``promote_audit_record``, their ``audit_images`` and each
        memo's ``memo_image_list``), at most :data:`REVIEW_IMAGES_MAX`, as links only: Alipay
        serves them from its own hosts and the adapter fetches nothing from a URL an answer
        names, so ``image`` stays empty and whoever shows them posts the link. URLs that are
        not http(s) are left out. Empty when Alipay does not know the version."""
        try:
            detail = await self._detail(app, version)
        except NotFound:
            return []
        chosen = _audit_images(detail)[:REVIEW_IMAGES_MAX]
        images: list[ReviewImage] = []
        for n, (url, review, memo) in enumerate(chosen, 1):
            title = f"Alipay {review} review image {n} of {len(chosen)}"
            if memo:
                title += f": {memo if len(memo) <= MEMO_IN_TITLE else memo[:MEMO_IN_TITLE] + '…'}"
            images.append(ReviewImage(url=url, title=title, source=url))
        return images

    async def _unlisted(self, app: str, version: str, ref: str) -> ReviewStatus:
        """The status of a version ``detail.query`` does not know: building, failed or unknown."""
        unknown = ReviewStatus(
            ReviewState.UNKNOWN, version, ref, detail="Alipay does not know this version"
        )
        try:
            build = await self._call(
                app, BUILD_QUERY, self._version_params(app, version), read=True
            )
        except PlatformError:
            return unknown
        code = str(build.get("build_status", ""))
        failed = self._build_failure(build)
        if failed:
            return ReviewStatus(
                ReviewState.UNKNOWN,
                version,
                ref,
                detail=f"Alipay's build of it {failed} (build_status {code}); upload a higher "
                "version",
            )
        if build.get("need_rotation") == "true":
            return ReviewStatus(
                ReviewState.NOT_SUBMITTED,
                version,
                ref,
                detail=f"Alipay is still building it (build_status {code or '?'})",
            )
        return unknown

    async def withdraw(self, app: str, version: str, ref: str) -> str:
        """Pull ``version`` back: out of review (``audit.cancel``), or, when it was already
        approved or rejected, back to development (``audited.cancel``)."""
        status, _ = await self._status(app, version)
        if status == "AUDITING":
            params = self._version_params(app, version)
            shows = self._shows(app, version, "INIT")
            answer = await self._change(app, AUDIT_CANCEL, params, "withdrawal", shows)
            return self._said(f"withdrew {version} from review; it is back in development", answer)
        if status in SUPERSEDED:
            answer = await self._back_to_development(app, version)
            return self._said(f"sent {version} ({SUPERSEDED[status]}) back to development", answer)
        why = (
            "end the gray release first (`gray … stop`)"
            if status == "GRAY"
            else "only a version in review, approved or rejected can be withdrawn"
        )
        raise self._refuse(version, status, why + ".")
