"""A local look-alike of the Alipay open platform gateway for the mini program version APIs.

Mounted at ``/alipay``, it answers ``POST`` (and ``GET``) ``/gateway.do`` as the fact sheet
(``alipay-api.md`` §1–3) describes: common parameters in the query string or the body,
RSA2 request signatures checked against the calling app's public key, responses signed
with the platform key as ``{"<method>_response":{…},"sign":"…"}``, gateway error codes
(20000/20001/40001/40002/40004/40006) with the platform's own sub_codes and Chinese
sub_msgs.

The emulator plays the third-party app (ISV) setting: :meth:`provision` creates the ISV
app and its key pair, the platform key pair, and for each mini program an
``app_auth_token``/``app_refresh_token`` grant. Self-owned calls (the mini program signs
with its own key) work once :meth:`register_app_key` gave that mini program a key.

Emulated methods: ``alipay.open.mini.version.upload`` / ``build.query`` / ``audit.apply``
(multipart, screenshots as file parts) / ``audit.cancel`` / ``audited.cancel`` / ``online`` /
``offline`` / ``rollback`` / ``gray.online`` / ``gray.cancel`` / ``detail.query`` /
``list.query``, ``alipay.open.mini.experience.create`` / ``.query`` and
``alipay.open.auth.token.app`` (``authorization_code`` with the codes its authorization
page issued, one-time and for a day; ``refresh_token``).

The authorization page: ``GET /page/message/tasksDetail?bizData=…`` (Alipay's "specified
app" authorization, :mod:`.authorization`), where a merchant mini program
(``merchant_app_id``, the emulator's own parameter, with ``app_name``) authorizes the
third-party app and the browser is sent to ``redirectUri`` with ``app_auth_code``.

Test endpoints beside the gateway (not Alipay's):

- ``GET /_emulator/experience-qr.png?app_id=…&bundle_id=…&version=…``: the trial version's
  QR code, a real PNG (``exp_qr_code_url`` points here);
- ``GET /_emulator/audit-image.png?app_id=…&bundle_id=…&version=…&n=1|2``: an image of a
  rejected version's review, a real PNG saying the reason (``base_audit_record``'s
  ``audit_images`` and ``memo_image_list`` point here; 404 unless the version is rejected);
- ``POST /_emulator/minidev/upload``: what a minidev stand-in calls to upload a version of a
  mini program owned directly, signed with a tool key from :meth:`AlipayEmulator.register_tool`.

The package: ``state`` (what the gateway holds), ``errors`` (failure answers), ``rules``
(the emulator's own reading of Alipay's rules), one mixin of methods per concern
(``grants``, ``versions``, ``release``, ``trial``), ``gateway`` (checks and dispatch),
``pushes``, ``authorization`` (the authorization page), and ``emulator``
(:class:`AlipayEmulator`: its state set up, kept, provisioned, and its routes).
"""

from __future__ import annotations

from platforms.emulators.alipay.emulator import AlipayEmulator

__all__ = ["AlipayEmulator"]
