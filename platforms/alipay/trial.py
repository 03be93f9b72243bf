"""The trial (experience) version: set it, wait for Alipay to package it, fetch its QR
code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from platforms.alipay.api import EXPERIENCE_CREATE, EXPERIENCE_QUERY
from platforms.alipay.versions import AlipayVersions
from platforms.base import TrialCode
from platforms.errors import BadResponse, InvalidState, NotFound, PlatformError, PlatformUnavailable
from platforms.transport import Answer

__all__ = ["AlipayTrial"]


EXP_PACKAGED = frozenset({"expVersionPackged", "expVersionPackaged"})  # sic, and as spelt right
EXP_NONE = "notExpVersion"

IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF8": "image/gif",
}


def _image_type(data: bytes, content_type: str) -> str | None:
    """The MIME type of an image, from its first bytes (else a declared ``image/*`` type)."""
    for magic, mime in IMAGE_MAGIC.items():
        if data.startswith(magic):
            return mime
    declared = content_type.split(";")[0].strip().lower()
    return declared if declared.startswith("image/") and data else None


class AlipayTrial(AlipayVersions):
    """``trial_code``."""

    async def trial_code(self, app: str, version: str | None) -> TrialCode:
        """Make ``version`` (default: the newest in development) the trial (experience)
        version, wait for Alipay to package it and fetch its QR code image."""
        if version is None:
            dev = await self._listed(app, "INIT")
            if not dev:
                raise NotFound(self.name, "", "", "no version is in development; upload one first.")
            version = str(dev[0].get("app_version"))
        params = self._version_params(app, version)

        async def set_up() -> bool:
            answer = await self._call(app, EXPERIENCE_QUERY, params, read=True)
            return str(answer.get("status", EXP_NONE)) != EXP_NONE

        detail = f"{version} is now the trial version"
        try:
            answer = await self._change(app, EXPERIENCE_CREATE, params, "trial version", set_up)
            detail = self._said(detail, answer)
        except PlatformError as exc:
            if exc.code != "CAN_NOT_SET_EXP_REPEAT":
                raise
            detail = f"{version} already was the trial version"
        packaged = await self._await_packaging(app, version, params)
        url = str(packaged["exp_qr_code_url"])
        image, mime = await self._fetch_image(url)
        return TrialCode(image, mime, version=version, url=url, detail=detail)

    async def _await_packaging(
        self, app: str, version: str, params: Mapping[str, str]
    ) -> dict[str, Any]:
        """Poll ``experience.query`` until packaged; the answer (with ``exp_qr_code_url``)."""

        async def check(_: float) -> dict[str, Any] | None:
            answer = await self._call(app, EXPERIENCE_QUERY, params, read=True)
            status = str(answer.get("status", ""))
            if status in EXP_PACKAGED:
                if not answer.get("exp_qr_code_url"):
                    raise BadResponse(
                        self.name,
                        status,
                        "",
                        "Alipay says the trial version is packaged but gives no QR code URL.",
                    )
                return answer
            if status == EXP_NONE:
                raise InvalidState(
                    self.name,
                    status,
                    "",
                    f"Alipay says {version} is not the trial version (another version may be); "
                    "cancel that one in the Alipay console and try again.",
                )
            return None

        packaged, waited = await self._poll(check, self.settings.trial_wait_seconds)
        if packaged is None:
            raise PlatformUnavailable(
                self.name,
                "expVersionPackaging",
                "",
                f"Alipay is still packaging trial version {version} after {waited:.0f} s; "
                "ask for the QR code again in a minute.",
            )
        return packaged

    async def _fetch_image(self, url: str) -> tuple[bytes, str]:
        """GET the trial QR code Alipay serves at ``url``; ``(image, MIME type)``."""
        api, request = "GET exp_qr_code_url", {"url": url}

        async def get() -> Answer:
            try:
                response = await self.sender.request("GET", url)
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                bad_url = BadResponse(
                    self.name, "", "", f"Alipay's trial QR code URL {url!r} is not usable."
                )
                raise self._http_failure(
                    exc, api, request, "the trial QR code URL", bad_url=bad_url
                ) from None
            refused = self._http_status(response, api, request, "the trial QR code URL")
            if refused is not None:
                raise refused
            return response

        response = await self.read_with_retries(get)
        mime = _image_type(response.content, response.headers.get("content-type", ""))
        self.record_exchange(
            api, request, {"content_type": mime or "", "bytes": len(response.content)}
        )
        if mime is None:
            raise BadResponse(
                self.name, "", "", "the trial QR code URL did not give an image; try again later."
            )
        return response.content, mime
