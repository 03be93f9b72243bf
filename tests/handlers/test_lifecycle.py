"""The rest of the life cycle through the console, against both emulators: trial QR codes,
templates, quotas, expedite, gray releases, rollback, offline, version lists, connect."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from bot import serving
from handlers.pushes import PushReceiver
from storage import LinkRefused, ReleaseState
from tests.handlers.harness import Session

S = ReleaseState
WECHAT_APPID = "wx3a5f9c2e1b7d4f60"


async def approved(session: Session, version: str, platform: str = "") -> None:
    where = f" {platform}" if platform else ""
    await session.run(f"upload demo{where} {version} version {version}")
    out = await session.run(f"submit demo{where} {version}")
    assert "✗" not in out, out
    session.decide_reviews()
    await session.watch()


async def released(session: Session, version: str, platform: str) -> None:
    await approved(session, version, platform)
    out = await session.run(f"publish demo {platform} {version}")
    assert "✓" in out, out


async def test_upload_saves_each_trial_qr_code(session: Session, tmp_path: Path) -> None:
    session.console.pictures = tmp_path / "qr"
    out = await session.run("upload demo 1.0.0 first")
    saved = re.findall(r"QR code saved to (\S+)", out)
    assert len(saved) == 2, out
    images = {Path(p).suffix: Path(p).read_bytes() for p in saved}
    assert images[".jpg"].startswith(b"\xff\xd8")  # WeChat's get_qrcode: JPEG
    assert images[".png"].startswith(b"\x89PNG")  # Alipay's experience QR: PNG
    out = await session.run("qr demo wechat")
    assert "QR code saved to" in out and "1.0.0" in out
    out = await session.run("qr demo wechat 9.9.9")
    assert "never uploaded" in out


async def test_templates_add_commit_and_delete(session: Session) -> None:
    out = await session.run("templates")
    assert "WeChat template library" in out and "Draft box" in out
    draft = re.search(r"draft (\d+):", out)
    assert draft is not None, out
    out = await session.run(f"template add {draft.group(1)}")
    assert "Not done" not in out, out
    listing = await session.run("templates wechat")
    ids = re.findall(r"template (\d+):", listing)
    assert ids, listing
    out = await session.run(f"upload demo wechat 1.0.0 template {ids[-1]} from the new one")
    assert "✓ WeChat" in out, out
    out = await session.run(f"template delete {ids[-1]}")
    assert "Not done" not in out
    out = await session.run("template delete 987654")
    assert out.startswith("Not done") and "85064" in out
    out = await session.run("templates alipay")
    assert "Alipay has no template library" in out
    history = await session.run("history demo")
    assert "upload 1.0.0 WeChat" in history


async def test_spent_audit_quota_refuses_submit_before_asking(session: Session) -> None:
    session.runtime.emulators["wechat"].quota_limit = 0  # type: ignore[attr-defined]
    await session.run("upload demo wechat 1.0.0 first")
    out = await session.run("submit demo wechat 1.0.0")
    assert "– WeChat" in out and "no audit submissions" in out.lower(), out
    assert await session.state("1.0.0", "wechat") is S.UPLOADED
    out = await session.run("quota demo wechat")
    assert "spent" in out


@pytest.mark.both_databases
async def test_withdrawals_are_counted_and_the_sixth_of_a_day_refused(session: Session) -> None:
    await session.run("upload demo wechat 1.0.0 first")
    for n in range(5):
        out = await session.run("submit demo wechat 1.0.0")
        assert "✓" in out, out
        out = await session.run("withdraw demo wechat 1.0.0")
        assert "✓" in out and f"{4 - n} of 5" in out, out
    await session.run("submit demo wechat 1.0.0")
    out = await session.run("withdraw demo wechat 1.0.0")
    assert "– WeChat" in out and "5 withdrawals a day" in out, out
    assert await session.state("1.0.0", "wechat") is S.IN_REVIEW
    out = await session.run("quota demo wechat")
    assert "counted by miniship" in out


async def test_expedite_on_wechat_and_at_submission_on_alipay(session: Session) -> None:
    await session.run("upload demo 1.0.0 first")
    out = await session.run("submit demo alipay 1.0.0 --expedite")
    assert "✓ Alipay" in out, out
    await session.run("submit demo wechat 1.0.0")
    out = await session.run("expedite demo wechat 1.0.0")
    assert "✓ WeChat" in out and "expedite" in out.lower(), out
    out = await session.run("expedite demo alipay 1.0.0")
    assert "– Alipay" in out and "`submit demo alipay 1.0.0 --expedite`" in out, out


async def test_gray_grows_stops_and_publish_completes_it(session: Session) -> None:
    await released(session, "1.0.0", "wechat")
    await approved(session, "1.1.0", "wechat")
    out = await session.run("gray demo wechat 10")
    assert "released to 10% of users" in out, out
    assert out.count("publish") == 1 and out.count("stop") == 1, out  # what next, said once
    assert await session.state("1.1.0", "wechat") is S.GRAY
    out = await session.run("status demo wechat")
    assert "gray" in out and "10%" in out
    out = await session.run("gray demo wechat 5")
    assert "✗ WeChat" in out  # a share may only grow
    out = await session.run("gray demo wechat stop")
    assert "stopped" in out and await session.state("1.1.0", "wechat") is S.APPROVED
    await session.run("gray demo wechat 1.1.0 30")
    await session.watch()  # the watcher sees the staged release and leaves it be
    assert await session.state("1.1.0", "wechat") is S.GRAY
    out = await session.run("publish demo wechat 1.1.0")
    assert "✓ WeChat  published 1.1.0: it is live now (the gray release at 30% is complete)" in out
    assert await session.state("1.1.0", "wechat") is S.RELEASED


async def test_alipay_gray_takes_its_own_steps(session: Session) -> None:
    await released(session, "1.0.0", "alipay")
    await approved(session, "1.1.0", "alipay")
    out = await session.run("gray demo alipay 20")
    assert "stages releases at p10, p30, p50" in out
    out = await session.run("gray demo alipay p30")
    assert "✓ Alipay" in out, out
    out = await session.run("publish demo alipay 1.1.0")
    assert "✓ Alipay" in out, out


async def test_rollback_offers_the_history(session: Session) -> None:
    await released(session, "1.0.0", "wechat")
    await released(session, "1.1.0", "wechat")
    out = await session.run("rollback demo wechat to 0.0.1")
    assert "✗ WeChat" in out and "1.0.0" in out, out  # names what one can go back to
    out = await session.run("rollback demo wechat")
    assert "✓ WeChat" in out and "rolled back from 1.1.0" in out, out
    assert await session.state("1.1.0", "wechat") is S.ROLLED_BACK
    out = await session.run("status demo wechat")
    assert "live 1.0.0" in out and "versions WeChat keeps" in out


async def test_alipay_offline_and_version_list(session: Session) -> None:
    await released(session, "1.0.0", "alipay")
    out = await session.run("status demo alipay")
    assert "versions Alipay keeps" in out and "1.0.0" in out
    out = await session.run("offline demo alipay")
    assert "✓ Alipay  1.0.0 taken offline: users can no longer open" in out, out
    assert out.count("taken offline") == 1, out
    assert await session.state("1.0.0", "alipay") is S.OFFLINE
    out = await session.run("offline demo wechat")
    assert "WeChat has no offline" in out


@pytest.mark.both_databases
async def test_connect_stores_the_grant_and_apps_shows_it(session: Session) -> None:
    rt = session.runtime
    rt.emulators["wechat"].revoke(WECHAT_APPID)  # type: ignore[attr-defined]
    out = await session.run("apps")
    assert "not authorized" in out and "connect demo wechat" in out
    async with serving(PushReceiver(rt.service, rt.admin).web_app(), "127.0.0.1", 0) as port:
        rt.admin.public_url = f"http://127.0.0.1:{port}"
        out = await session.run("connect demo wechat")
        link = re.search(r"https?://\S+", out)
        assert link is not None, out
        async with httpx.AsyncClient() as browser:
            to_miniship = (await browser.get(link.group())).headers["location"]
            back = urlsplit(to_miniship)
            callback = dict(parse_qsl(back.query))
            assert set(callback) == {"auth_code", "expires_in"}  # no app to trust
            assert back.path.startswith("/connect/wechat/") and len(back.path) > 40
            page = await browser.get(to_miniship)
            assert page.status_code == 200 and "Authorized" in page.text, page.text
            again = await browser.get(to_miniship)  # the link works once
            assert again.status_code == 400 and "used already" in again.text
            forged = await browser.get(
                f"http://127.0.0.1:{port}/connect/wechat/made-up",
                params={"auth_code": callback["auth_code"], "app": "demo"},
            )
            assert forged.status_code == 400 and "not made by this miniship" in forged.text
            bare = await browser.get(f"http://127.0.0.1:{port}/connect/wechat")
            assert bare.status_code == 400
    assert "[connect] demo authorized" in session.out.getvalue()
    refused = [e for e in await rt.service.store.history("demo") if e.action == "authorized"]
    assert [e.outcome for e in refused] == ["ok"] and "link from" in refused[0].message
    logged = repr([e.exchanges for e in await rt.service.store.history("demo")])
    assert "api_query_auth" in logged and callback["auth_code"] not in logged
    out = await session.run("apps")
    assert "authorized:" in out and "not authorized" not in out
    stored = await rt.service.adapters["wechat"].vault.load(  # type: ignore[union-attr]
        "wechat", f"refresh_token:{WECHAT_APPID}"
    )
    assert stored is not None
    out = await session.run("upload demo wechat 1.0.0 after connecting")
    assert "✓ WeChat" in out, out


async def test_an_expired_authorization_link_is_refused(session: Session) -> None:
    store = session.runtime.service.store
    state = await store.open_connect("wechat", "demo", "U1", timedelta(seconds=-1))
    with pytest.raises(LinkRefused, match="expired"):
        await session.runtime.admin.complete_connect("wechat", state, {"auth_code": "c"})
    other = await store.open_connect("alipay", "demo", "U1", timedelta(minutes=5))
    with pytest.raises(LinkRefused, match="not made"):  # made for another platform
        await session.runtime.admin.complete_connect("wechat", other, {"auth_code": "c"})
    assert await store.take_connect("alipay", other)  # and still good for its own


async def test_connect_without_a_public_address_says_what_to_set(session: Session) -> None:
    session.runtime.admin.public_url = None
    out = await session.run("connect demo wechat")
    assert "MINISHIP_PUBLIC_URL" in out


async def test_an_approved_version_goes_back_to_development_on_alipay_only(
    session: Session,
) -> None:
    await session.run("upload demo 1.0.0 first")
    await session.run("submit demo 1.0.0")
    session.decide_reviews()
    await session.watch()
    out = await session.run("withdraw demo wechat 1.0.0")
    assert "– WeChat  1.0.0 is approved, not in review; nothing to withdraw" in out, out
    assert await session.state("1.0.0", "wechat") is S.APPROVED
    out = await session.run("withdraw demo alipay 1.0.0")
    assert "✓ Alipay  back to development" in out, out
    assert await session.state("1.0.0", "alipay") is S.WITHDRAWN
