"""miniship.toml and settings: good files load, bad ones say exactly what is wrong."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import platforms
from handlers.config import ChannelEntry, Settings, load_config, parse_config
from platforms.errors import ConfigError

REPO = Path(__file__).parents[2]
WECHAT = {"appid": "wx3a5f9c2e1b7d4f60", "template_id": 1}
ALIPAY = {"app_id": "2021004100000001"}


def test_the_repository_file_loads() -> None:
    config = load_config(REPO / "miniship.toml")
    demo = config.apps["demo"]
    assert demo.name == "Demo Shop" and demo.timezone.key == "Asia/Shanghai"
    assert demo.platforms and set(demo.platforms) <= set(platforms.names())
    for name in demo.platforms:
        assert set(config.platform_apps(name)) == {"demo"}


def test_timezones_default_and_per_app() -> None:
    config = parse_config(
        {
            "timezone": "Europe/Berlin",
            "apps": {"a": {"wechat": WECHAT}, "b": {"timezone": "UTC", "wechat": WECHAT}},
        }
    )
    assert config.apps["a"].timezone.key == "Europe/Berlin"
    assert config.apps["b"].timezone.key == "UTC"
    assert config.timezone.key == "Europe/Berlin"  # what spans apps (freeze all) uses it
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
        (
            {"apps": {"a": {"version_prefix": "v", "wechat": WECHAT, "alipay": ALIPAY}}},
            "version_prefix 'v' cannot be used: Alipay takes digits-only versions",
        ),
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


# -- channels and the daily digest ----------------------------------------------------------


def channel_apps(**channels: str | None) -> dict[str, object]:
    """An [apps] table: app key → its channel (None: no channel)."""
    return {
        key: {"wechat": WECHAT, **({"channel": cid} if cid else {})}
        for key, cid in channels.items()
    }


def test_channels_default_to_the_top_level_zone_and_0930() -> None:
    config = parse_config({"apps": channel_apps(a="C0AAA", b="C0AAA", c="G0BBB", d=None, e=None)})
    assert set(config.channels) == {"C0AAA", "G0BBB", ""}
    shared = config.channels["C0AAA"]
    assert shared == ChannelEntry("C0AAA", ZoneInfo("Asia/Shanghai"), dt.time(9, 30), ("a", "b"))
    assert config.channels["G0BBB"].apps == ("c",)
    assert config.channels[""].id == "" and config.channels[""].apps == ("d", "e")
    for entry in config.channels.values():
        assert entry.timezone.key == "Asia/Shanghai" and entry.digest == dt.time(9, 30)


def test_the_top_level_zone_and_digest_apply_to_every_channel() -> None:
    config = parse_config(
        {
            "timezone": "Europe/Berlin",
            "digest": "8:05",
            "apps": {
                **channel_apps(a="C0AAA", d=None),
                # an app's own zone is for its times, not its channel's digest
                "z": {"timezone": "UTC", "channel": "C0AAA", "wechat": WECHAT},
            },
        }
    )
    for entry in config.channels.values():
        assert entry.timezone.key == "Europe/Berlin" and entry.digest == dt.time(8, 5)
    assert config.channels["C0AAA"].apps == ("a", "z")


def test_a_channel_table_overrides_zone_and_digest_for_that_channel_only() -> None:
    config = parse_config(
        {
            "digest": "off",
            "apps": channel_apps(a="C0AAA", b="C0BBB", c="C0CCC", d=None),
            "channels": {
                "C0AAA": {"timezone": "Europe/Berlin", "digest": "17:45"},
                "C0BBB": {"digest": "07:00"},
                "C0CCC": {"timezone": "America/New_York"},
            },
        }
    )
    a, b, c, none = (config.channels[k] for k in ("C0AAA", "C0BBB", "C0CCC", ""))
    assert (a.timezone.key, a.digest) == ("Europe/Berlin", dt.time(17, 45))
    assert (b.timezone.key, b.digest) == ("Asia/Shanghai", dt.time(7, 0))
    assert (c.timezone.key, c.digest) == ("America/New_York", None)  # the top-level "off"
    assert (none.timezone.key, none.digest) == ("Asia/Shanghai", None)


@pytest.mark.parametrize("off", ["off", "OFF", " Off "])
def test_off_turns_the_digest_off(off: str) -> None:
    top = parse_config({"digest": off, "apps": channel_apps(a="C0AAA")})
    assert top.channels["C0AAA"].digest is None
    one = parse_config(
        {"apps": channel_apps(a="C0AAA", b="C0BBB"), "channels": {"C0AAA": {"digest": off}}}
    )
    assert one.channels["C0AAA"].digest is None
    assert one.channels["C0BBB"].digest == dt.time(9, 30)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("00:00", dt.time(0, 0)), ("9:30", dt.time(9, 30)), ("23:59", dt.time(23, 59))],
)
def test_digest_times(text: str, expected: dt.time) -> None:
    config = parse_config({"digest": text, "apps": channel_apps(a=None)})
    assert config.channels[""].digest == expected


def test_without_apps_there_are_no_channels() -> None:
    assert parse_config({"apps": {}}).channels == {}
    assert parse_config({"apps": {}, "channels": {}}).channels == {}


def test_the_repository_file_has_a_digest_for_its_apps(tmp_path: Path) -> None:
    config = load_config(REPO / "miniship.toml")
    assert config.channels[""].apps == ("demo",)
    assert config.channels[""].digest == dt.time(9, 30)
    # load_config keeps the channels (and adds the path)
    file = tmp_path / "miniship.toml"
    file.write_text(
        'digest = "off"\n'
        '[channels.C0AAA]\ndigest = "10:15"\ntimezone = "UTC"\n'
        '[apps.a]\nchannel = "C0AAA"\n'
        '[apps.a.wechat]\nappid = "wx3a5f9c2e1b7d4f60"\ntemplate_id = 1\n'
    )
    loaded = load_config(file)
    assert loaded.path == file
    assert loaded.channels == {
        "C0AAA": ChannelEntry("C0AAA", ZoneInfo("UTC"), dt.time(10, 15), ("a",))
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"digest": "25:00", "apps": {}}, 'miniship.toml: digest must be a time like "09:30"'),
        ({"digest": "9h", "apps": {}}, "got '9h'"),
        ({"digest": "24:00", "apps": {}}, "got '24:00'"),
        ({"digest": "12:60", "apps": {}}, "got '12:60'"),
        ({"digest": "9:5", "apps": {}}, "got '9:5'"),
        ({"digest": "never", "apps": {}}, 'or "off"'),
        (
            {"apps": channel_apps(a="C0AAA"), "channels": {"C0AAA": {"digest": "25:00"}}},
            "[channels.C0AAA]: digest must be a time",
        ),
        (
            {"apps": channel_apps(a="C0AAA"), "channels": {"C0AAA": {"digest": "9h"}}},
            '[channels.C0AAA]: digest must be a time like "09:30", or "off"; got \'9h\'',
        ),
        (
            {"apps": channel_apps(a="C0AAA"), "channels": {"C0AAA": {"digest": 930}}},
            "[channels.C0AAA]: digest",
        ),
        ({"apps": {}, "channels": {"general": {}}}, "'general' is not a Slack channel id"),
        ({"apps": {}, "channels": {"c0aaa": {}}}, "[channels.c0aaa]: 'c0aaa' is not a Slack"),
        ({"apps": {}, "channels": {"U0AAA": {}}}, "not a Slack channel id"),
        ({"apps": {}, "channels": {"C0AAA": {"digets": "09:00"}}}, "[channels.C0AAA]: digets"),
        ({"apps": {}, "channels": {"C0AAA": {"name": "x"}}}, "[channels.C0AAA]: name"),
        ({"apps": {}, "channels": {"C0AAA": 3}}, "[channels.C0AAA]"),
        ({"apps": {}, "channels": ["C0AAA"]}, "[channels] must be a table"),
        (
            {"apps": channel_apps(a="C0AAA"), "channels": {"C0AAA": {"timezone": "Mars/Base"}}},
            "[channels.C0AAA]: unknown time zone 'Mars/Base'",
        ),
        ({"channel": {}, "apps": {}}, "unknown top-level key(s) channel"),
    ],
)
def test_bad_channels_and_digests_are_explained(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "section", [{"timezone": "Mars/Base"}, {"digest": "25:00"}], ids=["zone", "digest"]
)
def test_mistakes_in_an_unused_channel_table_are_explained(section: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        parse_config({"apps": channel_apps(a="C0AAA"), "channels": {"C0BBB": section}})


def test_a_version_prefix_is_for_apps_whose_platforms_all_take_it() -> None:
    config = parse_config({"apps": {"a": {"version_prefix": "v", "wechat": WECHAT}}})
    assert config.apps["a"].version_prefix == "v"
