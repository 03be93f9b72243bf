"""Platform pushes end to end: emulator → /push/… → the release moves, once."""

from __future__ import annotations

import httpx
from sqlmodel import select

from bot import pushes
from handlers.releases import Change
from storage import ReleaseState
from storage.models import Event
from tests.handlers.harness import Session


async def test_a_push_moves_the_release_and_the_poll_adds_nothing(session: Session) -> None:
    seen: list[Change] = []

    async def note(change: Change) -> None:
        seen.append(change)

    session.runtime.service.listeners.append(note)
    async with pushes(session.runtime):
        for emulator in session.runtime.emulators.values():
            await emulator.stop_pushing()  # deliver by hand below, deterministically
            await emulator.deliver_pushes()  # WeChat's first verify-ticket push
        await session.run("upload demo 1.0.0 first release")
        await session.run("submit demo 1.0.0")
        session.decide_reviews()
        for emulator in session.runtime.emulators.values():
            assert await emulator.deliver_pushes() == 1  # approved, pushed to us
        assert await session.state("1.0.0", "wechat") is ReleaseState.APPROVED
        assert await session.state("1.0.0", "alipay") is ReleaseState.APPROVED
        assert await session.runtime.service.refresh_watched() == []  # the poll: no change
        for emulator in session.runtime.emulators.values():
            assert await emulator.deliver_pushes() == 0  # each decision is pushed once
    assert sorted((c.platform, c.new) for c in seen) == [
        ("alipay", ReleaseState.APPROVED),
        ("wechat", ReleaseState.APPROVED),
    ]
    out = await session.run("history demo")
    assert "(seen by push)" in out


async def test_a_push_that_does_not_verify_is_refused_and_recorded(session: Session) -> None:
    async with pushes(session.runtime):
        url = session.runtime.emulators["alipay"].push_url
        assert url is not None
        async with httpx.AsyncClient() as http:
            forged = await http.post(
                url,
                data={
                    "msg_method": "alipay.open.mini.version.audit.passed",
                    "biz_content": '{"mini_app_id":"2021004100000001","mini_app_version":"1.0.0"}',
                    "sign_type": "RSA2",
                    "sign": "Zm9yZ2Vk",
                },
            )
            unknown = await http.post(url.replace("/alipay", "/nowhere"), content=b"x")
    assert forged.status_code == 401 and unknown.status_code == 404
    async with session.runtime.store.session() as s:
        refused = (await s.exec(select(Event).where(Event.action == "push"))).all()
    assert [(e.platform, e.outcome) for e in refused] == [("alipay", "refused")]
