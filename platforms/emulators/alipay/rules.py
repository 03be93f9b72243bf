"""The emulator's own reading of Alipay's rules: version numbers and their order, review
notes' length, regions, screenshots, gray shares, and what a decided review sets.

Written apart from the adapter's on purpose (see :mod:`platforms.alipay.api`): a
mistake in one reading of a rule does not pass on both sides at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = []


REGION_TYPES = frozenset({"GLOBAL", "CHINA", "LOCATION"})
PASSED_FOR_RELEASE = frozenset({"BASE_AUDIT_PASS", "PROMOTE_AUDIT_REJECT"})  # BASE_PROMOTE
PUBLISHABLE = frozenset({"WAIT_RELEASE", "GRAY", *PASSED_FOR_RELEASE})  # with can_release
DECIDED = frozenset({"WAIT_RELEASE", "AUDIT_REJECT", *PASSED_FOR_RELEASE})  # audited.cancel
OPEN_REVIEW = frozenset({"AUDITING", "GRAY", *DECIDED})
GRAY_STRATEGIES = ("p10", "p30", "p50")  # in the order a gray release may grow
VERSION_DESC_LENGTHS = (30, 500)  # counted as _desc_length does
SCREENSHOT_EXTENSIONS = (".png", ".jpg", ".jpeg")
SCREENSHOT_MAX_BYTES = 4 * 1024 * 1024
REGION_FIELDS = frozenset(
    {"province_code", "province_name", "city_code", "city_name", "area_code", "area_name"}
)
VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
MAX_VERSION_PART = 2147483647
BASE_MARK = "#base"  # in the notes: admission passed, marketing refused (BASE_AUDIT_PASS)
PROMOTE_MARK = "#promote"  # the same, as the UNCERTAIN status PROMOTE_AUDIT_REJECT
WIDE = re.compile(
    "[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf"
    "\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6"
    "\U00020000-\U0003fffd]"
)
"""Characters Alipay counts twice in ``version_desc`` (Chinese, Japanese, Korean and
full-width forms): the emulator's own reading of "Chinese counts 2" (§3.3)."""


def _desc_length(text: str) -> int:
    """``version_desc`` length as the emulator counts it: wide characters count 2."""
    return len(text) + len(WIDE.findall(text))


def _version_key(name: str) -> tuple[int, ...]:
    """``"1.2.10"`` → ``(1, 2, 10)``, for ordering; anything else sorts first."""
    match = VERSION_RE.match(name)
    return tuple(int(part) for part in match.groups()) if match else ()


RECORD_FIELDS = (
    ("base_audit_record", "base_audit_reason"),
    ("promote_audit_record", "promote_audit_reason"),
)  # detail.query field → audit push field (fact sheet §3.11, §4)
VERDICT_FIELDS = (
    "reject_reason",
    "base_audit",
    "promote_audit",
    "can_release",
    *(record for record, _ in RECORD_FIELDS),
)
MARKETING_REFUSAL = "推广素材与服务内容不符 (#base/#promote) — emulated marketing review."


def _record(memo: str, evidence: Sequence[str] = ()) -> dict[str, Any]:
    """A ``MiniAppAuditReason`` (fact sheet §3.11) holding one memo; of the ``evidence``
    image URLs the first goes in ``audit_images``, the rest with the memo
    (``memo_image_list``)."""
    return {
        "audit_images": list(evidence[:1]),
        "memos": [{"memo": memo, "memo_image_list": list(evidence[1:])}],
    }


def _verdict(
    notes: str, approved: bool, reason: str, evidence: Sequence[str] = ()
) -> dict[str, Any]:
    """The fields a decided review sets. With ``#base``/``#promote`` in the notes it is
    reviewed as under ``audit_rule=BASE_PROMOTE``: admission and marketing apart.

    A rejection shows its ``evidence`` (image URLs) in ``base_audit_record``, with the
    reason as its memo: INFERRED, the sheet gives the records' shape, not when a rejection
    outside BASE_PROMOTE fills them."""
    if BASE_MARK not in notes and PROMOTE_MARK not in notes:
        if approved:
            return {"status": "WAIT_RELEASE"}
        verdict: dict[str, Any] = {"status": "AUDIT_REJECT", "reject_reason": reason}
        if evidence:
            verdict["base_audit_record"] = _record(reason, evidence)
        return verdict
    if not approved:  # refused at admission: the reason stands in its record only
        return {
            "status": "AUDIT_REJECT",
            "base_audit": "REJECT",
            "base_audit_record": _record(reason, evidence),
        }
    return {
        "status": "PROMOTE_AUDIT_REJECT" if PROMOTE_MARK in notes else "BASE_AUDIT_PASS",
        "base_audit": "PASS",
        "promote_audit": "REJECT",
        "promote_audit_record": _record(MARKETING_REFUSAL),
        "can_release": "true",
    }


def _clear_verdict(version: dict[str, Any]) -> None:
    """Forget a decided review (the version goes back to development, or is submitted)."""
    version.update(dict.fromkeys(VERDICT_FIELDS, ""))
