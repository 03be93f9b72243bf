"""The errors a platform adapter may raise.

Adapters never leak ``httpx`` exceptions or raw platform JSON: every failure is one of
these, carrying the platform's own code and message so a person can look it up, and an
``explanation`` in plain words (with the next step where there is one).

    PlatformError                 base; .platform .code .platform_message .explanation
    ├── AuthError                 credentials, tokens, authorization or IP whitelist
    ├── QuotaExceeded             rate limit or a quota is spent; .retry_after if known
    ├── AlreadyInReview           the platform already has a version under review
    ├── NotFound                  version, audit, template or app unknown to the platform
    ├── InvalidInput              the platform refused what we sent (bad field, bad version)
    ├── InvalidState              the step is not allowed in the platform's current state
    │   └── Unsupported           this platform does not offer the operation at all
    ├── PlatformUnavailable       busy, timed out, HTTP 5xx, connection refused — try later
    │   └── OutcomeUnknown        a change was sent, but whether it happened is not known
    └── BadResponse               the answer was malformed or its signature did not verify

``ConfigError`` is separate: it is raised while building an adapter from settings, before
any call is made, and says which setting is wrong.
"""

from __future__ import annotations

__all__ = [
    "AlreadyInReview",
    "AuthError",
    "BadResponse",
    "ConfigError",
    "InvalidInput",
    "InvalidState",
    "NotFound",
    "OutcomeUnknown",
    "PlatformError",
    "PlatformUnavailable",
    "QuotaExceeded",
    "Unsupported",
]


class ConfigError(Exception):
    """A setting or a section of miniship.toml is missing or wrong."""


class PlatformError(Exception):
    """A platform call failed.

    Args:
        platform: registry name of the platform (``"wechat"``).
        code: the platform's own error code as text (``"85009"``,
            ``"CAN_NOT_SUBMIT_WITH_AUDIT_GRAY"``), or ``""`` when the failure happened
            before the platform answered.
        platform_message: the platform's own message (errmsg / sub_msg), as returned.
        explanation: what this means for the person who typed the command, and what to do.
    """

    kind = "platform error"

    def __init__(
        self,
        platform: str,
        code: str = "",
        platform_message: str = "",
        explanation: str = "",
    ) -> None:
        self.platform = platform
        self.code = code
        self.platform_message = platform_message
        self.explanation = explanation or platform_message or self.kind
        super().__init__(self.describe())

    def describe(self) -> str:
        """One line for a person: ``85009: a version is already under review (already submit…)``."""
        text = self.explanation
        if self.platform_message and self.platform_message not in text:
            text = f"{text} ({self.platform_message})"
        return f"{self.code}: {text}" if self.code else text


class AuthError(PlatformError):
    kind = "authorization failed"


class QuotaExceeded(PlatformError):
    kind = "rate limit or quota reached"

    def __init__(self, *args: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(*args)


class AlreadyInReview(PlatformError):
    kind = "a version is already under review"


class NotFound(PlatformError):
    kind = "not found on the platform"


class InvalidInput(PlatformError):
    kind = "the platform refused the request"


class InvalidState(PlatformError):
    kind = "not allowed in the current state"


class Unsupported(InvalidState):
    kind = "not offered by this platform"


class PlatformUnavailable(PlatformError):
    kind = "platform busy or unreachable"


class BadResponse(PlatformError):
    kind = "malformed or unverifiable platform response"


class OutcomeUnknown(PlatformUnavailable):
    """A change (upload, submit, withdraw, publish) was sent, but whether it happened is unknown.

    The answer was lost (timeout, dropped connection, "system busy", HTTP 5xx) or could not
    be trusted (malformed, missing fields, a signature that did not verify), and asking the
    platform afterwards did not settle it either. The change may or may not have happened:
    look at the status before trying again, never repeat it blindly.

    Adapters also raise it internally, right after the one request that carries a change,
    so the operation knows to ask the platform; ``original`` is the error that request met.
    When the platform confirms the change, the operation succeeds; when it shows the change
    did not happen, the operation raises an error of the ``original`` kind instead. Only when
    neither is known does an ``OutcomeUnknown`` reach the caller.
    """

    kind = "the change may or may not have happened on the platform"

    def __init__(
        self,
        platform: str,
        code: str = "",
        platform_message: str = "",
        explanation: str = "",
        *,
        original: PlatformError | None = None,
    ) -> None:
        self.original = original
        super().__init__(platform, code, platform_message, explanation)

    @classmethod
    def after(cls, error: PlatformError) -> OutcomeUnknown:
        """The unknown outcome of a change whose request met ``error``."""
        if isinstance(error, OutcomeUnknown):
            return error
        return cls(
            error.platform, error.code, error.platform_message, error.explanation, original=error
        )
