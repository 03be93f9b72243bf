"""The Alipay adapter: :class:`AlipayPlatform`, the operations of the mixins beside it
put together, built from its settings and the apps' sections.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pydantic import ValidationError

from platforms.alipay.authorization import AlipayAuthorization
from platforms.alipay.config import AlipayAppConfig, AlipaySettings, _without_input
from platforms.alipay.keys import caller_for, isv_keys
from platforms.alipay.pushes import AlipayPushes
from platforms.alipay.reading import (
    ALL_STATUSES,
    LISTED_STATUSES,
    REVIEW_STATUSES,
    VERSION_STATES,
    _decided_at,
    _status_words,
    version_key,
)
from platforms.alipay.release import AlipayRelease
from platforms.alipay.review import AlipayReview
from platforms.alipay.trial import AlipayTrial
from platforms.alipay.upload import AlipayUpload
from platforms.base import GrayPlan, Overview, ReviewState, ReviewStatus, VersionInfo, url_problem
from platforms.errors import ConfigError, NotFound
from platforms.transport import Sender

log = logging.getLogger(__name__)

__all__ = ["AlipayPlatform"]


class AlipayPlatform(
    AlipayUpload, AlipayReview, AlipayRelease, AlipayTrial, AlipayPushes, AlipayAuthorization
):
    """Alipay mini programs through the v2 gateway: template builds (or minidev uploads),
    review, gray release, publish, rollback, offline, trial QR codes, and merchants'
    authorizations of the third-party app (``connect alipay``)."""

    name = "alipay"
    display_name = "Alipay"
    docs_url = "https://opendocs.alipay.com/isv/03kqzl"

    Settings = AlipaySettings
    AppConfig = AlipayAppConfig
    single_trial_version = False  # development versions coexist; each can be submitted
    gray_steps: ClassVar[tuple[int, ...] | None] = (10, 30, 50)  # gray_strategy p10/p30/p50
    rollback_to_any = False  # rollback returns to the previous online version only
    id_field = "app_id"
    withdraws_decided = True  # audited.cancel: an approved or rejected version back to development
    # quotas: the base's none: the fact sheet documents no submit, expedite or withdraw
    # limit an API reports (only 5 template-built mini programs per template per day)

    def __init__(
        self,
        settings: Any,
        apps: Mapping[str, Any],
        *,
        sender: Sender | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(settings, AlipaySettings):
            raise ConfigError("AlipayPlatform needs AlipayPlatform.Settings")
        problem = url_problem(settings.gateway)
        if problem is not None:
            raise ConfigError(
                f"ALIPAY_GATEWAY must be an http(s) URL such as "
                f"https://openapi.alipay.com/gateway.do, not {settings.gateway!r} ({problem})"
            )
        problem = url_problem(settings.authorize_page)
        if problem is not None:
            raise ConfigError(
                f"ALIPAY_AUTHORIZE_PAGE must be an http(s) URL such as "
                f"https://b.alipay.com/page/message/tasksDetail, not "
                f"{settings.authorize_page!r} ({problem})"
            )
        try:
            configs = {
                key: cfg
                if isinstance(cfg, AlipayAppConfig)
                else AlipayAppConfig.model_validate(cfg)
                for key, cfg in apps.items()
            }
        except ValidationError as exc:
            raise ConfigError(
                f"an [apps.*.alipay] section is invalid: {_without_input(exc)}"
            ) from None
        isv = isv_keys(settings)
        callers = {key: caller_for(key, cfg, settings, isv) for key, cfg in configs.items()}
        super().__init__(settings, configs, sender=sender, clock=clock)
        self.settings: AlipaySettings = settings
        self._callers = callers
        self._unusable: dict[str, str] = {}  # app → why it cannot be called
        self._isv = isv
        self._isv_public = isv[1]
        self._gray_shares: dict[tuple[str, str], int] = {}  # the share gray() last set
        self._lists_promote_reject = True  # list.query takes PROMOTE_AUDIT_REJECT (UNCERTAIN)

    def _forget(self, keys: set[str]) -> None:
        """New signers for the apps whose sections changed; an app whose keys or token
        are unusable is refused alone, with the reason, when it is called."""
        for key in keys:
            self._callers.pop(key, None)
            self._unusable.pop(key, None)
            cfg = self.apps.get(key)
            if cfg is None:
                continue
            try:
                self._callers[key] = caller_for(key, cfg, self.settings, self._isv)
            except ConfigError as exc:
                log.error("%s", exc)
                self._unusable[key] = str(exc)

    @classmethod
    def is_configured(cls, settings: Any) -> bool:
        return bool(
            getattr(settings, "app_id", "")
            and (settings.private_key or settings.private_key_file)
            and (settings.alipay_public_key or settings.alipay_public_key_file)
        )

    @classmethod
    def describe_app(cls, config: Any) -> str:
        """``mini program 2021… from template 2021… (via the third-party app)``."""
        cfg = (
            config
            if isinstance(config, AlipayAppConfig)
            else AlipayAppConfig.model_validate(config)
        )
        text = f"mini program {cfg.app_id}"
        if cfg.template_id:
            version = f" {cfg.template_version}" if cfg.template_version else ""
            text += f" from template {cfg.template_id}{version}"
        elif cfg.project_path is not None:
            text += f" uploaded with minidev from {cfg.project_path}"
        if cfg.private_key is not None:
            return text + " (self-owned keys)"
        return text + " (via the third-party app)"

    # -- what Alipay shows -------------------------------------------------------------

    async def overview(self, app: str) -> Overview:
        """Live, newest development and latest reviewed versions, from ``list.query``; the
        gray release, if any, from ``detail.query``."""
        infos = await self._listed(app, LISTED_STATUSES)

        def newest(*statuses: str) -> str | None:
            for info in infos:
                if info.get("version_status") in statuses:
                    return str(info.get("app_version"))
            return None

        live, trial, reviewed = newest("RELEASE"), newest("INIT"), newest(*REVIEW_STATUSES)
        review: ReviewStatus | None = None
        gray: GrayPlan | None = None
        if reviewed:
            try:
                detail = await self._detail(app, reviewed)
            except NotFound:
                review = ReviewStatus(ReviewState.UNKNOWN, reviewed, reviewed)
            else:
                review = self._review(app, reviewed, reviewed, detail)
                if detail.get("status") == "GRAY":
                    gray = self._gray_plan(app, reviewed, detail)
        lines = tuple(
            f"{info.get('app_version')}: {_status_words(str(info.get('version_status')))}"
            for info in infos[:5]
        )
        return Overview(
            live_version=live, trial_version=trial, review=review, gray=gray, lines=lines
        )

    async def versions(self, app: str) -> list[VersionInfo]:
        """Every version Alipay lists (at most the latest 20), newest first; ``rollback``
        marks the one a rollback would bring back."""
        infos = await self._listed(app, ALL_STATUSES)
        live = next(
            (str(i.get("app_version")) for i in infos if i.get("version_status") == "RELEASE"),
            None,
        )
        plan = await self._rollback_target(app, infos, live)
        out = []
        for info in infos:
            name, status = str(info.get("app_version", "")), str(info.get("version_status", ""))
            state = VERSION_STATES.get(status, status.lower() or "unknown")
            if status == "OFFLINE" and live and version_key(name) < version_key(live):
                state = "earlier release"
            out.append(
                VersionInfo(
                    version=name,
                    state=state,
                    created_at=_decided_at(info.get("create_time")),
                    description=str(info.get("version_description") or ""),
                    rollback=name == plan.target and plan.blocked is None,
                )
            )
        return out
