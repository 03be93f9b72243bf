"""Who signs an app's calls: the third-party app (ISV) with the merchant's tokens, or
the mini program itself with its own keys; the RSA keys loaded from the settings once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from platforms.alipay import sign as alipay_sign
from platforms.alipay.config import AlipayAppConfig, AlipaySettings
from platforms.errors import ConfigError

__all__ = ["caller_for", "isv_caller", "isv_keys", "no_token"]


@dataclass
class _Caller:
    """Who signs an app's calls: the third-party app (with a token) or the mini program.

    ``token``/``refresh_token`` are the ones in use (renewed while running, or loaded from
    the vault); ``configured`` the pair from miniship.toml, tried when those fail. A
    third-party app caller (``isv``) configured with no token takes the pair the vault
    keeps (an authorization through ``connect alipay`` put it there).
    """

    app_id: str
    mini_app_id: str  # whose tokens these are (the names they are kept under in the vault)
    private_key: rsa.RSAPrivateKey = field(repr=False)
    alipay_public_key: rsa.RSAPublicKey = field(repr=False)
    token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    configured: tuple[str | None, str | None] = field(default=(None, None), repr=False)
    loaded: bool = False  # the vault was read
    isv: bool = False  # the third-party app calls for the mini program (with its tokens)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)


_IsvKeys = tuple[rsa.RSAPrivateKey | None, rsa.RSAPublicKey | None]


def _secret(value: SecretStr | None, path: Path | None, what: str) -> str | None:
    """The text of a key given inline or as a file; ``ConfigError`` if both or unreadable."""
    if value is not None and path is not None:
        raise ConfigError(f"set {what} or {what}_FILE, not both")
    if path is not None:
        try:
            return path.expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {what}_FILE {path}: {exc.strerror}") from None
    return value.get_secret_value() if value is not None else None


def _private_key(text: str, what: str) -> rsa.RSAPrivateKey:
    try:
        return alipay_sign.load_private_key(text)
    except ValueError as exc:
        raise ConfigError(
            f"{what} is not a usable RSA private key: {exc}. Give the app private key as PEM "
            "or as the bare base64 the Alipay key tool shows (PKCS#1 or PKCS#8)."
        ) from None


def _public_key(text: str, what: str, own: rsa.RSAPrivateKey | None) -> rsa.RSAPublicKey:
    try:
        key = alipay_sign.load_public_key(text)
    except ValueError as exc:
        raise ConfigError(
            f"{what} is not a usable RSA public key: {exc}. Give the Alipay public key "
            "(支付宝公钥) as PEM or bare base64."
        ) from None
    if own is not None and key.public_numbers() == own.public_key().public_numbers():
        raise ConfigError(
            f"{what} is the public half of your own app key; it must be the Alipay public key "
            "(支付宝公钥) shown next to it in the Alipay console."
        )
    return key


def isv_keys(settings: AlipaySettings) -> _IsvKeys:
    """The third-party app's private key and the Alipay public key, each loaded once
    (``None`` when not set); ConfigError when set but unusable."""
    private = _secret(settings.private_key, settings.private_key_file, "ALIPAY_PRIVATE_KEY")
    public = _secret(
        settings.alipay_public_key, settings.alipay_public_key_file, "ALIPAY_PUBLIC_KEY"
    )
    own = _private_key(private, "ALIPAY_PRIVATE_KEY") if private else None
    return own, (_public_key(public, "ALIPAY_PUBLIC_KEY", own) if public else None)


def caller_for(key: str, cfg: AlipayAppConfig, settings: AlipaySettings, isv: _IsvKeys) -> _Caller:
    """Load the keys that will sign this app's calls (ConfigError when unusable)."""
    where = f"[apps.{key}.alipay]"
    if (cfg.private_key is None) != (cfg.alipay_public_key is None):
        raise ConfigError(f"{where}: self-owned mode needs both private_key and alipay_public_key")
    if cfg.private_key is not None and cfg.alipay_public_key is not None:
        own = _private_key(cfg.private_key.get_secret_value(), f"{where} private_key")
        return _Caller(
            app_id=cfg.app_id,
            mini_app_id=cfg.app_id,
            private_key=own,
            alipay_public_key=_public_key(
                cfg.alipay_public_key.get_secret_value(), f"{where} alipay_public_key", own
            ),
        )
    isv_private, isv_public = isv
    if not (settings.app_id and isv_private and isv_public):
        raise ConfigError(
            f"{where}: no keys to call Alipay with; set ALIPAY_APP_ID, ALIPAY_PRIVATE_KEY and "
            "ALIPAY_PUBLIC_KEY (third-party app), or private_key and alipay_public_key in "
            f"{where} (self-owned mini program)"
        )
    # no token configured: the vault's, from an authorization (refused when it has none)
    token = cfg.app_auth_token.get_secret_value() if cfg.app_auth_token else None
    refresh = cfg.app_refresh_token.get_secret_value() if cfg.app_refresh_token else None
    return _Caller(
        app_id=settings.app_id,
        mini_app_id=cfg.app_id,
        private_key=isv_private,
        alipay_public_key=isv_public,
        token=token,
        refresh_token=refresh,
        configured=(token, refresh),
        isv=True,
    )


def isv_caller(mini_app_id: str, settings: AlipaySettings, isv: _IsvKeys) -> _Caller:
    """The third-party app calling for ``mini_app_id`` (or for itself: ``""``), with no
    token yet; ConfigError when the third-party app's keys are not set."""
    isv_private, isv_public = isv
    if not (settings.app_id and isv_private and isv_public):
        raise ConfigError(
            "the third-party app is not set up: set ALIPAY_APP_ID, ALIPAY_PRIVATE_KEY and "
            "ALIPAY_PUBLIC_KEY (see README, Alipay) before merchants authorize it"
        )
    return _Caller(
        app_id=settings.app_id,
        mini_app_id=mini_app_id,
        private_key=isv_private,
        alipay_public_key=isv_public,
        isv=True,
    )


def no_token(caller: _Caller, key: str) -> ConfigError:
    """The refusal of a call for app ``key`` whose caller has no app_auth_token at all."""
    return ConfigError(
        f"[apps.{key}.alipay]: app_auth_token is needed to call for mini program "
        f"{caller.mini_app_id} through the third-party app {caller.app_id}: have the "
        "merchant authorize it through the link of `connect alipay`, or set app_auth_token"
    )
