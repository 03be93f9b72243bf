"""Secrets the platform adapters are given at run time, encrypted at rest.

An adapter may be handed a secret while it runs (WeChat's component verify ticket, an
authorizer's refresh token) that it needs again after a restart. :class:`Vault` keeps
them in the ``credential`` table, one row per (platform, name), and is what the adapters
see as :class:`platforms.base.CredentialVault`.

How a value is kept
    Fernet (``cryptography``: AES-128-CBC with an HMAC-SHA256 over the whole token) with
    :class:`~cryptography.fernet.MultiFernet` over the keys of ``MINISHIP_SECRET_KEY``:
    the first key encrypts, every key decrypts, and :meth:`Vault.rotate` re-encrypts each
    row with the first key. So a key is rotated by putting the new key in front of the old
    one, running ``rotate()``, then dropping the old one. Fernet was picked over AES-GCM
    because the key list, the token format (version, timestamp) and rotation come from
    one well-kept library instead of being rebuilt here.

    Fernet has no associated data, so the row's identity travels inside the authenticated
    plaintext: the vault encrypts ``{"platform": …, "name": …, "value": …}`` and on load
    checks that platform and name are the row's own. Nobody without the key can change
    them, so a ciphertext copied to another row (another name, another platform) is
    refused (:class:`MisplacedCredential`) instead of handed out as that other secret.

Values are :class:`~pydantic.SecretStr` on the way in and out; they are never logged,
never part of an error message, and no repr here shows them or a key.

Errors are the vault's own (:class:`CredentialError` and below): storage imports nothing
from the platforms. The adapters turn what their vault raises into the platforms'
``ConfigError`` where they call it (:meth:`platforms.base.Platform.vault_failure`), and
``bot.py`` reports a :class:`SecretKeyError` as it reports any wrong setting.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from storage.db import insert_for
from storage.models import Credential, utcnow
from storage.store import Store

__all__ = [
    "MAKE_A_KEY",
    "CredentialError",
    "MisplacedCredential",
    "SecretKeyError",
    "Vault",
    "VaultError",
    "WrongSecretKey",
    "vault_keys",
]

log = logging.getLogger(__name__)

KEY_VAR = "MINISHIP_SECRET_KEY"
KEY_FILE_VAR = "MINISHIP_SECRET_KEY_FILE"
MAKE_A_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


class CredentialError(Exception):
    """The vault cannot work (its key setting) or cannot hand out a stored credential."""


class VaultError(CredentialError):
    """A stored credential cannot be handed out."""

    def __init__(self, platform: str, name: str, message: str) -> None:
        self.platform = platform
        self.name = name
        super().__init__(message)


class WrongSecretKey(VaultError):
    """No key of ``MINISHIP_SECRET_KEY`` decrypts the stored value."""

    def __init__(self, platform: str, name: str) -> None:
        super().__init__(
            platform,
            name,
            f"the stored {platform} credential {name!r} cannot be decrypted: "
            f"{KEY_VAR} does not match the key it was saved with. Set the old key "
            f"again (after the new one, comma-separated, while rotating), or save the "
            f"credential anew",
        )


class MisplacedCredential(VaultError):
    """The stored value decrypts, but was saved for another platform or name."""

    def __init__(self, platform: str, name: str) -> None:
        super().__init__(
            platform,
            name,
            f"the stored {platform} credential {name!r} was saved for another credential "
            f"(its row was copied or changed in the database): refused; save it anew",
        )


class SecretKeyError(CredentialError):
    """``MINISHIP_SECRET_KEY`` (or its file) is missing or does not hold Fernet keys.

    A wrong setting: the message names the setting, never its value, and is meant for
    people as it is (``bot.py`` prints it like a ``ConfigError``)."""


# --------------------------------------------------------------------------- the vault


class Vault:
    """:class:`platforms.base.CredentialVault` on miniship's database.

    Args:
        store_or_engine: the :class:`~storage.store.Store` (or its engine) to keep rows in.
        keys: Fernet keys, as :func:`vault_keys` returns them; the first one encrypts.
    """

    def __init__(self, store_or_engine: Store | AsyncEngine, keys: Sequence[bytes | str]) -> None:
        if isinstance(store_or_engine, Store):
            store_or_engine = store_or_engine.engine
        self._engine = store_or_engine
        self._fernet = MultiFernet(_fernets(keys, "the vault's keys"))
        self._keys = len(keys)

    def __repr__(self) -> str:
        return f"<Vault with {self._keys} key(s) on {self._engine.dialect.name}>"

    async def load(self, platform: str, name: str) -> SecretStr | None:
        """The value saved as ``platform``/``name``, or ``None`` if there is none.

        Raises:
            WrongSecretKey: no key decrypts it.
            MisplacedCredential: it was saved for another platform or name.
        """
        q = select(col(Credential.ciphertext)).where(
            col(Credential.platform) == platform, col(Credential.name) == name
        )
        async with self._engine.connect() as conn:
            token: str | None = (await conn.execute(q)).scalar_one_or_none()
        if token is None:
            return None
        try:
            plain = self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise WrongSecretKey(platform, name) from None
        value = _unseal(plain, platform, name)
        if value is None:
            raise MisplacedCredential(platform, name)
        return SecretStr(value)

    async def save(self, platform: str, name: str, value: SecretStr) -> None:
        """Keep ``value`` as ``platform``/``name``, replacing what was there.

        One INSERT … ON CONFLICT DO UPDATE statement: processes saving the same name at
        once never fail, and the last one to write wins.
        """
        token = self._fernet.encrypt(_seal(platform, name, value.get_secret_value()))
        insert = insert_for(self._engine, Credential)
        stmt = insert.values(
            platform=platform, name=name, ciphertext=token.decode("ascii"), updated_at=utcnow()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["platform", "name"],
            set_={"ciphertext": stmt.excluded.ciphertext, "updated_at": stmt.excluded.updated_at},
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)

    async def rotate(self) -> int:
        """Re-encrypt every stored value with the first key; how many rows were rewritten.

        Nothing is written unless every row decrypts with one of the keys. A row saved
        anew meanwhile is left as that save wrote it (already under the first key).

        Raises:
            WrongSecretKey: a row no key decrypts (named in the error).
        """
        q = select(
            col(Credential.id),
            col(Credential.platform),
            col(Credential.name),
            col(Credential.ciphertext),
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        fresh: list[tuple[int | None, str, str]] = []
        for row_id, platform, name, token in rows:
            try:
                again = self._fernet.rotate(token.encode("ascii"))
            except (InvalidToken, UnicodeEncodeError):
                raise WrongSecretKey(platform, name) from None
            fresh.append((row_id, token, again.decode("ascii")))
        rewritten = 0
        async with self._engine.begin() as conn:
            for row_id, old, new in fresh:
                result = await conn.execute(
                    update(Credential)
                    .where(col(Credential.id) == row_id, col(Credential.ciphertext) == old)
                    .values(ciphertext=new)
                )
                rewritten += result.rowcount
        log.info(
            "re-encrypted %d of %d stored credentials with the first key", rewritten, len(rows)
        )
        return rewritten


def _seal(platform: str, name: str, value: str) -> bytes:
    return json.dumps(
        {"platform": platform, "name": name, "value": value}, ensure_ascii=False
    ).encode()


def _unseal(plain: bytes, platform: str, name: str) -> str | None:
    """The value in ``plain`` if it was sealed for ``platform``/``name``, else ``None``
    (no exception here: a decoding error would carry the plaintext with it)."""
    try:
        sealed = json.loads(plain)
    except ValueError:
        return None
    if (
        isinstance(sealed, dict)
        and sealed.get("platform") == platform
        and sealed.get("name") == name
        and isinstance(sealed.get("value"), str)
    ):
        value: str = sealed["value"]
        return value
    return None


# --------------------------------------------------------------------------- the keys


def vault_keys(
    secret_key: SecretStr | None, secret_key_file: Path | None, generated_path: Path | None
) -> list[bytes]:
    """The vault's Fernet keys, first one encrypting: from ``MINISHIP_SECRET_KEY``
    (``secret_key``), or from the file ``MINISHIP_SECRET_KEY_FILE`` names.

    Either holds one or more keys separated by commas (or, in the file, new lines). With
    neither, ``generated_path`` (the console on its embedded defaults) holds a key made on
    first use and reused after; without it either, that is an error saying how to make one.

    Raises:
        SecretKeyError: no key, both settings, an unreadable file, or text that is not a
            Fernet key. The message names the setting, never its value.
    """
    if secret_key is not None and secret_key_file is not None:
        raise SecretKeyError(f"set {KEY_VAR} or {KEY_FILE_VAR}, not both")
    if secret_key is not None:
        return _parse_keys(secret_key.get_secret_value(), KEY_VAR)
    if secret_key_file is not None:
        where = f"{KEY_FILE_VAR} ({secret_key_file})"
        return _parse_keys(_read_key_file(secret_key_file, where), where)
    if generated_path is None:
        raise SecretKeyError(
            f"{KEY_VAR} is not set: miniship encrypts the platform credentials it keeps "
            f"with it. Make a key with\n    {MAKE_A_KEY}\nand set {KEY_VAR} to it "
            f"(or put it in a file named by {KEY_FILE_VAR})"
        )
    return _generated_key(generated_path)


def _parse_keys(text: str, where: str) -> list[bytes]:
    parts = [p for p in re.split(r"[,\s]+", text) if p]
    if not parts:
        raise SecretKeyError(f"{where} holds no key; make one with\n    {MAKE_A_KEY}")
    keys = [p.encode("utf-8") for p in parts]
    _fernets(keys, where)
    return keys


def _fernets(keys: Sequence[bytes | str], where: str) -> list[Fernet]:
    if not keys:
        raise SecretKeyError(f"{where}: no key given")
    out: list[Fernet] = []
    for number, key in enumerate(keys, 1):
        try:
            out.append(Fernet(key))
        except (ValueError, TypeError):  # binascii.Error is a ValueError
            which = f"key {number} of {len(keys)}" if len(keys) > 1 else "the key"
            raise SecretKeyError(
                f"{where}: {which} is not a Fernet key (32 url-safe base64-encoded bytes); "
                f"make one with\n    {MAKE_A_KEY}"
            ) from None
    return out


def _read_key_file(path: Path, where: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
        raise SecretKeyError(f"{where} cannot be read: {reason}") from None


def _generated_key(path: Path) -> list[bytes]:
    """The key kept in ``path``, made (readable by this user only) if there is none yet."""
    where = f"the generated key file {path}"
    made = False
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # written whole under a temporary name, then linked into place: a process starting
        # at the same moment sees either no file or the complete key, and one key wins
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key() + b"\n")
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(temporary, path)
                made = True
            except FileExistsError:  # another process made it first: use that one
                pass
        finally:
            os.unlink(temporary)
    keys = _parse_keys(_read_key_file(path, where), where)
    if os.name == "posix" and path.stat().st_mode & 0o077:
        log.warning("%s can be read by other users; it should be mode 0600", path)
    log.warning(
        "%s is not set: platform credentials are encrypted with a key %s %s. Fine for "
        "trying miniship out; production must set %s (losing that file loses them)",
        KEY_VAR,
        "just generated in" if made else "generated earlier in",
        path,
        KEY_VAR,
    )
    return keys
