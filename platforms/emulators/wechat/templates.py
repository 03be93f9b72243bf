"""The template library and draft box: seeded on a fresh platform, listed, added to
from a draft, deleted from.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from dataclasses import asdict
from typing import Any

from platforms.emulators.wechat.errors import _Fail, _ok
from platforms.emulators.wechat.state import TEMPLATE_PAGES, WeChatState, _Call, _Draft, _Template
from platforms.wechat.reading import as_int

__all__ = ["TemplateApis"]


SEED_DRAFTS = (("1.1.0", "new checkout page"), ("1.2.0-beta", "coupons (beta)"))
FIRST_DRAFT_ID = 901  # draft and template ids are separate on WeChat; apart here for clarity
SPARE_TEMPLATE = ("0.9.0", "an earlier template no app uses")


class TemplateApis(WeChatState):
    """gettemplatedraftlist, gettemplatelist, addtotemplate, deletetemplate."""

    def _new_template_id(self) -> int:
        """A template id never handed out before (WeChat's ids only grow)."""
        ident = max(self.next_template_id, max(self.templates, default=-1) + 1)
        self.next_template_id = ident + 1
        return ident

    def _add_template(self, ident: int, version: str, desc: str, **more: Any) -> None:
        self.templates[ident] = _Template(
            template_id=ident,
            user_version=version,
            user_desc=desc,
            create_time=int(self.clock()),
            pages=list(TEMPLATE_PAGES),
            **more,
        )
        self.next_template_id = max(self.next_template_id, ident + 1)

    def _seed_library(self, configured: Collection[int]) -> None:
        """On a fresh platform: a draft box with something in it, as uploads from the
        development mini program, and a template no app uses (id 0 unless an app takes it),
        next to the ones the apps name."""
        if self.drafts:
            return
        self.next_template_id = max(self.next_template_id, max(configured, default=-1) + 1)
        spare = 0 if 0 not in configured and 0 not in self.templates else self._new_template_id()
        self._add_template(spare, *SPARE_TEMPLATE, developer="emulator")
        source = "wx" + secrets.token_hex(8)
        for n, (version, desc) in enumerate(SEED_DRAFTS, FIRST_DRAFT_ID):
            self.drafts[n] = _Draft(
                draft_id=n,
                user_version=version,
                user_desc=desc,
                create_time=int(self.clock()) - 3600 * (len(SEED_DRAFTS) + FIRST_DRAFT_ID - n),
                source_miniprogram_appid=source,
                source_miniprogram="Emulated development mini program",
                developer="emulator",
            )

    def _listed(self, key: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
        if not entries and self.empty_lists_as_85064:
            raise _Fail(85064)  # the sheet lists it for the lists too (§5.1, §5.3)
        return _ok(**{key: entries})

    def _draft_list(self, call: _Call) -> dict[str, Any]:
        drafts = sorted(self.drafts.values(), key=lambda d: d.draft_id)
        return self._listed("draft_list", [asdict(d) | {"category_list": []} for d in drafts])

    def _template_list(self, call: _Call) -> dict[str, Any]:
        wanted = as_int(call.query.get("template_type"))
        found = [
            t
            for t in sorted(self.templates.values(), key=lambda t: t.template_id)
            if wanted is None or t.template_type == wanted
        ]
        listed = []
        for t in found:
            entry = {k: v for k, v in asdict(t).items() if k != "pages"}
            entry["category_list"] = []
            listed.append(entry)
        return self._listed("template_list", listed)

    def _add_to_template(self, call: _Call) -> dict[str, Any]:
        if "draft_id" not in call.body:
            raise _Fail(47001)
        wanted = as_int(call.body["draft_id"])
        draft = self.drafts.get(wanted) if wanted is not None else None
        kind = as_int(call.body.get("template_type", 0))
        if kind not in (0, 1):
            raise _Fail(40097)
        if draft is None:
            raise _Fail(85064)
        if len(self.templates) >= self.template_limit:
            raise _Fail(85065)
        self._add_template(
            self._new_template_id(),
            draft.user_version,
            draft.user_desc,
            draft_id=draft.draft_id,
            template_type=kind,
            source_miniprogram_appid=draft.source_miniprogram_appid,
            source_miniprogram=draft.source_miniprogram,
            developer=draft.developer,
        )
        return _ok()

    def _delete_template(self, call: _Call) -> dict[str, Any]:
        if "template_id" not in call.body:
            raise _Fail(47001)
        ident = as_int(call.body["template_id"])
        if ident is None or ident not in self.templates:
            raise _Fail(85064)
        del self.templates[ident]
        return _ok()
