"""The third-party platform's template library and draft box."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from platforms.base import Template
from platforms.errors import NotFound
from platforms.wechat.api import ADD_TO_TEMPLATE, DELETE_TEMPLATE, DRAFT_LIST, TEMPLATE_LIST
from platforms.wechat.reading import _template_from, as_int
from platforms.wechat.versions import CONFIRMED, WeChatVersions

__all__ = ["WeChatTemplates"]


_EPOCH = datetime.fromtimestamp(0, UTC)


class WeChatTemplates(WeChatVersions):
    """``templates``, ``add_template`` and ``delete_template``."""

    async def _library(
        self, path: str = TEMPLATE_LIST, key: str = "template_list"
    ) -> list[Mapping[str, Any]]:
        """The entries of a template-library list (gettemplatelist, or gettemplatedraftlist
        with its key). 85064, which the sheet lists for these lists too (§5.1, §5.3), is read
        as an empty list."""
        try:
            data = await self._component_call("GET", path, read=True, key="access_token")
        except NotFound as exc:
            if exc.code == "85064":
                return []
            raise
        entries = data.get(key)
        return [e for e in (entries if isinstance(entries, list) else []) if isinstance(e, Mapping)]

    async def _templates(self, *, draft: bool) -> list[Template]:
        """The template library or the draft box, newest first."""
        path, key = (DRAFT_LIST, "draft_list") if draft else (TEMPLATE_LIST, "template_list")
        found = [t for e in await self._library(path, key) if (t := _template_from(e, draft=draft))]
        return sorted(found, key=lambda t: t.created_at or _EPOCH, reverse=True)

    async def templates(self) -> list[Template]:
        """The template library (gettemplatelist), then the draft box (gettemplatedraftlist)."""
        self._component_credentials()
        return await self._templates(draft=False) + await self._templates(draft=True)

    async def add_template(self, draft_id: str) -> str:
        """Turn draft ``draft_id`` into a normal template (addtotemplate); says which
        template_id it became (WeChat does not answer it: the library is listed again)."""
        self._component_credentials()
        draft = self._number("draft id", draft_id)
        before = {as_int(e.get("template_id")) for e in await self._library()}

        async def new_template() -> int | None:
            for entry in await self._library():
                ident = as_int(entry.get("template_id"))
                if ident not in before and as_int(entry.get("draft_id")) in (draft, None):
                    return ident
            return None

        async def added() -> bool:
            return await new_template() is not None

        body = {"draft_id": draft, "template_type": 0}
        add = functools.partial(
            self._component_call, "POST", ADD_TO_TEMPLATE, body, read=False, key="access_token"
        )
        await self._change(add, "new template", added)
        made = await self._quietly(new_template(), None)
        if made is None:
            return f"draft {draft} added to the template library"
        return f"draft {draft} is now template {made}"

    async def delete_template(self, template_id: str) -> str:
        """Delete template ``template_id`` from the library (deletetemplate).

        Refused, before asking WeChat, while a configured app names it as template_id: the
        deletion cannot be undone, and those apps could no longer upload.
        """
        self._component_credentials()
        ident = self._number("template id", template_id)
        users = sorted(k for k, cfg in self.apps.items() if cfg.template_id == ident)
        if users:
            sections = ", ".join(f"[apps.{k}.wechat]" for k in users)
            raise self._refused(
                f"template {ident} is the template_id of {', '.join(users)} in miniship.toml, "
                "and a deleted template cannot be brought back. Give "
                f"{'it' if len(users) == 1 else 'them'} another template_id first "
                f"({sections}; `templates` lists the library), then delete template {ident}."
            )

        async def gone() -> bool:
            return all(as_int(e.get("template_id")) != ident for e in await self._library())

        body = {"template_id": ident}
        delete = functools.partial(
            self._component_call, "POST", DELETE_TEMPLATE, body, read=False, key="access_token"
        )
        if await self._change(delete, "deletion", gone) is None:
            return f"template {ident} deleted ({CONFIRMED})"
        return f"template {ident} deleted"
