"""WeChat (微信) mini programs through a third-party platform (第三方平台): code management.

Credentials. miniship calls WeChat as a third-party platform on behalf of each merchant
mini program that authorized it:

- In the WeChat open platform console (https://open.weixin.qq.com) create a third-party
  platform, note its AppID and AppSecret (``WECHAT_COMPONENT_APPID``,
  ``WECHAT_COMPONENT_SECRET``) and put this server's outgoing IP on its IP whitelist
  (otherwise every call fails with 61004).
- WeChat pushes a ``component_verify_ticket`` to the platform's authorization-event URL
  (``/push/wechat/auth``) every 10 minutes (valid 12 h). miniship keeps the newest one in
  its credential vault (``MINISHIP_SECRET_KEY``); ``WECHAT_COMPONENT_VERIFY_TICKET`` gives
  one to start with. ``WECHAT_COMPONENT_TOKEN`` and ``WECHAT_ENCODING_AES_KEY`` (message
  verification token and key) are for reading pushes.
- Each mini program authorizes the platform with the code-management permission set (18):
  ``connect <app> wechat`` makes the link its admin opens; the ``authorizer_refresh_token``
  WeChat returns goes into the vault. A token obtained elsewhere can instead be given in
  the app's ``[apps.<key>.wechat]`` section as ``refresh_token = "env:NAME"`` (or ``file:``).

Mini programs owned directly (not authorized to a platform) give ``project_path`` and
``private_key`` (the code-upload key from mp.weixin.qq.com) instead of ``template_id``:
upload then runs ``miniprogram-ci``; WeChat has no API to submit or publish them.

Calls: ``api_component_token`` → ``component_access_token``; ``api_authorizer_token`` →
the mini program's ``authorizer_access_token``; then the ``/wxa`` code-management APIs
(commit, get_page, get_category, get_qrcode, submit_audit, get_auditstatus,
get_latest_auditstatus, undocodeaudit, speedupaudit, queryquota, release, grayrelease,
getgrayreleaseplan, revertgrayrelease, revertcoderelease, getversioninfo), permanent
material (get_material: a rejected audit's screenshots, by media id), the template
library (gettemplatelist, gettemplatedraftlist, addtotemplate, deletetemplate) and the
authorization APIs (api_create_preauthcode, api_query_auth, api_get_authorizer_info).
API docs:
https://developers.weixin.qq.com/doc/oplatform/openApi/miniprogram-management/code-management/api_commit.html
(and the pages next to it).

The package, read from what WeChat is to what the adapter does:

- ``errors``: what each errcode means (:func:`error_for`), and :class:`NotConnected`;
- ``config``: the ``WECHAT_*`` settings and an app's ``[apps.<key>.wechat]`` section;
- ``api``: the API paths, and how request bodies are written;
- ``crypto``: the message encryption of WeChat's pushes;
- ``reading``: WeChat's answers turned into records and the shared value objects;
- ``wire``: one request and its answer (:class:`~platforms.wechat.wire.WeChatWire`);
- ``tokens``: the component and authorizer tokens the requests carry, and the vault;
- ``versions``: the reads the operations start from, and ``overview`` / ``versions`` /
  ``trial_code``;
- ``upload``, ``review``, ``screenshots``, ``release``, ``templates``, ``authorization``,
  ``pushes``: the operations, one mixin each;
- ``adapter``: :class:`WeChatPlatform`, the mixins put together.
"""

from __future__ import annotations

from platforms.wechat.adapter import WeChatPlatform
from platforms.wechat.authorization import PERMISSION_NAMES
from platforms.wechat.config import ext_json_problems
from platforms.wechat.errors import NotConnected, error_for

__all__ = [
    "PERMISSION_NAMES",
    "NotConnected",
    "WeChatPlatform",
    "error_for",
    "ext_json_problems",
]
