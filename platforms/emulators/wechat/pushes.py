"""What the emulated platform pushes: a component_verify_ticket every 10 minutes, the
audit results, and authorizations given or withdrawn, encrypted as WeChat does.
"""

from __future__ import annotations

import secrets

from platforms.emulators.base import OutgoingPush
from platforms.emulators.wechat.state import (
    TICKET_PUSH_SECONDS,
    TICKETS_KEPT_SECONDS,
    WeChatState,
    _Audit,
    _Program,
)
from platforms.wechat.crypto import WeChatCrypto

__all__ = ["Pushes"]


PUSH_EVENTS = {0: "weapp_audit_success", 1: "weapp_audit_fail", 4: "weapp_audit_delay"}
PUSH_OUTCOMES = {0: "approved", 1: "rejected", 4: "delayed"}


class Pushes(WeChatState):
    """:meth:`due_pushes`."""

    def _crypto(self) -> WeChatCrypto:
        comp = self.component
        return WeChatCrypto(comp.token, comp.encoding_aes_key, comp.appid)

    def _push(
        self, key: str, url: str, inner: str, to_user: str, envelope_key: str
    ) -> OutgoingPush:
        query, body = self._crypto().encrypt_push(
            inner,
            timestamp=str(int(self.clock())),
            nonce=str(secrets.randbelow(10**10)),
            to_user=to_user,
            envelope_key=envelope_key,
        )
        return OutgoingPush(key, url, query, body, "text/xml")

    def _ticket_push(self, base: str) -> OutgoingPush | None:
        now = self.clock()
        if self.ticket_pushed_at is not None and now < self.ticket_pushed_at + TICKET_PUSH_SECONDS:
            return None
        comp = self.component
        if self.pending_ticket is None:  # a new ticket; the previous ones stay valid 12 h
            kept = [(t, at) for t, at in self.previous_tickets if now < at + TICKETS_KEPT_SECONDS]
            self.previous_tickets = [*kept, (comp.verify_ticket, self.ticket_issued_at)]
            comp.verify_ticket = "ticket@@@" + secrets.token_urlsafe(48)
            self.ticket_issued_at = now
            self.pending_ticket = comp.verify_ticket
        inner = (
            f"<xml><AppId><![CDATA[{comp.appid}]]></AppId><CreateTime>{int(now)}</CreateTime>"
            "<InfoType><![CDATA[component_verify_ticket]]></InfoType>"
            f"<ComponentVerifyTicket><![CDATA[{self.pending_ticket}]]></ComponentVerifyTicket>"
            "</xml>"
        )

        def delivered() -> None:
            self.ticket_pushed_at = now
            self.pending_ticket = None

        push = self._push(
            f"ticket:{len(self.previous_tickets)}", base + "/auth", inner, comp.appid, "AppId"
        )
        return OutgoingPush(
            push.key, push.url, push.params, push.body, push.content_type, delivered
        )

    def _audit_push(self, base: str, program: _Program, audit: _Audit) -> OutgoingPush | None:
        if audit.withdrawn_at is not None:
            return None
        status, reason = self._status(audit)
        if status not in PUSH_EVENTS:
            return None
        key = f"audit:{audit.auditid}:{PUSH_OUTCOMES[status]}"
        if key in self.pushed:
            return None
        wait = self.review_seconds / 2 if status == 4 else self.review_seconds
        at = int(audit.submitted_at + wait)
        time_field = {0: "SuccTime", 1: "FailTime", 4: "DelayTime"}[status]
        parts = [
            f"<ToUserName><![CDATA[{program.original_id}]]></ToUserName>",
            "<FromUserName><![CDATA[o_emulator_system]]></FromUserName>",
            f"<CreateTime>{at}</CreateTime>",
            "<MsgType><![CDATA[event]]></MsgType>",
            f"<Event><![CDATA[{PUSH_EVENTS[status]}]]></Event>",
        ]
        if status in (1, 4):
            parts.append(f"<Reason><![CDATA[{reason}]]></Reason>")
        parts.append(f"<{time_field}>{at}</{time_field}>")
        if status == 1:
            parts.append(f"<ScreenShot><![CDATA[{self._screenshots(audit)}]]></ScreenShot>")
        inner = "<xml>" + "".join(parts) + "</xml>"
        return self._push(key, f"{base}/{program.appid}", inner, program.original_id, "ToUserName")

    def _grant_push(self, base: str, n: int, info: str, appid: str, at: float) -> OutgoingPush:
        comp = self.component
        code = ""
        if info != "unauthorized":
            code = (
                f"<AuthorizationCode><![CDATA[queryauthcode@@@{secrets.token_urlsafe(24)}]]>"
                f"</AuthorizationCode><AuthorizationCodeExpiredTime>{int(at) + 3600}"
                "</AuthorizationCodeExpiredTime>"
            )
        inner = (
            f"<xml><AppId><![CDATA[{comp.appid}]]></AppId><CreateTime>{int(at)}</CreateTime>"
            f"<InfoType><![CDATA[{info}]]></InfoType>"
            f"<AuthorizerAppid><![CDATA[{appid}]]></AuthorizerAppid>{code}</xml>"
        )
        return self._push(f"grant:{n}", base + "/auth", inner, comp.appid, "AppId")

    def due_pushes(self) -> list[OutgoingPush]:
        """The ticket push (first time, then every 600 s) and undelivered audit results.

        Audit results go to ``push_url/<mini program appid>`` (the ``$APPID$`` form), the
        ticket to ``push_url/auth``; all encrypted with the component's token and key.
        """
        if self.push_url is None:
            return []
        base = self.push_url.rstrip("/")
        pushes: list[OutgoingPush] = []
        ticket = self._ticket_push(base)
        if ticket is not None:
            pushes.append(ticket)
        for n, (info, appid, at) in enumerate(self.grant_events):
            if f"grant:{n}" not in self.pushed:
                pushes.append(self._grant_push(base, n, info, appid, at))
        for program in self.programs.values():
            for audit in program.audits:
                push = self._audit_push(base, program, audit)
                if push is not None:
                    pushes.append(push)
        return pushes
