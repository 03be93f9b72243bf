"""Versions up to their review: template builds and minidev uploads, the build state,
audit.apply with its checks, its withdrawal, and the version queries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from platforms.alipay import api
from platforms.alipay import sign as alipay_sign
from platforms.emulators.alipay.errors import _business, _Failure
from platforms.emulators.alipay.rules import (
    DECIDED,
    MAX_VERSION_PART,
    OPEN_REVIEW,
    REGION_FIELDS,
    REGION_TYPES,
    SCREENSHOT_EXTENSIONS,
    SCREENSHOT_MAX_BYTES,
    VERDICT_FIELDS,
    VERSION_DESC_LENGTHS,
    VERSION_RE,
    _clear_verdict,
    _desc_length,
    _version_key,
)
from platforms.emulators.alipay.state import DEFAULT_BUNDLE, AlipayState
from platforms.emulators.images import evidence_png

__all__ = ["VersionMethods"]


class VersionMethods(AlipayState):
    """``version.upload``, ``build.query``, ``audit.apply``, ``audit.cancel``,
    ``audited.cancel``, ``detail.query``, ``list.query``, and the minidev stand-in's
    upload."""

    def _build_fields(self, version: dict[str, Any]) -> dict[str, str]:
        """upload's and build.query's answer: queued (0), building (1), failed (3) or
        built and created (2, 6)."""
        if self._queued(version):
            build, create, rotate = "0", "0", "true"
        elif self.clock() < version["built_at"]:
            build, create, rotate = "1", "1", "true"
        elif version.get("build_failed"):
            build, create, rotate = "3", "3", "false"
        else:
            build, create, rotate = "2", "6", "false"
        return {
            "build_status": build,
            "create_status": create,
            "need_rotation": rotate,
            "version_created": "true" if create == "6" else "false",
        }

    def _upload(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        template_id = biz.get("template_id", "")
        if not template_id:
            raise _business("TEMPLATE_ID_IS_BLANK")
        name = biz.get("app_version", "")
        if not name:
            raise _business("APP_VERSION_IS_BLANK")
        template = self._state["templates"].get(template_id)
        if template is None:
            raise _business("CODE_TEMPLATE_NOT_EXIST")
        template_version = biz.get("template_version") or template["versions"][-1]
        if template_version not in template["versions"]:
            raise _business("TEMPLATE_NOT_ONLINE_OR_OFFLINE")
        self._check_new_version(app_id, biz)
        ext = biz.get("ext", "")
        if ext:
            try:
                valid = isinstance(json.loads(ext), dict)
            except ValueError:
                valid = False
            if not valid:
                raise _business("INVALID_EXT_JSON")
        version = self._create_version(app_id, biz)
        version.update(template_id=template_id, template_version=template_version, ext=ext)
        return self._build_fields(version)

    def _check_new_version(self, app_id: str, biz: Mapping[str, str]) -> None:
        """The upload rules for a new version number (fact sheet §2.2)."""
        name = biz.get("app_version", "")
        if not name:
            raise _business("APP_VERSION_IS_BLANK")
        versions = self._versions(app_id, biz)
        match = VERSION_RE.match(name)
        if match is None:
            raise _business("INVALID_VERSION")
        if any(int(part) > MAX_VERSION_PART for part in match.groups()):
            raise _business("VERSION_EXCEEDED_LENGTH")
        if name in versions:
            raise _business("VERSION_HAS_EXISTED")
        if any(_version_key(v) > _version_key(name) for v in versions):
            raise _business("LARGER_VERSION_HAS_EXISTED")

    def _create_version(
        self, app_id: str, biz: Mapping[str, str], description: str = ""
    ) -> dict[str, Any]:
        """A new development version (after :meth:`_check_new_version`), building for
        ``build_seconds``."""
        self._check_new_version(app_id, biz)
        name = biz["app_version"]
        now = self.clock()
        version: dict[str, Any] = {
            "app_version": name,
            "status": "INIT",
            "template_id": "",
            "template_version": "",
            "ext": "",
            "version_desc": description,
            "created_at": now,
            "queued_until": now + self.queue_seconds,
            "built_at": now + self.queue_seconds + self.build_seconds,
            "build_failed": self._failing_build,
            "applied_at": None,
            "audit_end_at": None,
            "online_at": None,
            "offline_at": None,
            "reject_reason": "",
            "region_type": "",
            "service_region_info": "",
            "test_accout": "",
            "memo": "",
            "speed_up": "false",
            "screenshots": [],
            "gray_strategy": "",
        }
        self._versions(app_id, biz)[name] = version
        return version

    def _build_query(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        name = biz.get("app_version", "")
        if not name:
            raise _business("APP_VERSION_IS_BLANK")
        version = self._versions(app_id, biz).get(name)
        if version is None or self._queued(version):
            raise _business("BUILD_VERSION_NOT_EXISTED")
        return self._build_fields(version)

    async def _minidev_upload(self, request: web.Request) -> web.Response:
        """A minidev upload of a mini program owned directly (what ideservice does for the
        real CLI, fact sheet §5, reduced): JSON ``appId``, ``version``, ``versionDescription``,
        ``toolId`` and ``sign`` (RSA2 over the other fields, sorted ``k=v`` joined by ``&``,
        with the tool key). Answers ``{"stat":"ok","data":{…}}`` or ``{"stat":"fail","msg":…}``."""
        try:
            data = await request.json()
            fields = {str(k): str(v) for k, v in data.items()}
        except (ValueError, AttributeError):
            return web.json_response({"stat": "fail", "msg": "请求不是合法的JSON"})
        app = self._state["apps"].get(fields.get("appId", ""))
        if app is None:
            return web.json_response({"stat": "fail", "msg": "应用不存在"})
        tool = app.get("tools", {}).get(fields.get("toolId", ""))
        content = alipay_sign.sign_content({k: v for k, v in fields.items() if k != "sign"})
        if tool is None or not alipay_sign.verify(
            content, fields.get("sign", ""), self._public(tool["public_key"])
        ):
            return web.json_response(
                {"stat": "fail", "msg": "工具密钥校验失败，请检查toolId和私钥"}
            )
        biz = {"app_version": fields.get("version", "")}
        try:
            version = self._create_version(
                fields["appId"], biz, fields.get("versionDescription", "")
            )
        except _Failure as failure:
            return web.json_response({"stat": "fail", "msg": failure.sub_msg})
        # minidev waits for the build itself
        version.update(queued_until=version["created_at"], built_at=version["created_at"])
        self.save()
        return web.json_response({"stat": "ok", "data": {"version": version["app_version"]}})

    def _audit_apply(
        self, app_id: str, biz: dict[str, str], files: Mapping[str, tuple[str, int]]
    ) -> dict[str, Any]:
        versions, version = self._ready(app_id, biz)
        desc = biz.get("version_desc", "")
        if not desc:
            raise _business("VERSION_DESC_IS_BLANK")
        shortest, longest = VERSION_DESC_LENGTHS
        if not shortest <= _desc_length(desc) <= longest:
            raise _business("INVALID_VERSION_DESC_LENGTH")
        region = biz.get("region_type", "")
        if not region:
            raise _business("REGION_TYPE_IS_BLANK")
        if region not in REGION_TYPES:
            raise _business("REGION_TYPE_IS_INVALID")
        if region == "LOCATION":
            self._check_regions(biz.get("service_region_info", ""))
        if len(biz.get("memo", "")) > 500:
            raise _business("INVALID_MINI_APP_MEMO_LENGTH")
        shots = self._check_screenshots(files)
        if any(v["status"] in OPEN_REVIEW for v in versions.values()):
            raise _business("CAN_NOT_SUBMIT_WITH_AUDIT_GRAY")
        if version["status"] != "INIT":
            raise _business("CAN_NOT_SUBMIT_WITHOUT_INIT")
        key = _version_key(version["app_version"])
        if any(v["status"] == "RELEASE" and _version_key(n) > key for n, v in versions.items()):
            raise _business("EXIST_LARGER_ONLINED_VERSION")
        _clear_verdict(version)
        version.update(
            status="AUDITING",
            version_desc=desc,
            region_type=region,
            applied_at=self.clock(),
            audit_end_at=None,
            test_accout=biz.get("test_accout", ""),
            memo=biz.get("memo", ""),
            service_region_info=biz.get("service_region_info", ""),
            screenshots=[filename for _, filename, _ in shots],
            speed_up="false",
        )
        if biz.get("speed_up", "true") != "true":  # Alipay's default is to expedite
            return {"speed_up": "false"}
        app = self._mini_app(app_id)
        if app["speed_ups"] >= self.expedites:
            return {"speed_up": "false", "speed_up_memo": "暂无可用的审核加急权益"}
        app["speed_ups"] += 1
        version["speed_up"] = "true"
        # INFERRED wording; the sheet gives only the field
        return {"speed_up": "true", "speed_up_memo": "已使用1次审核加急权益"}

    @staticmethod
    def _check_screenshots(files: Mapping[str, tuple[str, int]]) -> list[tuple[str, str, int]]:
        """The screenshot parts sent, as ``(part, file name, size)`` in order: none, or 2–5
        .png/.jpg/.jpeg files of at most 4 MB (fact sheet §3.3)."""
        shots = [(part, *files[part]) for part in api.SCREENSHOT_PARTS if part in files]
        if shots and not 2 <= len(shots) <= len(api.SCREENSHOT_PARTS):
            raise _business("SCREEN_SHOT_NUM_IS_INVALID")
        for _, filename, size in shots:
            if not filename.lower().endswith(SCREENSHOT_EXTENSIONS):
                raise _business("INVALID_SCREEN_SHOT_EXT")
            if size > SCREENSHOT_MAX_BYTES:
                raise _business("SCREEN_SHOT_EXCEED_MAX_SIZE")
        return shots

    @staticmethod
    def _check_regions(text: str) -> None:
        """``service_region_info``: a JSON array of regions; a city needs its province, an
        area its province and city (fact sheet §3.3)."""
        if not text:
            raise _business("REGION_CODE_IS_BLANK")
        try:
            regions = json.loads(text)
        except ValueError:
            raise _business("INVALID_REGION") from None
        if not isinstance(regions, list) or not regions:
            raise _business("INVALID_REGION")
        for region in regions:
            if not isinstance(region, dict) or not set(region) <= REGION_FIELDS:
                raise _business("INVALID_REGION")
            if not region.get("province_code"):
                raise _business("REGION_CODE_IS_BLANK")
            if region.get("area_code") and not region.get("city_code"):
                raise _business("INVALID_REGION")

    def _audit_cancel(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        versions = self._versions(app_id, biz)
        name = biz.get("app_version", "")
        if name:
            version = versions.get(name)
        else:  # "不传默认撤消正在审核中的版本"
            version = next((v for v in versions.values() if v["status"] == "AUDITING"), None)
        if version is None or version["status"] != "AUDITING":
            raise _business("AUDITING_VERSION_NOT_EXIST")
        version.update(status="INIT", audit_end_at=None)
        return {}

    def _audited_cancel(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        _, version = self._ready(app_id, biz)
        if version["status"] not in DECIDED:
            raise _business("CAN_NOT_BACK_DEV_WITHOUT_AUDIT")
        _clear_verdict(version)
        version.update(status="INIT", audit_end_at=None)
        return {}

    def _detail_query(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        _, version = self._ready(app_id, biz)
        fields = {
            "app_version": version["app_version"],
            "status": version["status"],
            "version_desc": version["version_desc"],
            "memo": version["memo"],
            "scan_result": "True",
            "service_region_type": version["region_type"],
            "gmt_create": alipay_sign.format_timestamp(version["created_at"]),
            "app_name": self._mini_app(app_id).get("name", ""),  # base info, when known
        }
        for field, at in (
            ("gmt_apply_audit", "applied_at"),
            ("gmt_audit_end", "audit_end_at"),
            ("gmt_online", "online_at"),
            ("gmt_offline", "offline_at"),
        ):
            if version[at] is not None:
                fields[field] = alipay_sign.format_timestamp(version[at])
        for field in VERDICT_FIELDS:
            fields[field] = version.get(field) or ""
        if version["status"] == "GRAY" and self.report_gray_strategy:
            fields["gray_strategy"] = version.get("gray_strategy") or ""
        return {k: v for k, v in fields.items() if v}

    async def _audit_image(self, request: web.Request) -> web.Response:
        """A rejected version's review image (``audit_images`` / ``memo_image_list`` point
        here): a PNG saying the rejection reason; 404 for anything else."""
        query = request.query
        app_id, version_name = query.get("app_id", ""), query.get("version", "")
        bundle = query.get("bundle_id") or DEFAULT_BUNDLE
        if app_id not in self._state["apps"]:
            return web.Response(status=404, text="not found")
        try:
            version = self._versions(app_id, {"bundle_id": bundle}).get(version_name)
        except _Failure:
            version = None
        record = version.get("base_audit_record") if version is not None else None
        n = query.get("n", "")
        if version is None or version["status"] != "AUDIT_REJECT" or n not in ("1", "2"):
            return web.Response(status=404, text="not found")
        if not isinstance(record, dict):
            return web.Response(status=404, text="not found")  # rejected before it had images
        reason = version.get("reject_reason") or "; ".join(
            m.get("memo", "") for m in record.get("memos", []) if isinstance(m, dict)
        )
        heading = f"Alipay review image {n} of 2 (emulated)"
        text = f"Version {version_name} of {app_id} was rejected.\n{reason}"
        return web.Response(body=evidence_png(heading, text), content_type="image/png")

    def _list_query(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        versions = self._versions(app_id, biz)
        wanted = {s.strip() for s in biz.get("version_status", "").split(",") if s.strip()}
        if not wanted:  # "不填默认不返回"
            return {}
        bundle = biz.get("bundle_id") or DEFAULT_BUNDLE
        listed = sorted(
            (v for v in versions.values() if v["status"] in wanted and self._built(v)),
            key=lambda v: _version_key(v["app_version"]),
            reverse=True,
        )[:20]
        infos = [
            {
                "app_version": v["app_version"],
                "bundle_id": bundle,
                "version_status": v["status"],
                "version_description": v["version_desc"],
                "create_time": alipay_sign.format_timestamp(v["created_at"]),
                **{k: v[k] for k in ("base_audit", "promote_audit", "can_release") if v.get(k)},
            }
            for v in listed
        ]
        return {"app_version_infos": infos}
