"""Code: the commit of a template (the trial version), its pages and categories, and
the trial version's QR code.
"""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import quote

import qrcode
from aiohttp import web

from platforms.emulators.wechat.errors import _Fail, _ok
from platforms.emulators.wechat.state import WeChatState, _Call, _Commit
from platforms.wechat.reading import as_int

__all__ = ["CommitApis"]


MAX_USER_VERSION = 64


def trial_qr(text: str) -> qrcode.QRCode:
    """The QR code the emulator draws for ``text`` (one fixed mask: 4× faster to make than
    trying all eight, which matters when a fleet uploads hundreds of apps)."""
    code = qrcode.QRCode(box_size=6, border=2, mask_pattern=0)
    code.add_data(text)
    code.make(fit=True)
    return code


def _qr_jpeg(text: str) -> bytes:
    """A scannable QR code of ``text`` as JPEG bytes (``qrcode``, saved by Pillow)."""
    code = trial_qr(text)
    out = io.BytesIO()
    code.make_image().get_image().convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue()


def _ext_problem(ext: dict[str, Any], appid: str, template_pages: list[str]) -> int | None:
    """The errcode for an ext_json that does not fit the mini program and the template.

    85013 (``invalid ext_json``): a foreign ``extAppid``, or ``pages`` that is not a list of
    strings; 85047: ``pages`` empty; 85046: a tabBar item without ``pagePath``; 85045
    (``some path in ext_json not exist``): a page path the template lacks, named in
    ``pages``, as an ``extPages`` key or as a tabBar ``pagePath`` (fact sheet §4.1).
    ``subPackages`` are not checked: the emulated templates have none.
    """
    if ext.get("extAppid") not in (None, "", appid):
        return 85013
    pages = ext.get("pages")
    if pages == []:
        return 85047
    named: list[Any] = []
    if pages is not None:
        if not isinstance(pages, list) or not all(isinstance(p, str) for p in pages):
            return 85013
        named += pages
    ext_pages = ext.get("extPages")
    if isinstance(ext_pages, dict):
        named += list(ext_pages)
    tab_bar = ext.get("tabBar")
    items = tab_bar.get("list") if isinstance(tab_bar, dict) else None
    if isinstance(items, list):
        if any(not isinstance(i, dict) or not i.get("pagePath") for i in items):
            return 85046
        named += [i["pagePath"] for i in items]
    if not {str(p) for p in named} <= set(template_pages):
        return 85045
    return None


class CommitApis(WeChatState):
    """commit, get_page, get_category, get_qrcode."""

    @staticmethod
    def experience_url(appid: str, path: str = "") -> str:
        """What the trial QR code of ``appid`` encodes (WeChat's experience link)."""
        page = f"&path={quote(path, safe='')}" if path else ""
        return f"https://open.weixin.qq.com/sns/getexpappinfo?appid={appid}{page}#wechat-redirect"

    def _commit(self, call: _Call) -> dict[str, Any]:
        program, body = self._program(call), call.body
        template_id = as_int(body.get("template_id"))
        ext_text = body.get("ext_json")
        version, desc = body.get("user_version"), body.get("user_desc")
        if template_id is None or ext_text is None or version is None or desc is None:
            raise _Fail(47001)
        template = self.templates.get(template_id)
        if template is None:
            raise _Fail(85014)
        if not isinstance(ext_text, str):
            raise _Fail(85048)
        try:
            ext = json.loads(ext_text)
        except ValueError:
            raise _Fail(85048) from None
        if not isinstance(ext, dict):
            raise _Fail(85048)
        problem = _ext_problem(ext, program.appid, template.pages)
        if problem is not None:
            raise _Fail(problem)
        if not isinstance(version, str) or not 0 < len(version) <= MAX_USER_VERSION:
            raise _Fail(40097)
        program.commit = _Commit(template_id, version, str(desc), ext, self.clock())
        return _ok()

    def _get_page(self, call: _Call) -> dict[str, Any]:
        return _ok(page_list=self._pages(self._program(call)))

    def _get_category(self, call: _Call) -> dict[str, Any]:
        return _ok(category_list=[dict(c) for c in self._program(call).categories])

    def _get_qrcode(self, call: _Call) -> web.Response:
        program = self._program(call)
        if program.commit is None:
            raise _Fail(86001)
        url = self.experience_url(program.appid, call.query.get("path", ""))
        image = self._qr_cache.get(url)
        if image is None:
            image = self._qr_cache[url] = _qr_jpeg(url)
        response = web.Response(
            body=image,
            headers={
                "Content-Type": "image/jpeg",
                "Content-disposition": 'attachment; filename="QRCode.jpg"',
                "Cache-Control": "no-cache, must-revalidate",
            },
        )
        response.force_close()  # the documented "Connection: close"
        return response
