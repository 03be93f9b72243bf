"""Alipay (支付宝) mini programs through the open platform v2 gateway (``gateway.do``).

Credentials. miniship calls Alipay as a third-party app (ISV, 第三方应用) on behalf of each
merchant mini program, or as the mini program itself (self-owned, 自调用):

- ISV mode: in the Alipay open platform console (https://open.alipay.com) create a
  third-party app, add the "小程序开发管理" permission set, upload the public half of an RSA2
  key you generate, and note the Alipay public key (支付宝公钥) shown there. Set
  ``ALIPAY_APP_ID``, ``ALIPAY_PRIVATE_KEY`` (or ``ALIPAY_PRIVATE_KEY_FILE``) and
  ``ALIPAY_PUBLIC_KEY`` (or ``ALIPAY_PUBLIC_KEY_FILE``). Each merchant authorises the app:
  through the link ``connect alipay`` gives (register ``<MINISHIP_PUBLIC_URL>/connect/alipay``
  as the third-party app's authorization callback address), after which miniship keeps
  the ``app_auth_token`` and ``app_refresh_token`` in its credential vault and adds the
  mini program as an app; or by putting the pair from ``alipay.open.auth.token.app`` into
  the app's ``[apps.<key>.alipay]`` section as ``env:``/``file:`` references. When
  miniship renews them it keeps the new pair in its credential vault and uses that pair
  first after a restart (Alipay may retire the configured ones).
- Self-owned mode: set ``private_key`` and ``alipay_public_key`` in the app's section; the
  mini program's own APPID (``app_id``) then signs its calls.

Uploading. An app with ``template_id`` is built from that template
(``alipay.open.mini.version.upload``, an ISV API) and miniship waits for the build
(``build.query``). An app owned directly instead gives ``project_path`` (its built code),
``tool_id`` and ``tool_private_key`` (a "工具密钥" from
https://openhome.alipay.com/dev/workspace/key-manage/tool), and is uploaded with the
``minidev`` CLI (``make clis`` installs it).

API docs: https://opendocs.alipay.com/mini/03l8bz (upload), https://opendocs.alipay.com/mini/03l9bq
(audit.apply), https://opendocs.alipay.com/mini/03l9bu (detail.query),
https://opendocs.alipay.com/mini/03l21p (online), https://opendocs.alipay.com/mini/03l3ev (gray),
https://opendocs.alipay.com/mini/03l21q (rollback), https://opendocs.alipay.com/mini/03l9bw
(experience), https://opendocs.alipay.com/mini/02q17h (minidev).

The package, read from what Alipay is to what the adapter does:

- ``errors``: what each gateway code and sub_code means (:func:`error_for`);
- ``config``: the ``ALIPAY_*`` settings and an app's ``[apps.<key>.alipay]`` section;
- ``api``: the gateway method names and form parts (shared with the emulator);
- ``sign``: RSA2 signing and verification (shared with the emulator);
- ``reading``: the version statuses, and the answers' fields read for the value objects;
- ``keys``: who signs an app's calls, with which keys and tokens;
- ``wire``: one signed request and its verified answer, and the tokens it carries
  (:class:`~platforms.alipay.wire.AlipayWire`);
- ``versions``: reading and changing one version, what the operations are built from;
- ``upload``, ``review``, ``release``, ``trial``, ``pushes``, ``authorization``: the
  operations, one mixin each;
- ``adapter``: :class:`AlipayPlatform`, the mixins put together.
"""

from __future__ import annotations

from platforms.alipay.adapter import AlipayPlatform
from platforms.alipay.api import (
    AUDIT_APPLY,
    AUDIT_CANCEL,
    AUDITED_CANCEL,
    AUTH_GRANT,
    BUILD_QUERY,
    DETAIL_QUERY,
    EXPERIENCE_CREATE,
    EXPERIENCE_QUERY,
    GRAY_CANCEL,
    GRAY_ONLINE,
    LIST_QUERY,
    OFFLINE,
    ONLINE,
    ROLLBACK,
    UPLOAD,
)
from platforms.alipay.config import AlipayAppConfig, AlipaySettings
from platforms.alipay.errors import error_for
from platforms.alipay.reading import version_key
from platforms.alipay.review import version_desc_length

__all__ = [  # the method names too, from platforms.alipay.api, for callers of the adapter
    "AUDITED_CANCEL",
    "AUDIT_APPLY",
    "AUDIT_CANCEL",
    "AUTH_GRANT",
    "BUILD_QUERY",
    "DETAIL_QUERY",
    "EXPERIENCE_CREATE",
    "EXPERIENCE_QUERY",
    "GRAY_CANCEL",
    "GRAY_ONLINE",
    "LIST_QUERY",
    "OFFLINE",
    "ONLINE",
    "ROLLBACK",
    "UPLOAD",
    "AlipayAppConfig",
    "AlipayPlatform",
    "AlipaySettings",
    "error_for",
    "version_desc_length",
    "version_key",
]
