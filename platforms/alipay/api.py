"""Names of the Alipay gateway methods, messages and form parts (fact sheet §3, §4).

Constants only, shared by the adapter (:mod:`platforms.alipay`) and the emulator
(:mod:`platforms.emulators.alipay`) so both speak of the same wire names. The rules each
side checks (lengths, counts, sizes, version order) are kept apart on purpose: the
emulator checks them with its own code, so a mistake in the adapter's reading of a rule
does not pass on both sides at once.
"""

from __future__ import annotations

UPLOAD = "alipay.open.mini.version.upload"
BUILD_QUERY = "alipay.open.mini.version.build.query"
AUDIT_APPLY = "alipay.open.mini.version.audit.apply"
AUDIT_CANCEL = "alipay.open.mini.version.audit.cancel"
AUDITED_CANCEL = "alipay.open.mini.version.audited.cancel"
DETAIL_QUERY = "alipay.open.mini.version.detail.query"
LIST_QUERY = "alipay.open.mini.version.list.query"
ONLINE = "alipay.open.mini.version.online"
OFFLINE = "alipay.open.mini.version.offline"
ROLLBACK = "alipay.open.mini.version.rollback"
GRAY_ONLINE = "alipay.open.mini.version.gray.online"
GRAY_CANCEL = "alipay.open.mini.version.gray.cancel"
EXPERIENCE_CREATE = "alipay.open.mini.experience.create"
EXPERIENCE_QUERY = "alipay.open.mini.experience.query"
AUTH_GRANT = "alipay.open.auth.token.app"

AUDIT_PASSED = "alipay.open.mini.version.audit.passed"  # message-service topics (§4)
AUDIT_REJECTED = "alipay.open.mini.version.audit.rejected"

SCREENSHOT_PARTS = (
    "first_screen_shot",
    "second_screen_shot",
    "third_screen_shot",
    "fourth_screen_shot",
    "fifth_screen_shot",
)
"""The multipart file parts of ``audit.apply`` that carry screenshots, in order (§3.3)."""
