"""Uploading a version: a template build (``version.upload``, then ``build.query``
until it is built) or, for a mini program owned directly, ``minidev upload``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from platforms import cli
from platforms.alipay.api import BUILD_QUERY, UPLOAD
from platforms.alipay.config import AlipayAppConfig
from platforms.alipay.versions import CONFIRMED, AlipayVersions
from platforms.base import UploadResult, scrub_message
from platforms.errors import ConfigError, InvalidInput, InvalidState, OutcomeUnknown, PlatformError

__all__ = ["AlipayUpload"]


MINIDEV_CLIENTS = {
    "com.alipay.alipaywallet": "alipay",
    "com.alipay.iot.xpaas": "alipayiot",
    "com.amap.app": "amap",
    "com.alibaba.ailabs.genie.webapps": "genie",
}
"""minidev ``--client-type`` per bundle_id (DingTalk has none in minidev's table)."""

MINIDEV_DESCRIPTION_MAX = 200


def _masked(text: str, secret: str) -> str:
    """``text`` without ``secret``: whole, JSON-escaped, or any line of it (a PEM key's
    base64 lines, which a tool may print one by one)."""
    secret = secret.strip()
    lines = (line.strip() for line in secret.splitlines())
    pieces = {secret, json.dumps(secret)[1:-1], *(line for line in lines if len(line) >= 16)}
    for piece in sorted((p for p in pieces if p), key=len, reverse=True):
        text = text.replace(piece, "***")
    return text


class AlipayUpload(AlipayVersions):
    """``upload``."""

    async def upload(
        self,
        app: str,
        version: str,
        notes: str,
        *,
        template: str | None = None,
        code: Path | None = None,
    ) -> UploadResult:
        """Upload ``version`` and return once Alipay has built it (or the wait ran out).

        An app with a template (``template`` overrides ``template_id``) is built from it
        (``version.upload``, then ``build.query`` every ``poll_seconds`` for at most
        ``build_wait_seconds``); an app owned directly is uploaded with minidev.
        """
        cfg = self._config(app)
        if code is not None:  # a build handed over (the CI API): only where minidev uploads
            if not cfg.uses_minidev or template is not None:
                raise InvalidInput(
                    self.name,
                    "",
                    "",
                    f"{app} is built from a template on Alipay, not from uploaded code.",
                )
            return await self._minidev_upload(app, cfg, version, notes, code)
        chosen = template or cfg.template_id
        if chosen:
            return await self._template_upload(app, cfg, version, chosen)
        if cfg.uses_minidev:
            return await self._minidev_upload(app, cfg, version, notes)
        raise ConfigError(
            f"[apps.{app}.alipay] says neither how to build nor how to upload the code: set "
            "template_id (the template mini program's APPID) for a template build, or "
            "project_path, tool_id and tool_private_key to upload with minidev."
        )

    async def _template_upload(
        self, app: str, cfg: AlipayAppConfig, version: str, template: str
    ) -> UploadResult:
        ext = dict(cfg.ext)
        ext.setdefault("extEnable", True)
        params = {
            "template_id": template,
            "app_version": version,
            "ext": json.dumps(ext, ensure_ascii=False, separators=(",", ":")),
            "bundle_id": cfg.bundle_id,
        }
        if cfg.template_version and template == cfg.template_id:
            params["template_version"] = cfg.template_version
        query = self._version_params(app, version)
        seen: list[dict[str, Any]] = []

        async def build_state() -> None:
            seen.append(await self._call(app, BUILD_QUERY, query, read=True))

        async def uploaded() -> bool:
            return await self._exists(build_state, self.settings.build_wait_seconds)

        answer = await self._change(app, UPLOAD, params, "upload", uploaded)
        state = seen[-1] if answer is None else answer
        detail = await self._await_build(app, version, template, state, query)
        return UploadResult(version, self._said(detail, answer))

    @staticmethod
    def _built(state: Mapping[str, Any]) -> bool:
        """Whether the build is done, by the INFERRED rule (fact sheet §3.2) read strictly:
        the version was created (``create_status`` 6, ``version_created``), or Alipay
        stops asking to poll (``need_rotation`` false) after a good build (``build_status``
        2). Anything else (a field missing, still queued or building) is asked again."""
        return (
            state.get("version_created") == "true"
            or str(state.get("create_status", "")) == "6"
            or (state.get("need_rotation") == "false" and str(state.get("build_status")) == "2")
        )

    def _build_error(
        self, version: str, template: str, state: Mapping[str, Any], failed: str
    ) -> PlatformError:
        said = (
            f"Alipay's build of version {version} from template {template} {failed} "
            f"(build_status {state.get('build_status', '?')}, create_status "
            f"{state.get('create_status', '?')}); "
        )
        if failed == "timed out":
            return InvalidState(
                self.name,
                "BUILD_TIMEOUT",
                "",
                said + "Alipay does not build that version again: upload a higher version, "
                "and if it times out again, try another template version.",
            )
        return InvalidInput(
            self.name,
            "BUILD_FAILED",
            "",
            said + "check the template version and the app's ext settings, then upload a "
            "higher version.",
        )

    async def _await_build(
        self,
        app: str,
        version: str,
        template: str,
        state: Mapping[str, Any],
        query: Mapping[str, str],
    ) -> str:
        """Poll ``build.query`` every ``poll_seconds`` until the build is done; the line
        for people. A failed build raises :meth:`_build_error`. The upload itself
        happened, so when Alipay cannot say how the build is going (any error while
        asking) the line says so instead of failing."""
        given = iter([state])
        last = [state]
        later = "`status` will show when it is ready to submit"

        async def check(waited: float) -> str | None:
            now = next(given, None)
            if now is None:
                try:
                    now = await self._call(app, BUILD_QUERY, query, read=True)
                except PlatformError as exc:
                    why = exc.code or exc.kind
                    return (
                        f"uploaded; Alipay could not say how the build is going ({why}) — {later}"
                    )
            last.append(now)
            failed = self._build_failure(now)
            if failed:
                raise self._build_error(version, template, now, failed)
            return f"built in {waited:.0f} s" if self._built(now) else None

        line, waited = await self._poll(check, self.settings.build_wait_seconds)
        if line is not None:
            return line
        build = str(last[-1].get("build_status") or "?")
        return (
            f"uploaded; Alipay is still building it after {waited:.0f} s (build_status "
            f"{build}) — {later}"
        )

    async def _minidev_upload(
        self, app: str, cfg: AlipayAppConfig, version: str, notes: str, code: Path | None = None
    ) -> UploadResult:
        """``minidev upload`` of the built code at ``project_path``; the key goes in a file
        and never into what is recorded or raised, even when minidev prints it."""
        where = f"[apps.{app}.alipay]"
        assert cfg.project_path is not None and cfg.tool_private_key is not None  # validated
        project = code or cfg.project_path.expanduser()
        if not project.is_dir():
            raise ConfigError(f"{where} project_path {project} is not a directory")
        client = MINIDEV_CLIENTS.get(cfg.bundle_id)
        if client is None:
            raise ConfigError(f"{where}: minidev cannot upload for bundle_id {cfg.bundle_id}")
        args = ["upload", "--app-id", cfg.app_id, "--project", str(project), "--version", version]
        description = " ".join(notes.split())[:MINIDEV_DESCRIPTION_MAX]
        if description:
            args += ["--version-description", description]
        if client != "alipay":
            args += ["--client-type", client]
        key = cfg.tool_private_key.get_secret_value()
        identity = json.dumps(
            {"alipay": {"authentication": {"privateKey": key, "toolId": cfg.tool_id}}}
        )
        shown = {"app_id": cfg.app_id, "version": version, "project": str(project)}

        async def run() -> str:
            with cli.key_file(identity, suffix=".json") as path:
                try:
                    out = await cli.run(
                        cli.MINIDEV,
                        [*args, "--identity-key-path", str(path)],
                        limit=self.settings.minidev_timeout_seconds,
                    )
                except cli.CliFailed as exc:
                    failed = cli.CliFailed(
                        exc.platform, _masked(exc.explanation, key), _masked(exc.output, key)
                    )
                    self.record_exchange("minidev upload", shown, error=failed.explanation)
                    raise failed from None
                except PlatformError as exc:
                    self.record_exchange("minidev upload", shown, error=exc.explanation)
                    raise
            said = scrub_message(_masked(out, key))[-500:]
            self.record_exchange("minidev upload", shown, {"output": said})
            return said

        started = self.clock()
        try:
            await self.send_change(run)
        except OutcomeUnknown as unclear:
            # minidev may have been stopped while Alipay was still building the version
            wait = self.settings.build_wait_seconds
            await self.confirm_change(
                unclear, "upload", lambda: self._exists(lambda: self._detail(app, version), wait)
            )
            return UploadResult(version, f"uploaded with minidev ({CONFIRMED})")
        took = max(0.0, self.clock() - started)
        return UploadResult(version, f"uploaded and built with minidev in {took:.0f} s")
