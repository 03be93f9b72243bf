"""How WeChat is spoken to: one JSON (or image) request, its answer read into the
answer object or the typed error, and the shape of a read (asked again while WeChat is
busy) and of a change (sent once; an unclear answer is then checked).

The tokens those requests carry are kept in :mod:`platforms.wechat.tokens`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx

from platforms.base import Platform, scrub_answer
from platforms.errors import (
    ConfigError,
    InvalidState,
    OutcomeUnknown,
    PlatformError,
    PlatformUnavailable,
    Unsupported,
)
from platforms.transport import Answer
from platforms.wechat.api import NO_ERRCODE, _json
from platforms.wechat.config import _AppConfig, _Settings
from platforms.wechat.errors import error_for
from platforms.wechat.reading import _bad, _image_complete, _image_type, _text, as_int

__all__ = ["WeChatWire"]

T = TypeVar("T")


class WeChatWire(Platform):
    """The exchange with WeChat, below every operation of :class:`WeChatPlatform`."""

    settings: _Settings

    # -- the apps the calls are for ----------------------------------------------------

    def _config(self, app: str) -> _AppConfig:
        cfg: _AppConfig = self.app(app)
        return cfg

    def _platform_app(self, app: str) -> _AppConfig:
        """The config of an app released through the third-party platform; apps owned
        directly get :class:`Unsupported` saying where to do it instead."""
        cfg = self._config(app)
        if cfg.direct:
            raise Unsupported(
                self.name,
                "",
                "",
                f"{app} is owned directly (its code is uploaded with miniprogram-ci), and "
                "WeChat offers no API to submit, review, publish or roll back such a mini "
                "program: do it in mp.weixin.qq.com → 管理 → 版本管理 (version management), "
                f"or authorize the mini program to miniship's third-party platform with "
                f"`connect {app} wechat` and give it a template_id instead of project_path.",
            )
        return cfg

    def _refused(
        self, text: str, kind: type[PlatformError] = InvalidState, code: str = ""
    ) -> PlatformError:
        """The error for a step miniship refuses before asking WeChat to do it; ``text``
        says why and what to do instead."""
        return kind(self.name, code, "", text)

    # -- the exchange ------------------------------------------------------------------

    async def _http(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        note: Callable[..., None],
    ) -> Answer:
        """One HTTP request; transport failures become platform errors (no URL, no token)."""
        api = f"{method} {path}"
        headers: dict[str, str] = {}
        content: bytes | None = None
        if body is not None:
            content = _json(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            url = self.settings.api_base + path
            return await self.sender.request(
                method,
                f"{url}?{urlencode(query)}" if query else url,
                content=content,
                headers=headers,
            )
        except httpx.TimeoutException:
            note(error="timed out")
            raise PlatformUnavailable(
                self.name, "", "", f"WeChat did not answer {api} in time; try again later."
            ) from None
        except httpx.InvalidURL:
            # the exception text may carry the URL with its token: only its type is shown
            note(error="InvalidURL")
            raise ConfigError(
                f"WECHAT_API_BASE {self.settings.api_base!r} does not make a valid URL for "
                f"{api}; set it to an http(s) URL such as https://api.weixin.qq.com"
            ) from None
        except httpx.HTTPError as exc:
            # the exception text may carry the URL with its token: only its type is shown
            note(error=type(exc).__name__)
            raise PlatformUnavailable(
                self.name,
                "",
                "",
                f"could not reach WeChat ({type(exc).__name__}); try again later.",
            ) from None

    def _answer(
        self,
        api: str,
        response: Answer,
        note: Callable[..., None],
        *,
        errcode_optional: bool = False,
    ) -> dict[str, Any]:
        """The answer object when its errcode is 0 (or absent, where ``errcode_optional``:
        the token APIs); the typed error otherwise."""
        status = response.status_code
        http = f"HTTP {status}"
        try:
            data = scrub_answer(response.json())  # errmsg may echo what was sent
        except ValueError:
            note(error=f"{http}, the answer is not JSON")
            raise PlatformUnavailable(
                self.name,
                http if status != 200 else "",
                "",
                f"WeChat answered {api} with something that is not JSON ({http}); try again later.",
            ) from None
        if status >= 500:
            note(data if isinstance(data, dict) else None, error=http)
            raise PlatformUnavailable(
                self.name, http, "", f"WeChat answered {api} with {http}; try again later."
            )
        if not isinstance(data, dict):
            note(error="the answer is not a JSON object")
            raise _bad(api, "not a JSON object")
        note(data)
        if "errcode" not in data:
            if status != 200:
                raise _bad(api, f"{http} without an errcode")
            if not errcode_optional:
                raise _bad(api, "no errcode")
            return data  # the token APIs answer without errcode on success
        errcode = as_int(data["errcode"])
        if errcode is None:
            raise _bad(api, f"errcode {data['errcode']!r} is not a number")
        if errcode != 0:
            raise error_for(errcode, _text(data.get("errmsg")) or "")
        return data

    async def _exchange(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
    ) -> tuple[str, Callable[..., None], Answer]:
        """One request, and what reading its answer needs: the API's name and ``note``,
        which records the exchange (secrets masked) with the answer or error given."""
        api = f"{method} {path}"
        shown = {**(query or {}), **(body or {})}
        started = time.perf_counter()

        def note(answer: Mapping[str, Any] | None = None, error: str = "") -> None:
            self.record_exchange(api, shown, answer, error, time.perf_counter() - started)

        return api, note, await self._http(method, path, query, body, note)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One JSON request; the answer object when its errcode is 0 (or absent, for the
        :data:`NO_ERRCODE` APIs).

        Every exchange is recorded with secrets masked; tokens only travel in the query.
        """
        api, note, response = await self._exchange(method, path, query, body)
        return self._answer(api, response, note, errcode_optional=path in NO_ERRCODE)

    async def _send_image(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A request answered with an image (get_qrcode): ``{"image": bytes, "mime": str}``.

        An answer starting with ``{`` is WeChat's JSON error, whatever its Content-Type
        (image/jpeg is documented; text/plain and application/json are both seen).
        """
        api, note, response = await self._exchange(method, path, query, body)
        content = response.content
        if content.lstrip()[:1] == b"{":
            self._answer(api, response, note)  # raises the errcode's error
            raise _bad(api, "a JSON answer instead of an image")
        if response.status_code >= 500:
            note(error=f"HTTP {response.status_code}")
            raise PlatformUnavailable(
                self.name,
                f"HTTP {response.status_code}",
                "",
                f"WeChat answered {api} with HTTP {response.status_code}; try again later.",
            )
        mime = _image_type(response.headers.get("content-type", ""), content)
        if mime is None or response.status_code != 200:
            note(error=f"HTTP {response.status_code}, not an image")
            raise _bad(api, "neither an image nor an error")
        if not _image_complete(mime, content):
            note(error="the image is cut short")
            raise PlatformUnavailable(
                self.name, "", "", f"WeChat's answer to {api} was cut short; try again later."
            )
        note({"content_type": mime, "bytes": len(content)})
        return {"image": content, "mime": mime}

    def _sender(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        read: bool,
        query: Mapping[str, str] | None,
        key: str,
        image: bool = False,
    ) -> Callable[[str], Awaitable[dict[str, Any]]]:
        """``send(token)``: the request with ``token`` under query ``key``. A read is asked
        again while WeChat is busy; a change is sent once, and an unclear answer to it
        raises :class:`OutcomeUnknown` (:meth:`send_change`)."""
        fetch = self._send_image if image else self._send

        async def send(token: str) -> dict[str, Any]:
            once = functools.partial(
                fetch, method, path, query={**(query or {}), key: token}, body=body
            )
            if read:
                return await self.read_with_retries(once)
            return await self.send_change(once)

        return send

    async def _change(
        self,
        send: Callable[[], Awaitable[T]],
        what: str,
        check: Callable[[], Awaitable[bool]],
    ) -> T | None:
        """``send`` the one request that carries a change: its answer when clear. After an
        unclear answer ``check`` asks WeChat whether the ``what`` shows: ``None`` when it
        does (confirmed); :meth:`confirm_change` raises when it does not or cannot tell."""
        try:
            return await send()
        except OutcomeUnknown as unclear:
            await self.confirm_change(unclear, what, check)
            return None
