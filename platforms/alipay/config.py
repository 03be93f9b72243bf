"""What the Alipay adapter is configured with: ``ALIPAY_*`` settings and an app's
``[apps.<key>.alipay]`` section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from platforms.alipay.api import SCREENSHOT_PARTS
from platforms.base import SecretRef

__all__ = ["AlipayAppConfig", "AlipaySettings"]


class AlipaySettings(BaseSettings):
    """Adapter settings, from ``ALIPAY_*`` environment variables (or ``.env``).

    Waiting: ``upload`` waits up to ``ALIPAY_BUILD_WAIT_SECONDS`` for a template build and
    ``trial_code`` up to ``ALIPAY_TRIAL_WAIT_SECONDS`` for the trial package, asking Alipay
    every ``ALIPAY_POLL_SECONDS``; ``ALIPAY_MINIDEV_TIMEOUT_SECONDS`` bounds a minidev upload.
    ``ALIPAY_AUTHORIZE_PAGE`` is the page of Alipay's "specified app" authorization
    (指定应用授权) that ``connect alipay`` links to.
    """

    model_config = SettingsConfigDict(
        env_prefix="ALIPAY_", env_file=".env", extra="ignore", populate_by_name=True
    )

    gateway: str = "https://openapi.alipay.com/gateway.do"
    # the page a merchant authorizes the third-party app on (``connect alipay``)
    authorize_page: str = "https://b.alipay.com/page/message/tasksDetail"
    app_id: str = ""
    private_key: SecretStr | None = None
    private_key_file: Path | None = None
    # ALIPAY_PUBLIC_KEY reads better than the field's own ALIPAY_ALIPAY_PUBLIC_KEY; both work
    alipay_public_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices(
            "ALIPAY_PUBLIC_KEY", "ALIPAY_ALIPAY_PUBLIC_KEY", "alipay_public_key"
        ),
    )
    alipay_public_key_file: Path | None = Field(
        None,
        validation_alias=AliasChoices(
            "ALIPAY_PUBLIC_KEY_FILE", "ALIPAY_ALIPAY_PUBLIC_KEY_FILE", "alipay_public_key_file"
        ),
    )
    max_retries: int = Field(default=2, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=0.5, ge=0.0)
    build_wait_seconds: float = Field(default=120.0, ge=0.0)
    trial_wait_seconds: float = Field(default=60.0, ge=0.0)
    poll_seconds: float = Field(default=3.0, gt=0.0)
    minidev_timeout_seconds: float = Field(default=600.0, gt=0.0)


class AlipayAppConfig(BaseModel):
    """One app's ``[apps.<key>.alipay]`` section.

    A merchant mini program built from a third-party template::

        [apps.shop.alipay]
        app_id = "2021004100000001"
        template_id = "2021004100009999"
        app_auth_token = "env:SHOP_ALIPAY_APP_AUTH_TOKEN"
        app_refresh_token = "env:SHOP_ALIPAY_APP_REFRESH_TOKEN"
        review_notes = "测试账号见下；主要改动：……"
        region_type = "LOCATION"          # CHINA (default), GLOBAL or LOCATION
        service_region_info = [{province_code = "310000", province_name = "上海市"}]
        memo = "Log in with the test account; the order pages need a paid order."
        test_account = "reviewer@example.com"
        test_password = "env:SHOP_ALIPAY_TEST_PASSWORD"
        screenshots = ["shots/home.png", "shots/cart.png"]   # 2–5 PNG/JPEG files ≤ 4 MB

    A mini program owned directly, uploaded with minidev (its own keys sign the gateway
    calls)::

        [apps.own.alipay]
        app_id = "2021004100000002"
        private_key = "file:/etc/miniship/own-app-private-key.txt"
        alipay_public_key = "file:/etc/miniship/own-alipay-public-key.txt"
        project_path = "../own-mini-program/dist"
        tool_id = "TOOL2021…"
        tool_private_key = "file:/etc/miniship/own-tool-private-key.txt"
    """

    model_config = ConfigDict(extra="forbid")

    app_id: str = Field(pattern=r"^\d+$", description="the merchant mini program's APPID")
    template_id: str | None = None
    template_version: str | None = None
    ext: dict[str, Any] = Field(default_factory=dict)
    bundle_id: str = "com.alipay.alipaywallet"
    app_auth_token: SecretRef | None = None
    app_refresh_token: SecretRef | None = None
    private_key: SecretRef | None = None
    alipay_public_key: SecretRef | None = None
    region_type: Literal["CHINA", "GLOBAL", "LOCATION"] = "CHINA"
    service_region_info: list[dict[str, str]] = Field(default_factory=list)
    review_notes: str = ""
    memo: str = Field(default="", max_length=500)
    test_account: str | None = None
    test_password: SecretRef | None = None
    screenshots: list[Path] = Field(default_factory=list, max_length=len(SCREENSHOT_PARTS))
    project_path: Path | None = None
    tool_id: str | None = None
    tool_private_key: SecretRef | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AlipayAppConfig:
        if self.region_type == "LOCATION" and not self.service_region_info:
            raise ValueError('region_type "LOCATION" needs service_region_info entries')
        for region in self.service_region_info:
            if not (region.get("province_code") and region.get("province_name")):
                raise ValueError("each service_region_info entry needs province_code and name")
            if region.get("area_code") and not region.get("city_code"):
                raise ValueError("a service_region_info entry with area_code needs city_code")
        minidev = (self.project_path, self.tool_id, self.tool_private_key)
        if any(v is not None for v in minidev) and not all(v is not None for v in minidev):
            raise ValueError(
                "project_path, tool_id and tool_private_key go together (minidev upload)"
            )
        if len(self.screenshots) == 1:
            raise ValueError("Alipay takes 2–5 screenshots; give none to keep those it has")
        return self

    @property
    def uses_minidev(self) -> bool:
        return self.project_path is not None


def _without_input(exc: ValidationError) -> str:
    """pydantic's complaints without the values given, which may be secrets typed in."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'section'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    )
