"""The credential vault on SQLite and PostgreSQL: encryption at rest, keys and rotation."""

from __future__ import annotations

import asyncio
import logging
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlmodel import col
from sqlmodel import select as select_rows

from handlers.config import Settings
from platforms.base import CredentialVault
from storage import (
    CredentialError,
    MisplacedCredential,
    SecretKeyError,
    Store,
    Vault,
    VaultError,
    WrongSecretKey,
    make_engine,
    migrate,
    vault_keys,
)
from storage.models import Credential

TOKEN = "refresh@@token-行-0123456789"


@pytest.fixture
def key() -> bytes:
    return Fernet.generate_key()


@pytest.fixture
async def vault(store: Store, key: bytes) -> Vault:
    return Vault(store, [key])


async def ciphertexts(store: Store) -> dict[tuple[str, str], str]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(col(Credential.platform), col(Credential.name), col(Credential.ciphertext))
        )
        return {(p, n): c for p, n, c in rows.all()}


# --------------------------------------------------------------------------- values


async def test_a_value_comes_back_and_is_replaced(store: Store, vault: Vault) -> None:
    adapter_view: CredentialVault = vault  # what the adapters see
    assert await adapter_view.load("wechat", "refresh_token") is None
    await adapter_view.save("wechat", "refresh_token", SecretStr(TOKEN))
    got = await adapter_view.load("wechat", "refresh_token")
    assert got is not None and got.get_secret_value() == TOKEN
    await vault.save("wechat", "refresh_token", SecretStr("second"))
    await vault.save("alipay", "refresh_token", SecretStr(""))
    again = await vault.load("wechat", "refresh_token")
    assert again is not None and again.get_secret_value() == "second"
    empty = await vault.load("alipay", "refresh_token")
    assert empty is not None and empty.get_secret_value() == ""
    assert await vault.load("wechat", "other") is None
    async with store.session() as s:
        rows = (await s.exec(select_rows(Credential))).all()
    assert len(rows) == 2
    assert all(r.updated_at.tzinfo is not None for r in rows)


async def test_the_table_holds_no_plaintext(store: Store, vault: Vault, key: bytes) -> None:
    await vault.save("wechat", "ticket", SecretStr(TOKEN))
    stored = (await ciphertexts(store))[("wechat", "ticket")]
    assert TOKEN not in stored and "refresh" not in stored
    assert Fernet(key).decrypt(stored.encode())  # a Fernet token under the given key
    assert TOKEN not in repr(vault) and key.decode() not in repr(vault)
    async with store.session() as s:
        (row,) = (await s.exec(select_rows(Credential))).all()
    assert stored not in repr(row) and stored not in str(row)


async def test_nothing_secret_is_logged(
    vault: Vault, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await vault.save("wechat", "ticket", SecretStr(TOKEN))
    await vault.load("wechat", "ticket")
    await vault.rotate()
    assert TOKEN not in caplog.text and key.decode() not in caplog.text


async def test_a_wrong_key_is_a_clear_error(store: Store, vault: Vault) -> None:
    await vault.save("wechat", "ticket", SecretStr(TOKEN))
    other = Vault(store.engine, [Fernet.generate_key()])
    with pytest.raises(WrongSecretKey) as err:
        await other.load("wechat", "ticket")
    message = str(err.value)
    assert "MINISHIP_SECRET_KEY does not match the key it was saved with" in message
    assert "wechat" in message and "'ticket'" in message
    assert TOKEN not in message and err.value.__cause__ is None
    assert isinstance(err.value, VaultError)


async def test_a_value_copied_to_another_row_is_refused(store: Store, vault: Vault) -> None:
    await vault.save("wechat", "refresh_token", SecretStr("the wechat one"))
    await vault.save("alipay", "refresh_token", SecretStr("the alipay one"))
    await vault.save("wechat", "ticket", SecretStr("a ticket"))
    stored = await ciphertexts(store)

    async def copy(source: tuple[str, str], target: tuple[str, str]) -> None:
        async with store.engine.begin() as conn:
            await conn.execute(
                update(Credential)
                .where(col(Credential.platform) == target[0], col(Credential.name) == target[1])
                .values(ciphertext=stored[source])
            )

    await copy(("wechat", "refresh_token"), ("wechat", "ticket"))  # another name
    await copy(("wechat", "refresh_token"), ("alipay", "refresh_token"))  # another platform
    for platform, name in (("wechat", "ticket"), ("alipay", "refresh_token")):
        with pytest.raises(MisplacedCredential, match="saved for another credential") as err:
            await vault.load(platform, name)
        assert "the wechat one" not in str(err.value)
    got = await vault.load("wechat", "refresh_token")  # the original is untouched
    assert got is not None and got.get_secret_value() == "the wechat one"


async def test_keys_rotate(store: Store, key: bytes) -> None:
    old = Vault(store, [key])
    for n in range(3):
        await old.save("wechat", f"t{n}", SecretStr(f"value {n}"))
    before = await ciphertexts(store)
    new_key = Fernet.generate_key()
    both = Vault(store, [new_key, key])  # the new key first: it encrypts
    got = await both.load("wechat", "t1")  # the old key still decrypts
    assert got is not None and got.get_secret_value() == "value 1"
    assert await both.rotate() == 3
    after = await ciphertexts(store)
    assert all(after[k] != before[k] for k in before)
    new_only = Vault(store, [new_key])
    for n in range(3):
        got = await new_only.load("wechat", f"t{n}")
        assert got is not None and got.get_secret_value() == f"value {n}"
    with pytest.raises(WrongSecretKey):
        await old.load("wechat", "t0")


async def test_rotation_without_the_old_key_writes_nothing(store: Store, key: bytes) -> None:
    await Vault(store, [key]).save("wechat", "a", SecretStr("x"))
    before = await ciphertexts(store)
    with pytest.raises(WrongSecretKey, match="'a'"):
        await Vault(store, [Fernet.generate_key()]).rotate()
    assert await ciphertexts(store) == before


async def test_saves_racing_from_two_engines_never_fail(database_url: str, key: bytes) -> None:
    engines = [make_engine(database_url) for _ in range(2)]
    try:
        await migrate(engines[0])
        vaults = [Vault(e, [key]) for e in engines]
        for round_ in range(5):
            written = [f"{round_}-{n}" for n in range(6)]
            await asyncio.gather(
                *(
                    vaults[n % 2].save("wechat", "ticket", SecretStr(value))
                    for n, value in enumerate(written)
                )
            )
            got = await vaults[round_ % 2].load("wechat", "ticket")
            assert got is not None and got.get_secret_value() in written
        async with engines[0].connect() as conn:
            rows = (await conn.execute(select(col(Credential.id)))).all()
        assert len(rows) == 1
    finally:
        for e in engines:
            await e.dispose()


# --------------------------------------------------------------------------- keys


def test_keys_come_from_the_setting_first_one_first() -> None:
    first, second = Fernet.generate_key(), Fernet.generate_key()
    text = SecretStr(f" {first.decode()} , {second.decode()},")
    assert vault_keys(text, None, None) == [first, second]


def test_keys_come_from_a_file(tmp_path: Path) -> None:
    first, second = Fernet.generate_key(), Fernet.generate_key()
    path = tmp_path / "keys"
    path.write_text(f"{first.decode()}\n{second.decode()}\n")
    assert vault_keys(None, path, tmp_path / "unused") == [first, second]
    assert not (tmp_path / "unused").exists()


def test_a_key_is_generated_once_with_mode_0600(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "var" / "secret.key"
    with caplog.at_level(logging.WARNING, logger="storage.vault"):
        keys = vault_keys(None, None, path)
    assert len(keys) == 1 and Fernet(keys[0])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().strip() == keys[0]
    assert "production must set MINISHIP_SECRET_KEY" in caplog.text
    assert keys[0].decode() not in caplog.text
    assert vault_keys(None, None, path) == keys  # reused, not replaced
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # no temporary left


def test_settings_read_the_key_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("MINISHIP_SECRET_KEY", key)
    monkeypatch.setenv("MINISHIP_SECRET_KEY_FILE", str(tmp_path / "k"))
    settings = Settings(_env_file=None)
    assert settings.secret_key is not None and settings.secret_key.get_secret_value() == key
    assert settings.secret_key_file == tmp_path / "k"
    assert key not in repr(settings)


# a fixed key: parameters must be the same in every xdist worker
FIXED_KEY = "dGVzdC1vbmx5LWtleS1ub3QtZm9yLXByb2R1Y3Rpb24="


@pytest.mark.parametrize(
    ("setting", "file_text", "expected"),
    [
        ("not-a-key", None, "MINISHIP_SECRET_KEY: the key is not a Fernet key"),
        (f"{FIXED_KEY},not-a-key", None, "key 2 of 2 is not a Fernet key"),
        (" , ", None, "MINISHIP_SECRET_KEY holds no key"),
        (None, "not-a-key\n", "MINISHIP_SECRET_KEY_FILE ("),
        (None, "", "holds no key"),
    ],
)
def test_a_bad_key_setting_is_named_but_not_shown(
    tmp_path: Path, setting: str | None, file_text: str | None, expected: str
) -> None:
    path = None
    if file_text is not None:
        path = tmp_path / "keys"
        path.write_text(file_text)
    with pytest.raises(SecretKeyError) as err:
        vault_keys(SecretStr(setting) if setting is not None else None, path, None)
    message = str(err.value)
    assert expected in message and "not-a-key" not in message
    assert "Fernet.generate_key()" in message
    assert isinstance(err.value, CredentialError)  # storage's own; bot.py reports it as a setting


def test_missing_keys_say_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(SecretKeyError) as err:
        vault_keys(None, None, None)
    assert "MINISHIP_SECRET_KEY is not set" in str(err.value)
    assert (
        'python -c "from cryptography.fernet import Fernet; '
        'print(Fernet.generate_key().decode())"' in str(err.value)
    )
    with pytest.raises(SecretKeyError, match="cannot be read"):
        vault_keys(None, tmp_path / "missing", None)
    key = SecretStr(Fernet.generate_key().decode())
    with pytest.raises(SecretKeyError, match="not both"):
        vault_keys(key, tmp_path / "keys", None)


async def test_a_vault_needs_a_good_key(store: Store) -> None:
    with pytest.raises(SecretKeyError, match="no key given"):
        Vault(store, [])
    with pytest.raises(SecretKeyError, match="not a Fernet key"):
        Vault(store, [b"short"])


# --------------------------------------------------------------------------- events


async def test_events_are_counted(store: Store) -> None:
    await store.sync_apps({"demo": "Demo", "other": "Other"})
    start = datetime.now(UTC)
    for outcome in ("ok", "ok", "failed"):
        await store.record(
            actor="a", action="withdraw", outcome=outcome, app="demo", platform="wechat"
        )
    await store.record(actor="a", action="withdraw", outcome="ok", app="demo", platform="alipay")
    await store.record(actor="a", action="withdraw", outcome="ok", app="other", platform="wechat")
    await store.record(actor="a", action="publish", outcome="ok", app="demo", platform="wechat")
    assert await store.count_events("demo", "wechat", "withdraw", start) == 2
    assert await store.count_events("demo", "wechat", "withdraw", start, outcome="failed") == 1
    assert await store.count_events("demo", "wechat", "withdraw", start - timedelta(days=1)) == 2
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert await store.count_events("demo", "wechat", "withdraw", later) == 0
    beijing = later.astimezone(ZoneInfo("Asia/Shanghai"))
    assert await store.count_events("demo", "wechat", "withdraw", beijing) == 0
    assert await store.count_events("demo", "wechat", "publish", start) == 1
