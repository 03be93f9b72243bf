"""RSA2 signing and verification for the Alipay open platform gateway (``gateway.do``).

Shared by the adapter (:mod:`platforms.alipay`) and the emulator
(:mod:`platforms.emulators.alipay`), so both sides agree on every byte:

- the string to sign: every parameter that is sent, except ``sign`` and empty values,
  sorted by key, joined as raw ``key=value`` pairs with ``&`` (fact sheet §1.5);
- RSA2 = RSASSA-PKCS1-v1_5 with SHA-256, base64 (standard alphabet, padded);
- a response is verified over the *raw text* of its ``<method>_response`` (or
  ``error_response``) node, exactly as received (fact sheet §1.6).

Example::

    >>> sign_content({"method": "m", "app_id": "1", "sign": "x", "notify_url": ""})
    'app_id=1&method=m'

All cryptography goes through the ``cryptography`` package.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from platforms.base import BEIJING

__all__ = [
    "BEIJING",
    "TIMESTAMP_FORMAT",
    "NotifyRule",
    "ResponseNode",
    "format_timestamp",
    "generate_key_pair",
    "load_private_key",
    "load_public_key",
    "node_name",
    "notify_content",
    "parse_timestamp",
    "private_pem",
    "public_pem",
    "read_response",
    "sign",
    "sign_content",
    "sign_notify",
    "verify",
    "verify_node",
    "verify_notify",
]

# BEIJING (from platforms.base) is the gateway's clock: ``timestamp`` and every ``gmt_*``
# field are Beijing time.

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

_WHITESPACE = " \t\n\r"

NotifyRule = Literal["V1", "V2"]
"""Which params a notification's signature leaves out: V1 ``sign`` and ``sign_type``,
V2 only ``sign`` (fact sheet §1.9)."""

_NOT_RSA = "it is not an RSA key (RSA2 needs an RSA key)"


# --------------------------------------------------------------------------- keys


def _der(text: str) -> bytes:
    """Bare base64 (as the Alipay console shows keys) to DER bytes."""
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("it is neither PEM nor valid base64") from None


def _load_key(
    text: str,
    pem: Callable[[bytes], object],
    der: Callable[[bytes], object],
    what: str,
) -> object:
    """A key from PEM or bare base64 text through the given loaders; ``what`` names the
    formats it may be in, for the error."""
    data = text.strip()
    if not data:
        raise ValueError("it is empty")
    try:
        key = pem(data.encode("ascii")) if "-----BEGIN" in data else der(_der(data))
    except TypeError:  # only a private key can be encrypted
        raise ValueError("it is encrypted; give the key without a passphrase") from None
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) and "base64" in str(exc) else ""
        raise ValueError(reason or f"it is not {what}") from None
    return key


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM or bare base64, PKCS#1 or PKCS#8.

    Raises:
        ValueError: with a short reason when the text is not such a key.
    """
    key = _load_key(
        text,
        lambda data: serialization.load_pem_private_key(data, password=None),
        lambda data: serialization.load_der_private_key(data, password=None),
        "a PKCS#1 or PKCS#8 private key",
    )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(_NOT_RSA)
    return key


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """An RSA public key from PEM or bare base64 (X.509 SubjectPublicKeyInfo or PKCS#1).

    Raises:
        ValueError: with a short reason when the text is not such a key.
    """
    if "PRIVATE KEY" in text:
        raise ValueError("it is a private key; a public key is needed here")
    key = _load_key(
        text,
        serialization.load_pem_public_key,
        serialization.load_der_public_key,
        "an X.509 (SubjectPublicKeyInfo) public key",
    )
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError(_NOT_RSA)
    return key


def private_pem(key: rsa.RSAPrivateKey) -> str:
    """PKCS#8 PEM text of ``key``."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def public_pem(key: rsa.RSAPublicKey) -> str:
    """X.509 SubjectPublicKeyInfo PEM text of ``key``."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def generate_key_pair() -> tuple[str, str]:
    """A new 2048-bit RSA key pair as ``(private PKCS#8 PEM, public SPKI PEM)``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return private_pem(key), public_pem(key.public_key())


# --------------------------------------------------------------------------- signing


def sign_content(params: Mapping[str, str | None]) -> str:
    """The string to sign: non-empty params except ``sign``, sorted, raw ``k=v`` joined by ``&``."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign" and v)


def sign(content: str, key: rsa.RSAPrivateKey, charset: str = "utf-8") -> str:
    """SHA256withRSA (RSA2) signature of ``content``, base64."""
    signature = key.sign(content.encode(charset), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verify(content: str, signature: str, key: rsa.RSAPublicKey, charset: str = "utf-8") -> bool:
    """True when ``signature`` (base64) is a valid RSA2 signature of ``content``."""
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, content.encode(charset), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


# --------------------------------------------------------------------------- responses


def node_name(method: str) -> str:
    """``alipay.open.mini.version.upload`` → ``alipay_open_mini_version_upload_response``."""
    return method.replace(".", "_") + "_response"


@dataclass(frozen=True)
class ResponseNode:
    """The response node of a gateway answer.

    ``raw`` is the node's value exactly as it stood in the body (what Alipay signed);
    ``data`` is the same, parsed; ``sign`` is the top-level signature or ``None``.
    """

    name: str
    raw: str
    data: dict[str, Any]
    sign: str | None


def _skip(text: str, i: int) -> int:
    """The index of the first non-whitespace character at or after ``i``."""
    while i < len(text) and text[i] in _WHITESPACE:
        i += 1
    return i


def _members(body: str) -> dict[str, tuple[str, Any]]:
    """Top-level members of a JSON object as ``key → (raw value text, parsed value)``."""
    decoder = json.JSONDecoder()
    i = _skip(body, 0)
    if body[i : i + 1] != "{":
        raise ValueError("the answer is not a JSON object")
    i = _skip(body, i + 1)
    members: dict[str, tuple[str, Any]] = {}
    if body[i : i + 1] == "}":
        return members
    while True:
        key, i = decoder.raw_decode(body, i)
        if not isinstance(key, str):
            raise ValueError("the answer is not a JSON object")
        i = _skip(body, i)
        if body[i : i + 1] != ":":
            raise ValueError("the answer is not a JSON object")
        start = _skip(body, i + 1)
        value, i = decoder.raw_decode(body, start)
        members[key] = (body[start:i], value)
        i = _skip(body, i)
        if body[i : i + 1] == ",":
            i = _skip(body, i + 1)
            continue
        if body[i : i + 1] == "}":
            return members
        raise ValueError("the answer is not a JSON object")


def read_response(body: str, method: str) -> ResponseNode:
    """Find the ``<method>_response`` (else ``error_response``) node of a gateway answer.

    Raises:
        ValueError: the body is not JSON.
        LookupError: the body is JSON but carries no usable response node.
    """
    json.loads(body)  # ValueError for anything that is not JSON at all
    members = _members(body)
    for name in (node_name(method), "error_response"):
        if name in members:
            raw, data = members[name]
            if not isinstance(data, dict):
                raise LookupError(f"{name} is not an object")
            signature = members.get("sign", ("", None))[1]
            return ResponseNode(
                name=name,
                raw=raw,
                data=data,
                sign=signature if isinstance(signature, str) and signature else None,
            )
    raise LookupError(f"the answer has no {node_name(method)} or error_response node")


def verify_node(node: ResponseNode, key: rsa.RSAPublicKey, charset: str = "utf-8") -> bool:
    """Verify a signed node; like the Java/PHP SDKs, retry once with ``\\/`` read as ``/``."""
    if node.sign is None:
        return False
    if verify(node.raw, node.sign, key, charset):
        return True
    return "\\/" in node.raw and verify(node.raw.replace("\\/", "/"), node.sign, key, charset)


# --------------------------------------------------------------------------- time


def format_timestamp(unix: float) -> str:
    """Unix seconds as the gateway's ``yyyy-MM-dd HH:mm:ss`` in Beijing time."""
    return datetime.fromtimestamp(unix, BEIJING).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    """A gateway ``yyyy-MM-dd HH:mm:ss`` (Beijing time) as an aware UTC datetime.

    Raises:
        ValueError: when ``text`` is not in that form.
    """
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", text):
        raise ValueError(f"{text!r} is not yyyy-MM-dd HH:mm:ss")
    return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=BEIJING).astimezone(UTC)


# --------------------------------------------------------------------------- notifications


def notify_content(params: Mapping[str, str], *, rule: NotifyRule = "V1") -> str:
    """The string a notification is signed over (fact sheet §1.9).

    Every received param except ``sign`` and, under the V1 rule, ``sign_type``, sorted by
    key, joined as raw ``k=v`` with ``&``. Unlike :func:`sign_content`, empty values are
    **kept** (as the Java/PHP ``rsaCheckV1``/``rsaCheckV2`` do).
    """
    left_out = ("sign", "sign_type") if rule == "V1" else ("sign",)
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in left_out)


def verify_notify(params: Mapping[str, str], key: rsa.RSAPublicKey) -> bool:
    """True when a notification's ``sign`` is a valid RSA2 signature by ``key``.

    The V1 rule (``sign_type`` left out of the content) is the documented one; which rule
    the message service uses is UNCERTAIN (§4, §7.2), so the V2 content (only ``sign``
    left out) is tried too. Both need Alipay's signature, so accepting either is no weaker.
    False when ``sign`` is missing or empty, or ``sign_type`` is present and not ``RSA2``.
    """
    signature = params.get("sign")
    if not signature:
        return False
    if params.get("sign_type", "RSA2") != "RSA2":
        return False
    charset = params.get("charset") or "utf-8"
    try:
        return any(
            verify(notify_content(params, rule=rule), signature, key, charset)
            for rule in ("V1", "V2")
        )
    except LookupError:  # unknown charset
        return False


def sign_notify(
    params: Mapping[str, str], key: rsa.RSAPrivateKey, *, rule: NotifyRule = "V1"
) -> dict[str, str]:
    """A copy of ``params`` with ``sign_type=RSA2`` and its ``sign`` by ``rule`` (for the
    emulator)."""
    signed = {k: v for k, v in params.items() if k != "sign"}
    signed["sign_type"] = "RSA2"
    content = notify_content(signed, rule=rule)
    signed["sign"] = sign(content, key, signed.get("charset") or "utf-8")
    return signed
