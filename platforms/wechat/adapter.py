"""The WeChat adapter: :class:`WeChatPlatform`, the operations of the mixins beside it
put together, built from its settings and the apps' sections.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import SecretStr, ValidationError

from platforms.errors import ConfigError
from platforms.transport import Sender
from platforms.wechat.authorization import WeChatAuthorization
from platforms.wechat.config import _AppConfig, _Settings
from platforms.wechat.health import WeChatHealth
from platforms.wechat.pushes import WeChatPushes
from platforms.wechat.release import WeChatRelease
from platforms.wechat.review import WeChatReview
from platforms.wechat.screenshots import WeChatScreenshots
from platforms.wechat.templates import WeChatTemplates
from platforms.wechat.tokens import _Token
from platforms.wechat.upload import WeChatUpload

__all__ = ["WeChatPlatform"]


class WeChatPlatform(
    WeChatUpload,
    WeChatReview,
    WeChatScreenshots,
    WeChatRelease,
    WeChatHealth,
    WeChatTemplates,
    WeChatAuthorization,
    WeChatPushes,
):
    """WeChat mini programs: template commit, review, publish via a third-party platform."""

    name = "wechat"
    display_name = "WeChat"
    docs_url = (
        "https://developers.weixin.qq.com/doc/oplatform/openApi/miniprogram-management/"
        "code-management/api_commit.html"
    )
    Settings = _Settings
    AppConfig = _AppConfig
    single_trial_version = True  # /wxa/commit overwrites the one trial version
    gray_steps = None  # any whole percentage 1–100, rising
    rollback_to_any = True  # revertcoderelease takes an app_version from the history
    id_field = "appid"
    takes_version_prefix = True  # user_version is free text
    quota_actions = frozenset({"submit", "expedite", "withdraw"})  # queryquota + counted here
    gray_auto_release = timedelta(days=15)  # a gray plan neither completed nor reverted
    reports_errors = True  # jserr_list per version (operations center, permission set 18)

    def __init__(
        self,
        settings: Any,
        apps: Mapping[str, Any],
        *,
        sender: Sender | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(settings, _Settings):
            raise ConfigError("WeChatPlatform needs WeChatPlatform.Settings")
        try:
            configs = {
                key: cfg if isinstance(cfg, _AppConfig) else _AppConfig.model_validate(cfg)
                for key, cfg in apps.items()
            }
        except ValidationError as exc:
            raise ConfigError(f"an [apps.*.wechat] section is invalid: {exc}") from None
        super().__init__(settings, configs, sender=sender, clock=clock)
        self.settings: _Settings = settings
        self._component: _Token | None = None
        self._authorizers: dict[str, _Token] = {}
        self._refresh_tokens: dict[str, SecretStr] = {}  # obtained while running
        self._locks: dict[str, asyncio.Lock] = {}
        self._pushed_ticket: SecretStr | None = None
        self._pushed_ticket_at: datetime | None = None  # its CreateTime
        self._decided: dict[int, datetime] = {}  # auditid → when first seen decided

    def _forget(self, keys: set[str]) -> None:
        for key in keys:
            self._authorizers.pop(key, None)

    @classmethod
    def is_configured(cls, settings: Any) -> bool:
        """AppID and AppSecret given: the verify ticket may come by push (kept in the vault)."""

        def given(secret: SecretStr | None) -> bool:
            return secret is not None and bool(secret.get_secret_value())

        return bool(
            getattr(settings, "component_appid", "")
            and given(getattr(settings, "component_secret", None))
        )

    @classmethod
    def describe_app(cls, config: Any) -> str:
        original = f" ({config.original_id})" if config.original_id else ""
        if config.direct:
            return (
                f"AppID {config.appid}{original}, owned directly "
                f"(miniprogram-ci upload from {config.project_path})"
            )
        if config.template_id is None:
            return f"AppID {config.appid}{original}, template given per upload"
        return f"AppID {config.appid}{original}, template {config.template_id}"
