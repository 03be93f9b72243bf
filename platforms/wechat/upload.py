"""Uploading a version: ``/wxa/commit`` of a template for apps of the third-party
platform, ``miniprogram-ci`` for mini programs owned directly.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from platforms import cli
from platforms.base import UploadResult, scrub_message
from platforms.errors import (
    AuthError,
    ConfigError,
    InvalidInput,
    OutcomeUnknown,
    PlatformUnavailable,
)
from platforms.wechat.api import COMMIT, _json
from platforms.wechat.config import _AppConfig, ext_json_problems
from platforms.wechat.errors import _ip_in
from platforms.wechat.reading import _recommitted
from platforms.wechat.versions import CONFIRMED, WeChatVersions

__all__ = ["WeChatUpload"]


MAX_USER_VERSION = 64  # characters of user_version (fact sheet §4.1)

_CI_WHITELIST = re.compile(r"whitelist|白名单|invalid ip", re.IGNORECASE)


class WeChatUpload(WeChatVersions):
    """``upload``."""

    def _check_version(self, version: str) -> None:
        if not version or len(version) > MAX_USER_VERSION:
            raise self._refused(
                f"WeChat takes a version of 1 to {MAX_USER_VERSION} characters; {version!r} "
                f"has {len(version)}.",
                InvalidInput,
            )

    def _template_id(self, app: str, cfg: _AppConfig, template: str | None) -> int:
        if template is not None:
            return self._number("template id", template)
        if cfg.template_id is None:
            raise ConfigError(
                f"[apps.{app}.wechat] has no template_id: set it to a template of the platform's "
                "library (`templates` lists them), or name one when uploading"
            )
        return cfg.template_id

    def _ext_json(self, app: str, cfg: _AppConfig) -> dict[str, Any]:
        """The app's ext_json with extAppid, checked before it is sent (also after a config
        was changed without validation)."""
        ext = dict(cfg.ext_json)
        ext.setdefault("extAppid", cfg.appid)
        problems = ext_json_problems(ext, cfg.appid)
        if problems:
            raise ConfigError(f"[apps.{app}.wechat] ext_json: " + "; ".join(problems))
        return ext

    async def upload(
        self,
        app: str,
        version: str,
        notes: str,
        *,
        template: str | None = None,
        code: Path | None = None,
    ) -> UploadResult:
        """Commit ``version`` from a template (``template`` or the app's); it becomes the
        trial version. Apps owned directly upload their code with miniprogram-ci."""
        cfg = self._config(app)
        self._check_version(version)
        if cfg.direct:
            if template is not None:
                raise self._refused(
                    f"{app} is owned directly: its code comes from project_path, not from a "
                    "template of the third-party platform.",
                    InvalidInput,
                )
            return await self._upload_with_ci(app, cfg, version, notes, code)
        if code is not None:
            raise self._refused(
                f"{app} is released through the third-party platform: its code is a "
                "template, not an uploaded build.",
                InvalidInput,
            )
        template_id = self._template_id(app, cfg, template)
        body = {
            "template_id": template_id,
            "ext_json": _json(self._ext_json(app, cfg)),
            "user_version": version,
            "user_desc": notes,
        }
        before = await self._info(app)  # to tell a new commit from the one already there

        async def committed() -> bool:
            return _recommitted(before, await self._info(app), version)

        commit = functools.partial(self._call, app, "POST", COMMIT, body, read=False)
        if await self._change(commit, "upload", committed) is None:
            return UploadResult(version, f"trial version updated ({CONFIRMED})")
        return UploadResult(version, f"trial version updated (template {template_id})")

    async def _upload_with_ci(
        self, app: str, cfg: _AppConfig, version: str, notes: str, code: Path | None = None
    ) -> UploadResult:
        """``miniprogram-ci upload`` of the app's code directory (or ``code``), the key in a
        private file."""
        assert cfg.project_path is not None and cfg.private_key is not None  # validated
        project = code or cfg.project_path.expanduser()
        if code is not None and not (project / "project.config.json").is_file():
            raise self._refused(
                "the code handed over is not a mini program project: it has no "
                "project.config.json at its top",
                InvalidInput,
            )
        if not (project / "project.config.json").is_file():
            raise ConfigError(
                f"[apps.{app}.wechat] project_path {project} is not a mini program project: it "
                "has no project.config.json"
            )
        robot = self.settings.miniprogram_ci_robot
        shown = {"appid": cfg.appid, "version": version, "desc": notes, "robot": robot}
        api = "miniprogram-ci upload"
        with cli.key_file(cfg.private_key.get_secret_value()) as key:
            args = [
                "upload",
                "--pp",
                str(project),
                "--pkp",
                str(key),
                "--appid",
                cfg.appid,
                "--uv",
                version,
                "--ud",
                notes,
                "-r",
                str(robot),
            ]
            try:
                out = await cli.run(
                    cli.MINIPROGRAM_CI, args, limit=self.settings.miniprogram_ci_timeout_seconds
                )
            except cli.CliFailed as exc:
                self.record_exchange(api, shown, {"output": exc.output[-1000:]}, "failed")
                said = next(
                    (line for line in exc.output.splitlines() if _CI_WHITELIST.search(line)), None
                )
                if said is not None:
                    ip = _ip_in(said)
                    raise AuthError(
                        self.name,
                        "",
                        said.strip()[:300],
                        f"WeChat refused the upload from this server's IP{f' {ip}' if ip else ''}: "
                        "add it in mp.weixin.qq.com → 开发管理 → 开发设置 → 小程序代码上传 "
                        "(IP whitelist), or switch the IP restriction off there.",
                    ) from None
                raise
            except PlatformUnavailable as exc:
                # stopped after its time limit: the upload may have reached WeChat, and no
                # API can tell for an app owned directly
                self.record_exchange(api, shown, error=exc.explanation)
                raise OutcomeUnknown.after(exc) from None
        tail = scrub_message(out.strip())[-1000:]
        self.record_exchange(api, shown, {"output": tail})
        return UploadResult(
            version,
            f"uploaded by miniprogram-ci robot {robot} as a development version; make it the "
            "trial version and submit it in mp.weixin.qq.com → 管理 → 版本管理",
        )
