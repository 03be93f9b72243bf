"""How Alipay's answers are read: the version statuses and their words, and the fields
(times, gray shares, review records) turned into what the shared value objects hold.

Nothing here sends a request; :mod:`platforms.alipay.wire` hands the answers over.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from platforms.alipay import sign as alipay_sign
from platforms.base import url_problem

__all__ = [
    "ALL_STATUSES",
    "APPROVED",
    "LISTED_STATUSES",
    "PASSED_FOR_RELEASE",
    "PROMOTE_REJECT",
    "REVIEW_STATUSES",
    "STATUS_WORDS",
    "VERSION_STATES",
    "version_key",
]


PROMOTE_REJECT = "PROMOTE_AUDIT_REJECT"
"""UNCERTAIN (fact sheet §2.1, §7.8): a status named only in the ``can_release`` field doc;
read like ``BASE_AUDIT_PASS`` (approved, publishable unless ``can_release`` is false)."""

PASSED_FOR_RELEASE = ("BASE_AUDIT_PASS", PROMOTE_REJECT)  # admission passed, marketing not

APPROVED = ("WAIT_RELEASE", *PASSED_FOR_RELEASE)

REVIEW_STATUSES = ("AUDITING", "AUDIT_REJECT", *APPROVED, "GRAY")

LISTED_STATUSES = ",".join(("INIT", *REVIEW_STATUSES, "RELEASE"))

ALL_STATUSES = LISTED_STATUSES + ",OFFLINE,AUDIT_OFFLINE"

STATUS_WORDS = {
    "INIT": "in development (INIT)",
    "AUDITING": "in review (AUDITING)",
    "AUDIT_REJECT": "rejected (AUDIT_REJECT)",
    "WAIT_RELEASE": "approved and waiting to be published (WAIT_RELEASE)",
    "BASE_AUDIT_PASS": "approved for release but not for promotion (BASE_AUDIT_PASS)",
    PROMOTE_REJECT: f"approved for release but refused for promotion ({PROMOTE_REJECT})",
    "GRAY": "in gray release (GRAY)",
    "RELEASE": "live (RELEASE)",
    "OFFLINE": "taken offline (OFFLINE)",
    "AUDIT_OFFLINE": "forcibly taken offline by Alipay (AUDIT_OFFLINE)",
}

VERSION_STATES = {
    "INIT": "development",
    "AUDITING": "in review",
    "AUDIT_REJECT": "rejected",
    "WAIT_RELEASE": "approved",
    "BASE_AUDIT_PASS": "approved",
    PROMOTE_REJECT: "approved",
    "GRAY": "gray",
    "RELEASE": "live",
    "OFFLINE": "offline",
    "AUDIT_OFFLINE": "offline",
}
"""``VersionInfo.state`` per status; an OFFLINE version below the live one is an
"earlier release"."""


def _status_words(status: str) -> str:
    return STATUS_WORDS.get(status, status or "in an unknown state")


def version_key(version: str) -> tuple[int, ...]:
    """``"1.2.10"`` → ``(1, 2, 10)``; anything unparsable sorts first (shared with the emulator)."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return ()


def _decided_at(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return alipay_sign.parse_timestamp(text)
    except ValueError:
        return None


def _gray_percent(strategy: object) -> int | None:
    """``"p30"`` → 30; ``None`` when Alipay does not say (or says something else)."""
    match = re.fullmatch(r"[pP](\d{1,3})", strategy) if isinstance(strategy, str) else None
    return int(match.group(1)) if match else None


def _memos(record: object) -> list[str]:
    """The memo texts of a ``base_audit_record``/``promote_audit_record`` (an object
    ``{audit_images, memos: [{memo, …}]}``, or the same as JSON text)."""
    if isinstance(record, str):
        given = record.strip()
        try:
            record = json.loads(given)
        except ValueError:
            return [given] if given else []
    memos = record.get("memos") if isinstance(record, dict) else None
    texts: list[str] = []
    for memo in memos if isinstance(memos, list) else ():
        text = memo.get("memo") if isinstance(memo, dict) else None
        if isinstance(text, str) and text.strip():
            texts.append(text.strip())
    return texts


AUDIT_RECORDS = (("base_audit_record", "admission"), ("promote_audit_record", "marketing"))
"""detail.query's ``MiniAppAuditReason`` records, and the review each is of."""

_UNSAFE_IN_LINK = re.compile(r"[\s<>|\"\x00-\x1f\x7f]")
"""Characters no image link is taken with: whitespace and controls, and what would break
the link where it is shown (``<url|text>`` in Slack)."""


def _record_of(record: object) -> Mapping[str, Any]:
    """A ``MiniAppAuditReason`` given as an object or as JSON text; ``{}`` for anything else."""
    if isinstance(record, str):
        try:
            record = json.loads(record)
        except ValueError:
            return {}
    return record if isinstance(record, dict) else {}


def _links(images: object) -> list[str]:
    """The usable http(s) URLs of an image list (``audit_images``, ``memo_image_list``):
    anything else (another scheme, no host, a space or ``|`` in it) is left out."""
    urls: list[str] = []
    for image in images if isinstance(images, list) else ():
        url = image.strip() if isinstance(image, str) else ""
        if url and not _UNSAFE_IN_LINK.search(url) and url_problem(url) is None:
            urls.append(url)
    return urls


def _audit_images(detail: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(URL, review, memo)`` for each image in the admission and marketing review records
    (``audit_images``, then each memo's ``memo_image_list`` with its memo), in that order,
    each URL once; ``review`` is "admission" or "marketing", ``memo`` may be empty."""
    found: dict[str, tuple[str, str]] = {}
    for field_name, review in AUDIT_RECORDS:
        record = _record_of(detail.get(field_name))
        for url in _links(record.get("audit_images")):
            found.setdefault(url, (review, ""))
        memos = record.get("memos")
        for memo in memos if isinstance(memos, list) else ():
            if not isinstance(memo, dict):
                continue
            text = memo.get("memo")
            said = text.strip() if isinstance(text, str) else ""
            for url in _links(memo.get("memo_image_list")):
                found.setdefault(url, (review, said))
    return [(url, review, memo) for url, (review, memo) in found.items()]


def _rejection(detail: Mapping[str, Any]) -> str:
    """Why Alipay rejected a version: ``reject_reason``; else (``audit_rule=BASE_PROMOTE``)
    the memos of the admission and marketing reviews; else which of them refused."""
    reason = str(detail.get("reject_reason") or "").strip()
    if reason:
        return reason
    memos = _memos(detail.get("base_audit_record")) + _memos(detail.get("promote_audit_record"))
    if memos:
        return "\n".join(memos)
    refused = [
        review
        for field_name, review in (("base_audit", "admission"), ("promote_audit", "marketing"))
        if detail.get(field_name) == "REJECT"
    ]
    return f"Alipay's {' and '.join(refused)} review refused it" if refused else ""


def _publishable(status: str, detail: Mapping[str, Any]) -> bool:
    """Approved (or gray), and under BASE_PROMOTE allowed online (``can_release``)."""
    return status in ("WAIT_RELEASE", "GRAY") or (
        status in PASSED_FOR_RELEASE and detail.get("can_release") != "false"
    )
