"""WeChat message encryption (``WXBizMsgCrypt``) for third-party-platform pushes.

Follows fact sheet wechat-api.md §8 byte for byte, with the ``cryptography`` package only:

- ``AESKey = base64(EncodingAESKey + "=")`` (32 bytes), ``IV = AESKey[:16]``;
  AES-256-CBC without library padding, PKCS#7 applied by hand with block size **32**;
- plaintext = ``random(16) ‖ uint32_be(len(msg)) ‖ msg ‖ component appid``;
- ``msg_signature = sha1(sorted([token, timestamp, nonce, encrypt]) joined)``, lower hex,
  compared in constant time; the legacy URL ``signature`` drops ``encrypt``.

The appid is the **component** (third-party platform) appid, not the mini program's.
Every failure raises :class:`~platforms.push.PushRejected` with a short reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from platforms.push import PushRejected

__all__ = ["BLOCK_SIZE", "PushRejected", "WeChatCrypto", "parse_xml"]

BLOCK_SIZE = 32  # WeChat's PKCS#7 block size (not AES's 16)

_ALPHANUMERIC = string.ascii_letters + string.digits


def _sha1(*parts: str) -> str:
    joined = "".join(sorted(parts)).encode("utf-8")
    return hashlib.sha1(joined).hexdigest()  # noqa: S324 - the vendor's protocol is SHA-1


def _pad(data: bytes) -> bytes:
    n = BLOCK_SIZE - len(data) % BLOCK_SIZE
    return data + bytes([n]) * n


def _unpad(data: bytes) -> bytes:
    n = data[-1] if data else 0
    if not 1 <= n <= BLOCK_SIZE or n > len(data) or data[-n:] != bytes([n]) * n:
        raise PushRejected("bad padding after decryption (wrong EncodingAESKey?)")
    return data[:-n]


def _cdata(text: str) -> str:
    if "]]>" in text:
        raise ValueError("text must not contain ']]>'")
    return f"<![CDATA[{text}]]>"


def parse_xml(body: bytes | str) -> dict[str, str]:
    """A flat ``{tag: text}`` of the root's children; refuses DTDs and entity declarations.

    defusedxml refuses a DOCTYPE (and with it every entity declaration) the moment the
    parser meets one, in whatever encoding the document is written: a byte pattern looked
    for beforehand misses a UTF-16 body. The envelope is read before its signature can be
    checked, so this is what stands between an anonymous POST and the XML parser.

    Raises:
        PushRejected: the body is not such XML.
    """
    try:
        root = fromstring(body, forbid_dtd=True)
    except DefusedXmlException:
        raise PushRejected("XML with a DOCTYPE or ENTITY declaration is refused") from None
    except ParseError as exc:
        raise PushRejected(f"malformed XML: {exc}") from None
    except (LookupError, ValueError) as exc:  # an unknown or unusable declared encoding
        raise PushRejected(f"unreadable XML: {exc}") from None
    return {child.tag: (child.text or "") for child in root}


class WeChatCrypto:
    """Encrypt, decrypt and sign WeChat pushes for one third-party platform.

    Raises:
        PushRejected: (from the constructor) when ``encoding_aes_key`` does not decode
            to 32 bytes.
    """

    def __init__(self, token: str, encoding_aes_key: str, appid: str) -> None:
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except (binascii.Error, ValueError):
            raise PushRejected("bad EncodingAESKey: not base64 (expected 43 characters)") from None
        if len(key) != 32:
            raise PushRejected(
                f"bad EncodingAESKey length: decodes to {len(key)} bytes, expected 32"
            )
        self._token = token
        self._key = key
        self.appid = appid

    def __repr__(self) -> str:
        return f"WeChatCrypto(appid={self.appid!r})"

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    # ----------------------------------------------------------------- signatures

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        """``msg_signature``: SHA-1 over the sorted token, timestamp, nonce and ``Encrypt``."""
        return _sha1(self._token, timestamp, nonce, encrypt)

    def url_signature(self, timestamp: str, nonce: str) -> str:
        """The legacy query ``signature`` (token, timestamp, nonce only; do not verify with it)."""
        return _sha1(self._token, timestamp, nonce)

    def check_signature(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        """Raise :class:`PushRejected` unless ``msg_signature`` matches (constant time)."""
        expected = self.signature(timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), msg_signature.strip().lower().encode()):
            raise PushRejected("bad msg_signature")

    # ----------------------------------------------------------------- payload

    def encrypt(self, msg: bytes, *, random16: bytes | None = None) -> str:
        """The base64 ``Encrypt`` text for ``msg``; ``random16``: random alphanumerics."""
        if random16 is None:
            random16 = "".join(secrets.choice(_ALPHANUMERIC) for _ in range(16)).encode("ascii")
        if len(random16) != 16:
            raise ValueError("random16 must be 16 bytes")
        full = random16 + struct.pack(">I", len(msg)) + msg + self.appid.encode("utf-8")
        encryptor = self._cipher().encryptor()
        cipher = encryptor.update(_pad(full)) + encryptor.finalize()
        return base64.b64encode(cipher).decode("ascii")

    def decrypt(self, encrypt: str) -> bytes:
        """The message inside an ``Encrypt`` text, after checking the trailing appid.

        Raises:
            PushRejected: bad base64, bad length or padding, or an appid mismatch.
        """
        try:
            cipher = base64.b64decode(encrypt.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise PushRejected("Encrypt is not valid base64") from None
        if not cipher or len(cipher) % 16:
            raise PushRejected(f"Encrypt is {len(cipher)} bytes, not whole AES blocks")
        decryptor = self._cipher().decryptor()
        full = _unpad(decryptor.update(cipher) + decryptor.finalize())
        if len(full) < 20:
            raise PushRejected("decrypted payload too short")
        (length,) = struct.unpack(">I", full[16:20])
        if 20 + length > len(full):
            raise PushRejected("decrypted message length exceeds the payload")
        msg, tail = full[20 : 20 + length], full[20 + length :]
        if not hmac.compare_digest(tail, self.appid.encode("utf-8")):
            raise PushRejected("appid mismatch: the push was encrypted for another platform")
        return msg

    # ----------------------------------------------------------------- pushes

    def verify_push(
        self, xml_body: bytes, *, msg_signature: str, timestamp: str, nonce: str
    ) -> str:
        """The ``Encrypt`` text of a pushed envelope, once ``msg_signature`` says WeChat
        signed it (with ``timestamp`` and ``nonce``, the only other parts signed).

        Raises:
            PushRejected: malformed envelope, no ``Encrypt``, or a bad signature.
        """
        envelope = parse_xml(xml_body)
        encrypt = envelope.get("Encrypt", "")
        if not encrypt:
            raise PushRejected("the envelope has no Encrypt element")
        self.check_signature(msg_signature, timestamp, nonce, encrypt)
        return encrypt

    def decrypt_push(
        self, xml_body: bytes, *, msg_signature: str, timestamp: str, nonce: str
    ) -> dict[str, str]:
        """Verify and decrypt a pushed envelope; the inner XML as a flat ``{tag: text}``.

        Raises:
            PushRejected: malformed envelope, bad signature, or anything :meth:`decrypt` refuses.
        """
        encrypt = self.verify_push(
            xml_body, msg_signature=msg_signature, timestamp=timestamp, nonce=nonce
        )
        return parse_xml(self.decrypt(encrypt))

    def encrypt_push(
        self,
        inner_xml: str,
        *,
        timestamp: str,
        nonce: str,
        to_user: str,
        envelope_key: str = "ToUserName",
        random16: bytes | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """Build a push as WeChat sends it: ``(query params, envelope body)``.

        ``envelope_key`` is ``ToUserName`` for message pushes (``to_user`` = ``gh_…``) and
        ``AppId`` for authorization-event pushes (``to_user`` = component appid).
        """
        if envelope_key not in ("ToUserName", "AppId"):
            raise ValueError("envelope_key must be 'ToUserName' or 'AppId'")
        encrypt = self.encrypt(inner_xml.encode("utf-8"), random16=random16)
        query = {
            "signature": self.url_signature(timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "encrypt_type": "aes",
            "msg_signature": self.signature(timestamp, nonce, encrypt),
        }
        body = (
            f"<xml><{envelope_key}>{_cdata(to_user)}</{envelope_key}>"
            f"<Encrypt>{_cdata(encrypt)}</Encrypt></xml>"
        )
        return query, body.encode("utf-8")
