"""A local stand-in for api.weixin.qq.com: third-party-platform tokens and code management.

The emulator is one third-party platform (component appid, secret and the verify ticket it
"pushed") with a template library and draft box, and the mini programs that authorized it
(or not yet); per mini program: the committed trial version, its audits, the live release,
the kept release history, a gray release plan and its withdraw counters. It follows the
fact sheet (shared/reference/wechat-api.md): errors are HTTP 200 with
``{"errcode", "errmsg": "<text> rid: …"}``, token endpoints answer without ``errcode``,
bodies are ``application/json; encoding=utf-8``.

Rules enforced:

- method (43001/43002), token present (41001), known (40001), not expired (42001, tokens
  live 7200 s on the emulator clock) and of the right kind (61014 / 48001); the caller's
  IP on :attr:`WeChatEmulator.ip_whitelist` when one is set (61004);
- a body where one is required (44002), parseable JSON object (47001);
- component token: appid (41018/40013), secret (41004/40125), verify ticket (61006;
  61005 once it is older than 12 h — the current ticket stays fresh, as WeChat pushes a new
  one every 10 minutes); an expired component token answers 42001 like any expired token
  (:attr:`WeChatEmulator.expired_component_errcode` gives 42006, a code only WxJava's enum
  names, for clients to be tried against);
  authorizer token: platform appid (61011), authorized mini program (61003), refresh
  token (61023); code-management calls need permission set 18 (61007);
- authorization: api_create_preauthcode, the authorization page ``componentloginpage``
  (the admin "confirms" at once: 302 to ``redirect_uri?auth_code=…&expires_in=600``),
  api_query_auth (61009 unknown or used code, 61010 expired), api_get_authorizer_info
  (61003 for a mini program that has not authorized the platform);
- template library: drafts and templates (gettemplatedraftlist, gettemplatelist; with
  :attr:`WeChatEmulator.empty_lists_as_85064` an empty list answers 85064), addtotemplate
  (85064 unknown draft, 85065 library full at 200; template ids only grow, never reused),
  deletetemplate (85064); a fresh library also holds a template no app uses;
- commit: known template (85014), ``ext_json`` a JSON object string (85048) with the mini
  program's ``extAppid`` and ``pages`` a list of strings (85013), pages not empty (85047),
  tabBar items with a path (85046), every page it names (``pages``, ``extPages`` keys,
  tabBar paths) one of the template's (85045), ``user_version`` 1–64 chars (40097);
- get_qrcode: a real, scannable JPEG of the trial version's experience URL (86001 before a
  commit; errors as JSON in a ``text/plain`` body);
- submit_audit: a commit (85086), privacy scan finished (61039, for
  ``privacy_scan_seconds`` after a commit; get_code_privacy_info answers the same), privacy
  APIs the code uses (:attr:`_Program.privacy_apis`) declared in
  ``ext_json.requiredPrivateInfos`` or ``privacy_api_not_use`` (61040), one audit in review
  per mini program (85009), ``item_list`` of 1–5 complete items (85023/85010) with the mini
  program's categories (85008) and the code's pages (85007), provider quota left this
  month (85085);
- speedupaudit: an audit waiting in the queue (89402), once per audit (89404), the
  provider's monthly expedite quota (89405);
- get_auditstatus: the audit belongs to the mini program (85012); get_latest_auditstatus:
  something was submitted (85058); a rejected audit names two screenshot media ids
  (``screenshot`` in get_auditstatus, ``ScreenShot`` in get_latest_auditstatus and the push);
- get_material (``/cgi-bin/material/get_material``, one of permission sets 3, 11, 18, 30,
  31, 100): a rejected audit's screenshot media id gives a PNG saying the rejection reason;
  any other media id, or one of another mini program, answers 40007 ``invalid media_id``;
- undocodeaudit: only while in review (85019, 87012 once decided), 5 a day and 10 a month
  per mini program in Beijing time (87013);
- release: the latest audit exists (85019), is approved (85020), not yet released (85052);
  during a gray release it releases to everyone and finishes the plan (the sheet is silent;
  this is WeChat's console behaviour);
- grayrelease: a live version (85079), the latest audit approved and unreleased (85080), a
  whole percentage 0–100 (0 only with a "first" flag) (85081), rising (85082);
  revertgrayrelease ends it;
- revertcoderelease: not during a gray release (87011), an earlier kept version (the last 5
  releases are kept), never twice in a row (87012), ``app_version`` a number (40097);
  get_history_version lists the kept releases, but none while the live version is a
  rollback (``version_list: []`` until the next release; UNCERTAIN, the sheet is silent —
  :attr:`WeChatEmulator.rollback_keeps_history` keeps listing them).

Reviews are decided lazily by :meth:`Emulator.decide` on the commit's ``user_desc`` plus
the submit's ``version_desc``; a new submission supersedes an unreleased approval.

Faults: ``rate_limit`` answers 45009 (the daily quota) without carrying the request out;
``malformed`` and ``unsigned`` carry it out and cut the answer short (WeChat signs no
answer, so both are the same here). WeChat's own variants (:data:`WECHAT_FAULTS`):
``rate_limit_minute`` answers 45011 (the per-minute limit) and ``invalid_token`` 40014
(the token refused as invalid), neither carrying the request out. get_history_version is
faulted and counted as ``/wxa/revertcoderelease?action=get_history_version``, apart from
rollbacks.

Refresh tokens stay the same on renewal unless :attr:`WeChatEmulator.rotate_refresh_tokens`
is set (whether WeChat rotates them is UNCERTAIN, sheet §3.6): then every
api_authorizer_token answer carries a new one and the old one is refused (61023).

The package: ``state`` (what the platform holds), ``errors`` (errcode answers), ``server``
(faults and the common checks of every call), one mixin of API handlers per concern
(``authorization``, ``templates``, ``commit``, ``review``, ``release``), ``pushes``, and
``emulator`` (:class:`WeChatEmulator`: its state set up, kept, provisioned, and the table
of the APIs it serves).
"""

from __future__ import annotations

from platforms.emulators.wechat.emulator import WeChatEmulator

__all__ = ["WeChatEmulator"]
