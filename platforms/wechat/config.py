"""What the WeChat adapter is configured with: ``WECHAT_*`` settings and an app's
``[apps.<key>.wechat]`` section, with the ext_json checks both run before anything is sent.

The model classes keep the names ``_Settings`` and ``_AppConfig``: pydantic names the
class in its validation messages, which people see.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from platforms.base import SecretRef, url_problem
from platforms.wechat.api import _json

__all__ = ["EXT_JSON_KEYS", "ext_json_problems"]


EXT_JSON_KEYS = frozenset(
    {
        "extEnable",
        "extAppid",
        "directCommit",
        "ext",
        "extPages",
        "pages",
        "window",
        "tabBar",
        "networkTimeout",
        "subPackages",
        "subpackages",
        "plugins",
        "navigateToMiniProgramAppIdList",
        "requiredPrivateInfos",
        "sitemap",
        "customOpen",
        "functionPages",
    }
)
"""What ext.json may hold (fact sheet §4.1), plus ``extEnable``/``directCommit`` that the
developer tools write into every ext.json and ``subpackages`` (app.json's other spelling)."""

_OBJECT_KEYS = ("ext", "extPages", "window", "tabBar", "networkTimeout", "plugins")

_STRING_LIST_KEYS = ("pages", "navigateToMiniProgramAppIdList", "requiredPrivateInfos")


def ext_json_problems(ext: Any, appid: str) -> list[str]:
    """What is wrong with an app's ext_json before it is sent to ``/wxa/commit``.

    The checks are the fact sheet's (§4.1 and the commit errors 85013/85045–85048): a JSON
    object of the known keys, ``extAppid`` the app's appid, objects and lists where WeChat
    expects them, a non-empty ``pages`` list, tabBar items with a ``pagePath`` among the
    pages. (The sheet gives no size limit for ext_json; none is imposed here.)
    """
    if not isinstance(ext, Mapping):
        return ["it must be a table (a JSON object)"]
    problems: list[str] = []
    unknown = sorted(str(k) for k in ext if k not in EXT_JSON_KEYS)
    if unknown:
        problems.append(
            f"unknown key(s) {', '.join(unknown)}; ext.json takes "
            f"{', '.join(sorted(EXT_JSON_KEYS))}"
        )
    given = ext.get("extAppid")
    if given is not None and given != appid:
        problems.append(f"extAppid must be the app's appid {appid}, not {given!r}")
    problems += _shape_problems(ext)
    pages = ext.get("pages")
    if isinstance(pages, list) and not pages:
        problems.append("pages must not be empty (WeChat answers 85047)")
    ext_pages = ext.get("extPages")
    if isinstance(ext_pages, Mapping):
        bad = [str(k) for k, v in ext_pages.items() if not isinstance(v, Mapping)]
        if bad:
            problems.append(f"extPages entries must be tables: {', '.join(bad)}")
    problems += _tab_bar_problems(ext.get("tabBar"), pages)
    problems += _subpackage_problems(ext)
    try:
        _json(ext)
    except (TypeError, ValueError) as exc:
        problems.append(f"it cannot be written as JSON ({exc})")
    return problems


def _shape_problems(ext: Mapping[str, Any]) -> list[str]:
    """Objects and lists of strings where WeChat expects them."""
    problems: list[str] = []
    for key in _OBJECT_KEYS:
        if key in ext and not isinstance(ext[key], Mapping):
            problems.append(f"{key} must be a table (a JSON object)")
    for key in _STRING_LIST_KEYS:
        value = ext.get(key)
        if key in ext and not (
            isinstance(value, list) and all(isinstance(v, str) and v for v in value)
        ):
            problems.append(f"{key} must be a list of non-empty strings")
    return problems


def _tab_bar_problems(tab_bar: object, pages: object) -> list[str]:
    """tabBar items with a ``pagePath`` that is one of ``pages`` (when pages are given)."""
    if not (isinstance(tab_bar, Mapping) and "list" in tab_bar):
        return []
    items = tab_bar["list"]
    if not isinstance(items, list):
        return ["tabBar.list must be a list"]
    problems: list[str] = []
    for n, item in enumerate(items, 1):
        path = item.get("pagePath") if isinstance(item, Mapping) else None
        if not isinstance(path, str) or not path:
            problems.append(f"tabBar.list item {n} has no pagePath (WeChat answers 85046)")
        elif isinstance(pages, list) and pages and path not in pages:
            problems.append(f"tabBar.list item {n}: {path} is not one of pages")
    return problems


def _subpackage_problems(ext: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for key in ("subPackages", "subpackages"):
        if key not in ext:
            continue
        subs = ext[key]
        if not isinstance(subs, list) or not all(
            isinstance(s, Mapping) and isinstance(s.get("root"), str) for s in subs
        ):
            problems.append(f"{key} must be a list of tables with a root")
    return problems


_URL_EXAMPLES = {
    "api_base": "https://api.weixin.qq.com",
    "authorize_page_base": "https://mp.weixin.qq.com",
}


class _Settings(BaseSettings):
    """Adapter settings, from ``WECHAT_*`` environment variables (or ``.env``)."""

    model_config = SettingsConfigDict(env_prefix="WECHAT_", env_file=".env", extra="ignore")

    api_base: str = "https://api.weixin.qq.com"
    authorize_page_base: str = "https://mp.weixin.qq.com"
    """Where the authorization page (componentloginpage) is served."""
    component_appid: str = ""
    component_secret: SecretStr | None = None
    component_verify_ticket: SecretStr | None = None
    component_token: SecretStr | None = None
    encoding_aes_key: SecretStr | None = None
    max_retries: int = Field(default=2, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=0.5, ge=0.0)
    privacy_scan_retries: int = Field(default=6, ge=0, le=60)
    """How many times submit waits for WeChat's privacy-API scan (61039) before giving up."""
    privacy_scan_wait_seconds: float = Field(default=10.0, ge=0.0)
    """How long each of those waits is."""
    miniprogram_ci_robot: int = Field(default=1, ge=1, le=30)
    """The miniprogram-ci robot (1–30) that uploads the code of apps owned directly."""
    miniprogram_ci_timeout_seconds: float = Field(default=600.0, gt=0.0)

    @field_validator("api_base", "authorize_page_base")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        problem = url_problem(value)
        if problem is not None:
            name = f"WECHAT_{(info.field_name or '').upper()}"
            example = _URL_EXAMPLES.get(info.field_name or "", "https://api.weixin.qq.com")
            raise ValueError(f"{name} must be an http(s) URL such as {example} ({problem})")
        return value.rstrip("/")


class _AppConfig(BaseModel):
    """One app's ``[apps.<key>.wechat]`` section.

    Through the third-party platform::

        [apps.shop.wechat]
        appid = "wx3a5f9c2e1b7d4f60"
        original_id = "gh_3a5f9c2e1b7d"
        template_id = 12
        ext_json = { ext = { shop = "demo" } }
        review_notes = "Test account: demo / demo1234."
        # refresh_token = "env:SHOP_WECHAT_REFRESH_TOKEN"   # else `connect shop wechat`

    Owned directly (upload only, with miniprogram-ci)::

        [apps.shop.wechat]
        appid = "wx3a5f9c2e1b7d4f60"
        project_path = "../shop-miniprogram"      # holds project.config.json
        private_key = "file:/etc/miniship/shop-upload.key"
    """

    model_config = ConfigDict(extra="forbid")

    appid: str = Field(description="the mini program's AppID (wx…)")
    original_id: str | None = Field(default=None, description="the original id (gh_…)")
    template_id: int | None = Field(
        default=None, ge=0, description="template in the platform's template library"
    )
    ext_json: dict[str, Any] = Field(default_factory=dict)
    refresh_token: SecretRef | None = None
    item_list: list[dict[str, Any]] | None = Field(default=None, min_length=1, max_length=5)
    review_notes: str = ""
    privacy_api_not_use: bool = False
    """Declare at submit that privacy APIs WeChat's scan found are not used (avoids 61040)."""
    project_path: Path | None = None
    """Owned directly: the code directory (with project.config.json) miniprogram-ci uploads."""
    private_key: SecretRef | None = None
    """Owned directly: the code-upload key from mp.weixin.qq.com (开发管理 → 开发设置)."""

    @field_validator("appid")
    @classmethod
    def _appid(cls, value: str) -> str:
        if not re.fullmatch(r"wx[0-9A-Za-z]{16}", value):
            raise ValueError(
                "a WeChat AppID is wx followed by 16 letters or digits (see the mini program's "
                "development settings)"
            )
        return value

    @field_validator("original_id")
    @classmethod
    def _original_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"gh_[0-9A-Za-z]{4,32}", value):
            raise ValueError("an original id looks like gh_ followed by letters and digits")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> _AppConfig:
        if self.project_path is not None:
            if self.template_id is not None:
                raise ValueError(
                    "give either template_id (through the third-party platform) or "
                    "project_path and private_key (owned directly, uploaded with "
                    "miniprogram-ci), not both"
                )
            if self.private_key is None:
                raise ValueError(
                    "project_path needs private_key: the code-upload key from "
                    "mp.weixin.qq.com → 开发管理 → 开发设置 → 小程序代码上传, as "
                    '"file:/path" or "env:NAME"'
                )
        elif self.private_key is not None:
            raise ValueError("private_key is only for apps owned directly: add project_path")
        problems = ext_json_problems(self.ext_json, self.appid)
        if problems:
            raise ValueError("ext_json: " + "; ".join(problems))
        return self

    @property
    def direct(self) -> bool:
        """True for a mini program owned directly (uploaded with miniprogram-ci)."""
        return self.project_path is not None
