"""The review: submit (waiting out the privacy scan), status, withdraw, expedite, and
the quotas they spend.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping
from typing import Any

from platforms.base import Quota, ReviewState, ReviewStatus, SubmitResult
from platforms.errors import (
    BadResponse,
    InvalidState,
    NotFound,
    OutcomeUnknown,
    PlatformError,
    QuotaExceeded,
)
from platforms.wechat.api import (
    GET_AUDITSTATUS,
    GET_CATEGORY,
    GET_PAGE,
    SPEEDUP_AUDIT,
    SUBMIT_AUDIT,
    UNDO_AUDIT,
)
from platforms.wechat.config import _AppConfig
from platforms.wechat.errors import _RULES
from platforms.wechat.reading import (
    APPROVED,
    DELAYED,
    IN_REVIEW,
    WITHDRAWN,
    _Audit,
    _audit_from,
    _bad,
    _cannot_tell,
    _int_field,
    _new_review,
    _status_words,
    as_int,
)
from platforms.wechat.versions import CONFIRMED, WeChatVersions

__all__ = ["WeChatReview"]

log = logging.getLogger(__name__)


WITHDRAWALS_PER_DAY, WITHDRAWALS_PER_MONTH = 5, 10  # per mini program (§4.10)


class WeChatReview(WeChatVersions):
    """``submit``, ``review_status``, ``withdraw``, ``expedite`` and ``quotas``."""

    async def _item_list(self, app: str, cfg: _AppConfig) -> list[dict[str, Any]] | None:
        """item_list for submit_audit: the app's, else the first page of the code in the
        first category of the mini program (``None`` when it has no category)."""
        if cfg.item_list:
            return cfg.item_list
        pages = await self._call(app, "GET", GET_PAGE, read=True)
        categories = await self._call(app, "GET", GET_CATEGORY, read=True)
        page_list = pages.get("page_list")
        category_list = categories.get("category_list")
        if not isinstance(category_list, list) or not category_list:
            return None
        first = category_list[0]
        if not isinstance(first, Mapping):
            raise _bad(f"GET {GET_CATEGORY}", "a category is not an object")
        item: dict[str, Any] = {
            k: first[k]
            for k in (
                "first_class",
                "second_class",
                "third_class",
                "first_id",
                "second_id",
                "third_id",
            )
            if first.get(k) not in (None, "")
        }
        if isinstance(page_list, list) and page_list and isinstance(page_list[0], str):
            item = {"address": page_list[0], **item}
        return [item]

    async def submit(
        self, app: str, version: str, notes: str, *, expedite: bool = False
    ) -> SubmitResult:
        """Submit the trial version for review, after checking it is ``version``.

        ``expedite`` asks for an expedited review right after the submission succeeded
        (WeChat expedites separately, speedupaudit); a refused expedite does not undo it.
        After an unclear answer the submission is confirmed only by a review newer than the
        one WeChat showed before sending.
        """
        cfg = self._platform_app(app)
        await self._trial_is(app, version, "submitting now would send {trial}'s code for review")
        body: dict[str, Any] = {}
        items = await self._item_list(app, cfg)
        if items:
            body["item_list"] = items
        body["version_desc"] = "\n".join(
            part for part in (notes.strip(), cfg.review_notes.strip()) if part
        )
        if cfg.privacy_api_not_use:
            body["privacy_api_not_use"] = True
        before = await self._latest(app)
        found: list[_Audit] = []

        async def submitted() -> bool:
            latest = await self._latest(app)
            if latest is not None and _new_review(before, latest, version):
                found.append(latest)
            return bool(found)

        auditid = await self._change(
            functools.partial(self._submit_once, app, body), "submission", submitted
        )
        if auditid is None:
            sent = SubmitResult(str(found[-1].auditid), f"audit {found[-1].auditid} ({CONFIRMED})")
        else:
            sent = SubmitResult(str(auditid), f"audit {auditid}")
        if not expedite:
            return sent
        try:
            said = await self.expedite(app, version, sent.ref)
        except PlatformError as exc:
            return dataclasses.replace(sent, detail=f"{sent.detail}; not expedited: {exc}")
        return dataclasses.replace(sent, detail=f"{sent.detail}; {said}")

    async def _submit_once(self, app: str, body: Mapping[str, Any]) -> int:
        """submit_audit, waiting out the privacy scan (61039): the new auditid.

        Raises :class:`OutcomeUnknown` when the answer was unclear or named no auditid.
        """
        s = self.settings
        waited = 0.0
        attempt = 0
        while True:
            try:
                data = await self._call(app, "POST", SUBMIT_AUDIT, body, read=False)
                break
            except InvalidState as exc:
                if exc.code != "61039":
                    raise
                if attempt >= s.privacy_scan_retries:
                    raise InvalidState(
                        self.name,
                        exc.code,
                        exc.platform_message,
                        "WeChat's privacy-API scan of the uploaded code had not finished after "
                        f"{waited:g} s of waiting; submit again in a few minutes (do not upload "
                        "again: every upload restarts the scan).",
                    ) from None
                attempt += 1
                log.info(
                    "WeChat's privacy scan is not finished; submitting again in %g s",
                    s.privacy_scan_wait_seconds,
                )
                await self.sleep(s.privacy_scan_wait_seconds)
                waited += s.privacy_scan_wait_seconds
        try:
            return _int_field(data, "auditid", f"POST {SUBMIT_AUDIT}")
        except BadResponse as exc:  # accepted, but the answer does not say which audit
            raise OutcomeUnknown.after(exc) from None

    async def review_status(self, app: str, version: str, ref: str) -> ReviewStatus:
        """Where audit ``ref`` stands (get_auditstatus); approved and live means released."""
        self._platform_app(app)
        auditid = self._auditid(ref)
        api = f"POST {GET_AUDITSTATUS}"
        try:
            data = await self._call(app, "POST", GET_AUDITSTATUS, {"auditid": auditid}, read=True)
        except NotFound as exc:
            if exc.code != "85012":
                raise
            return ReviewStatus(
                ReviewState.UNKNOWN, version, ref, detail=f"WeChat does not know audit {ref}"
            )
        audit = _audit_from(data, api, auditid)
        if audit.status != APPROVED:
            return self._review(audit, version, None)
        live = await self._live(app)
        gray = None
        if live != version:
            gray = await self._gray_plan(app, version)
            if gray is not None:  # the plan is of the latest approved audit: is it this one?
                latest = await self._latest(app)
                if latest is None or latest.auditid != auditid:
                    gray = None
        return self._review(audit, version, live, gray)

    async def withdraw(self, app: str, version: str, ref: str) -> str:
        """Withdraw audit ``ref`` (undocodeaudit), only if it is the one under review."""
        self._platform_app(app)
        latest = await self._latest(app)
        if latest is None:
            raise self._refused(
                "nothing has been submitted for review on WeChat, so there is nothing to withdraw."
            )
        pending = latest.status in (IN_REVIEW, DELAYED)
        if str(latest.auditid) == ref and not pending:
            raise self._refused(
                f"audit {ref} of {version} is {_status_words(latest.status)}, not under review; "
                "there is nothing to withdraw."
            )
        if str(latest.auditid) != ref:
            what = "is under review" if pending else f"is {_status_words(latest.status)}"
            raise self._refused(
                f"on WeChat audit {latest.auditid} (version {latest.user_version or '?'}) {what}, "
                f"not audit {ref} of {version}; withdrawing now would not pull {version}."
            )

        async def withdrawn() -> bool:
            now = await self._latest(app)
            return now is not None and str(now.auditid) == ref and now.status == WITHDRAWN

        undo = functools.partial(self._call, app, "GET", UNDO_AUDIT, read=False)
        if await self._change(undo, "withdrawal", withdrawn) is None:
            return f"withdrawn from review (audit {ref}; {CONFIRMED})"
        return f"withdrawn from review (audit {ref})"

    async def expedite(self, app: str, version: str, ref: str) -> str:
        """Ask WeChat to expedite audit ``ref`` (speedupaudit; the provider's monthly quota).

        Refused without asking when queryquota shows no expedite left. WeChat shows no
        per-audit trace of an expedite, so after an unclear answer it is confirmed by the
        expedite quota (``speedup_rest``) read just before: one less means it was spent on
        this request; more (a new month's quota) cannot tell. (The quota is provider-wide;
        another expedite at the same moment could mislead this check.)
        """
        self._platform_app(app)
        body = {"auditid": self._auditid(ref)}
        before = as_int((await self._quota(app)).get("speedup_rest"))
        if before == 0:
            raise self._refused(_RULES[89405][1], QuotaExceeded)

        async def expedited() -> bool:
            now = as_int((await self._quota(app)).get("speedup_rest"))
            if before is None or now is None:
                raise _cannot_tell("queryquota gives no speedup_rest")
            if now > before:
                raise _cannot_tell("the expedite quota was renewed (a new month)")
            return now < before

        speedup = functools.partial(self._call, app, "POST", SPEEDUP_AUDIT, body, read=False)
        if await self._change(speedup, "expedite request", expedited) is None:
            return f"expedited review requested (audit {ref}; {CONFIRMED})"
        return f"expedited review requested (audit {ref}; WeChat aims at 2–12 hours)"

    async def quotas(self, app: str) -> list[Quota]:
        """The provider's monthly audit and expedite quotas (queryquota), and the withdraw
        limits WeChat enforces per mini program but cannot report (counted here)."""
        cfg = self._config(app)
        if cfg.direct:
            return []
        data = await self._quota(app)
        return [
            Quota(
                "submit",
                "audit submissions this month (shared by the platform's mini programs)",
                as_int(data.get("rest")),
                as_int(data.get("limit")),
                "month",
            ),
            Quota(
                "expedite",
                "expedited reviews this month",
                as_int(data.get("speedup_rest")),
                as_int(data.get("speedup_limit")),
                "month",
            ),
            Quota(
                "withdraw", "withdrawals today", None, WITHDRAWALS_PER_DAY, "day", counted_here=True
            ),
            Quota(
                "withdraw",
                "withdrawals this month",
                None,
                WITHDRAWALS_PER_MONTH,
                "month",
                counted_here=True,
            ),
        ]
