"""miniship.toml and settings: good files load, bad ones say exactly what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.config import Settings, load_config, parse_config
from platforms.errors import ConfigError

REPO = Path(__file__).parents[2]
WECHAT = {"appid": "wx3a5f9c2e1b7d4f60", "template_id": 1}


def test_the_repository_file_loads() -> None:
    config = load_config(REPO / "miniship.toml")
    demo = config.apps["demo"]
    assert demo.name == "Demo Shop" and demo.timezone.key == "Asia/Shanghai"
    assert set(demo.platforms) == {"wechat", "alipay"}
    assert set(config.platform_apps("alipay")) == {"demo"}


def test_timezones_default_and_per_app() -> None:
    config = parse_config(
        {
            "timezone": "Europe/Berlin",
            "apps": {"a": {"wechat": WECHAT}, "b": {"timezone": "UTC", "wechat": WECHAT}},
        }
    )
    assert config.apps["a"].timezone.key == "Europe/Berlin"
    assert config.apps["b"].timezone.key == "UTC"
    assert parse_config({"apps": {"a": {"wechat": WECHAT}}}).apps["a"].timezone.key == (
        "Asia/Shanghai"
    )


def test_secrets_come_from_env_or_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DEMO_TOKEN", "from-env")
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    a = parse_config({"apps": {"a": {"wechat": {**WECHAT, "refresh_token": "env:DEMO_TOKEN"}}}})
    b = parse_config({"apps": {"a": {"wechat": {**WECHAT, "refresh_token": f"file:{secret}"}}}})
    for config, value in ((a, "from-env"), (b, "from-file")):
        token = config.apps["a"].platforms["wechat"].refresh_token  # type: ignore[attr-defined]
        assert token.get_secret_value() == value
        assert value not in repr(config)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"apps": {"a": {"wechat": {**WECHAT, "refresh_token": "abc123"}}}}, "env:VARIABLE"),
        ({"apps": {"a": {"wechat": {**WECHAT, "refresh_token": "env:NOPE_UNSET"}}}}, "NOPE_UNSET"),
        ({"apps": {"a": {"wechat": {**WECHAT, "refresh_token": "file:/nope"}}}}, "cannot read"),
        ({"apps": {"a": {"wechat": {**WECHAT, "typo": 1}}}}, "[apps.a.wechat]: typo"),
        ({"apps": {"a": {"wechat": {"template_id": 1}}}}, "appid"),
        ({"apps": {"a": {"weixin": WECHAT}}}, "unknown key or platform 'weixin'"),
        ({"apps": {"a": {"name": "A"}}}, "add at least one platform section"),
        ({"apps": {"a": {"timezone": "Mars/Base", "wechat": WECHAT}}}, "unknown time zone"),
        ({"timezone": "Nowhere", "apps": {}}, "unknown time zone"),
        ({"app": {}}, "unknown top-level key(s) app"),
        ({"apps": []}, "[apps] must be a table"),
        ({"apps": {"a": 3}}, "[apps.a] must be a table"),
    ],
)
def test_bad_config_is_explained(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert message in str(err.value)


def test_unreadable_files_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[apps\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("MINISHIP_EMULATOR_REVIEW_SECONDS", "5")
    monkeypatch.setenv("MINISHIP_EMULATORS", "on")
    s = Settings(_env_file=None)
    assert s.database_url == "postgresql://u@h/db"
    assert s.emulator_review_seconds == 5 and s.emulators == "on"
    monkeypatch.setenv("MINISHIP_EMULATORS", "sometimes")
    with pytest.raises(ValueError, match="auto"):
        Settings(_env_file=None)
