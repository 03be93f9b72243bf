"""A rejection's screenshots: the media ids an audit's status names, fetched as images.

WeChat answers get_auditstatus of a rejected audit with ``screenshot`` (get_latest_auditstatus
and the audit push spell it ``ScreenShot``): media ids joined by ``|``, fetched "via
get-permanent-material with ATOK" (fact sheet §4.8), i.e. ``POST
/cgi-bin/material/get_material`` with ``{"media_id"}``, which answers with the image itself or
with a JSON error (40007 ``invalid media_id``).
"""

from __future__ import annotations

import logging

from platforms.base import REVIEW_IMAGES_MAX, ReviewImage
from platforms.errors import NotFound, PlatformError
from platforms.wechat.api import GET_AUDITSTATUS, GET_MATERIAL
from platforms.wechat.reading import _audit_from
from platforms.wechat.versions import WeChatVersions

__all__ = ["WeChatScreenshots"]

log = logging.getLogger(__name__)


class WeChatScreenshots(WeChatVersions):
    """``review_images``."""

    async def review_images(self, app: str, version: str, ref: str) -> list[ReviewImage]:
        """The screenshots WeChat gave with audit ``ref`` (get_auditstatus ``screenshot``),
        fetched as permanent material: at most :data:`REVIEW_IMAGES_MAX`, in WeChat's order.
        A media id that cannot be fetched is left out with a warning. Empty when WeChat
        gives none, or does not know the audit (85012)."""
        self._platform_app(app)
        auditid = self._auditid(ref)
        try:
            data = await self._call(app, "POST", GET_AUDITSTATUS, {"auditid": auditid}, read=True)
        except NotFound as exc:
            if exc.code != "85012":
                raise
            return []
        audit = _audit_from(data, f"POST {GET_AUDITSTATUS}", auditid)
        chosen = audit.screenshots[:REVIEW_IMAGES_MAX]
        images: list[ReviewImage] = []
        for n, media_id in enumerate(chosen, 1):
            image = await self._screenshot(app, ref, media_id)
            if image is not None:
                title = f"WeChat review screenshot {n} of {len(chosen)} (audit {ref})"
                images.append(ReviewImage(image[0], image[1], title=title, source=media_id))
        return images

    async def _screenshot(self, app: str, ref: str, media_id: str) -> tuple[bytes, str] | None:
        """One screenshot's ``(bytes, MIME type)``; ``None`` (logged) when WeChat refuses it
        or answers with something that is not an image."""
        try:
            data = await self._call(
                app, "POST", GET_MATERIAL, {"media_id": media_id}, read=True, image=True
            )
        except PlatformError as exc:
            log.warning(
                "WeChat screenshot %s of audit %s left out: %s", media_id, ref, exc.describe()
            )
            return None
        return data["image"], data["mime"]
