"""The CI API (handlers/api.py) and its tokens (handlers/tokens.py, the ``token`` command),
over HTTP on loopback against both emulated platforms; the clock is the session's."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import serving
from handlers.api import (
    MAX_JSON,
    CiApi,
    PublishBody,
    Refused,
    SubmitBody,
    UploadBody,
    parse_body,
)
from handlers.commands import Commands, Reply
from handlers.releases import Actor
from handlers.roles import RoleCheck
from handlers.scheduler import FollowerPlanner
from storage import ReleaseState
from tests.handlers.harness import Session

BASE = "/api/v1/apps"


@asynccontextmanager
async def api_served(api: CiApi) -> AsyncIterator[str]:
    app = web.Application()
    api.mount(app)
    async with serving(app, "127.0.0.1", 0) as port:
        yield f"http://127.0.0.1:{port}"


async def make_token(session: Session, words: str) -> str:
    said = await session.run(f"token create {words}")
    found = re.search(r"msp_[A-Za-z0-9_-]{43}", said)
    assert found is not None, said
    return found.group()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api(session: Session) -> AsyncIterator[tuple[CiApi, str]]:
    commands = session.runtime.commands(confirm={"publish"})
    ci = CiApi(commands)
    async with api_served(ci) as base:
        yield ci, base


# -- the token command ----------------------------------------------------------------------


@pytest.mark.both_databases
async def test_a_token_is_shown_once_kept_as_a_digest_and_revoked_after_a_question(
    session: Session,
) -> None:
    said = await session.run("token create ci-github --role release --apps demo")
    secret = re.search(r"msp_[A-Za-z0-9_-]{43}", said)
    assert secret is not None and "release on demo" in said
    store = session.runtime.store
    (row,) = await store.tokens()
    assert row.token_hash == hashlib.sha256(secret.group().encode()).hexdigest()
    assert row.roles == ["view", "release"] and row.apps == ["demo"]
    events = await store.events([], unscoped=True, actions=["token create"])
    assert len(events) == 1 and secret.group() not in events[0].message
    listed = await session.run("token list")
    assert "ci-github: release on demo" in listed and "msp_" not in listed
    assert "already called" in await session.run("token create ci-github --role view")
    # revoking asks first (a script answers with --yes)
    assert "Not run" in await session.run("token revoke ci-github")
    assert await store.live_token("ci-github") is not None
    assert "revoked" in await session.run("token revoke ci-github --yes")
    assert await store.live_token("ci-github") is None
    # the name is free again
    assert re.search(r"msp_", await session.run("token create ci-github --role release"))


@pytest.mark.parametrize(
    ("words", "said"),
    [
        ("ci --role boss", "`boss` is not a role"),
        ("ci --apps nosuch --role release", "there is no app `nosuch`"),
        ("ci", "give it a role"),
        ("Bad/Name --role release", "is not a token name"),
        ("ci --role release --color red", "unexpected `--color`"),
    ],
)
async def test_a_token_that_cannot_be_made_is_refused(
    session: Session, words: str, said: str
) -> None:
    assert said in await session.run(f"token create {words}")
    assert await session.runtime.store.tokens() == []


async def test_only_admins_make_tokens_and_a_token_is_shown_only_to_its_asker(
    session: Session,
) -> None:
    async def nobody(group: str) -> frozenset[str]:
        return frozenset()

    service = session.runtime.service
    slack = Commands(service, RoleCheck(nobody), admin=session.runtime.admin)
    refused = await slack.handle(Actor("U0DEV"), "token create ci --role release")
    assert refused.error and "admin" in refused.text
    assert await service.store.tokens() == []
    # a token is never an admin, whatever the file says
    made = await Commands(service, admin=session.runtime.admin).handle(
        Actor("console:ops"), "token create ci --role release"
    )
    assert made.private and not made.error  # Slack shows it to the asker only
    again = await slack.handle(Actor("token:ci"), "token list")
    assert again.error and "admin" in again.text


# -- authentication and scope ---------------------------------------------------------------


async def test_calls_without_a_live_token_are_refused(
    session: Session, api: tuple[CiApi, str]
) -> None:
    _, base = api
    url = f"{base}{BASE}/demo/releases/1.0.0"
    token = await make_token(session, "ci --role release")
    async with httpx.AsyncClient() as http:
        for headers in ({}, {"Authorization": "Basic abc"}, bearer("msp_" + "x" * 43)):
            answer = await http.get(url, headers=headers)
            assert answer.status_code == 401
            assert answer.json()["error"]["code"] == "unauthorized"
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await http.get(url, headers=bearer(token))).status_code == 404  # never uploaded
        await session.run("token revoke ci --yes")
        answer = await http.get(url, headers=bearer(token))
        assert (answer.status_code, answer.json()["error"]["code"]) == (401, "token_revoked")


async def test_a_token_acts_only_with_its_roles_on_its_apps(
    session: Session, api: tuple[CiApi, str]
) -> None:
    _, base = api
    viewer = await make_token(session, "viewer --role view")
    elsewhere = await make_token(session, "elsewhere --role release,publish --apps @shops")
    body = {"version": "1.0.0"}
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{base}{BASE}/demo/releases", json=body, headers=bearer(viewer))
        assert answer.status_code == 403 and "release" in answer.json()["error"]["message"]
        for url in (f"{BASE}/demo/releases", f"{BASE}/demo/releases/1.0.0"):
            method = "POST" if url.endswith("releases") else "GET"
            refused = await http.request(
                method,
                base + url,
                json=body if method == "POST" else None,
                headers=bearer(elsewhere),
            )
            assert refused.status_code == 403, url
        unknown = await http.get(f"{base}{BASE}/nosuch/releases/1.0.0", headers=bearer(viewer))
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert await session.runtime.store.release("demo", "1.0.0") is None
    refusals = await session.runtime.store.events(["demo"], actor="token:viewer")
    assert [e.outcome for e in refusals] == ["refused"]
    assert refusals[0].action == "api upload"


# -- a release through the API ----------------------------------------------------------------


@pytest.mark.both_databases
async def test_upload_submit_and_publish_through_the_api(
    session: Session, api: tuple[CiApi, str]
) -> None:
    ci, base = api
    relayed: list[Reply] = []

    async def relay(reply: Reply) -> None:
        relayed.append(reply)

    ci.relays.append(relay)
    token = await make_token(session, "ci-github --role release,publish --apps demo")
    async with httpx.AsyncClient(headers=bearer(token), timeout=30) as http:
        up = await http.post(
            f"{base}{BASE}/demo/releases", json={"version": "1.0.0", "notes": "First cut."}
        )
        assert up.status_code == 200, up.text
        done = up.json()
        assert done["outcome"] == "ok" and done["version"] == "1.0.0"
        assert {p["platform"]: p["state"] for p in done["release"]["platforms"]} == {
            "wechat": "uploaded",
            "alipay": "uploaded",
        }
        # publishing what is not approved: refused, nothing done
        early = await http.post(f"{base}{BASE}/demo/releases/1.0.0/publish")
        assert early.status_code == 409 and early.json()["error"]["code"] == "refused"
        sub = await http.post(
            f"{base}{BASE}/demo/releases/1.0.0/submit", json={"platforms": ["wechat"]}
        )
        assert sub.status_code == 200, sub.text
        assert await session.state("1.0.0", "wechat") is ReleaseState.IN_REVIEW
        assert await session.state("1.0.0", "alipay") is ReleaseState.UPLOADED
        session.decide_reviews()
        await session.watch()
        read = await http.get(f"{base}{BASE}/demo/releases/1.0.0")
        wechat = next(p for p in read.json()["platforms"] if p["platform"] == "wechat")
        assert (wechat["state"], wechat["words"]) == ("approved", "approved")
        # publish asks first in this miniship (MINISHIP_CONFIRM): the call is the answer
        pub = await http.post(
            f"{base}{BASE}/demo/releases/1.0.0/publish", json={"platforms": ["wechat"]}
        )
        assert pub.status_code == 200, pub.text
        assert pub.json()["outcome"] == "ok"
    assert await session.state("1.0.0", "wechat") is ReleaseState.RELEASED
    events = await session.runtime.store.events(["demo"], actor="token:ci-github", limit=None)
    actions = {(e.action, e.outcome) for e in events}
    assert {("upload", "ok"), ("submit", "ok"), ("publish", "ok"), ("api release", "ok")} <= actions
    assert ("publish", "refused") in actions
    # what ran went to Slack's relay (the card), the refusal did not
    assert [r.action for r in relayed] == ["upload", "submit", "publish"]


async def test_a_timed_publish_answers_202(session: Session, api: tuple[CiApi, str]) -> None:
    _, base = api
    session.runtime.timed.planner = FollowerPlanner()  # kept for the leader to plan
    token = await make_token(session, "ci --role release,publish")
    await session.run("upload demo wechat 1.0.0")
    await session.run("submit demo wechat 1.0.0")
    session.decide_reviews()
    await session.watch()
    async with httpx.AsyncClient(headers=bearer(token)) as http:
        url = f"{base}{BASE}/demo/releases/1.0.0/publish"
        bad = await http.post(url, json={"when": "at tomorrow --override x"})
        assert bad.status_code == 422
        timed = await http.post(url, json={"platforms": ["wechat"], "when": "in 2h"})
        assert timed.status_code == 202, timed.text
        assert timed.json()["outcome"] == "scheduled"
    assert len(await session.runtime.store.timed_actions()) == 1


# -- what is not a request ---------------------------------------------------------------------


async def test_bad_requests_get_a_4xx_with_a_json_error(
    session: Session, api: tuple[CiApi, str]
) -> None:
    _, base = api
    token = await make_token(session, "ci --role release")
    upload = f"{base}{BASE}/demo/releases"
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("POST", upload, {"content": b"{not json"}, 400, "bad_json"),
        ("POST", upload, {"content": b"\xff\xfe{}"}, 400, "bad_json"),
        ("POST", upload, {"content": b"[" * 600 + b"]" * 600}, 400, "bad_json"),
        ("POST", upload, {"content": b"version=1.0.0", "ctype": "text/plain"}, 415, ""),
        ("POST", upload, {"content": b"x" * (MAX_JSON + 1)}, 413, "too_large"),
        ("POST", upload, {"json": {"version": "1.0.0", "colour": "red"}}, 422, "invalid"),
        ("POST", upload, {"json": {"version": "one"}}, 422, "invalid"),
        ("POST", upload, {"json": {"version": "1.0.0", "platforms": ["Bad!"]}}, 422, "invalid"),
        ("POST", upload, {"json": []}, 422, "invalid"),
        ("POST", f"{base}{BASE}/demo/releases/not-a-version/submit", {}, 422, "invalid"),
        ("GET", f"{base}/api/v1/nothing/here", {}, 404, "not_found"),
        ("DELETE", upload, {}, 405, "method_not_allowed"),
    ]
    async with httpx.AsyncClient(headers=bearer(token)) as http:
        for method, url, how, status, code in cases:
            headers = {"Content-Type": how.pop("ctype", "application/json")}
            answer = await http.request(method, url, headers=headers, **how)
            assert answer.status_code == status, (method, url, answer.text)
            error = answer.json()["error"]
            assert error["message"] and (not code or error["code"] == code), error
    assert await session.runtime.store.release("demo", "1.0.0") is None


async def test_the_document_describes_every_route(api: tuple[CiApi, str]) -> None:
    _, base = api
    async with httpx.AsyncClient() as http:
        doc = (await http.get(f"{base}/api/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/api/v1/apps/{app}/releases",
        "/api/v1/apps/{app}/releases/{version}",
        "/api/v1/apps/{app}/releases/{version}/submit",
        "/api/v1/apps/{app}/releases/{version}/publish",
        "/api/v1/apps/{app}/releases/{version}/archive",
    }
    schemas = doc["components"]["schemas"]
    assert set(schemas["UploadBody"]["properties"]) == set(UploadBody.model_fields)
    assert schemas["UploadBody"]["additionalProperties"] is False


# -- any body --------------------------------------------------------------------------------

_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
_BODIES = st.one_of(
    st.binary(max_size=200),
    _JSONISH.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(
        st.sampled_from(["version", "platforms", "notes", "template", "expedite", "when", "x"]),
        _JSONISH,
    ).map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _BODIES,
    st.sampled_from(["application/json", "application/merge-patch+json", "text/plain", ""]),
    st.sampled_from([UploadBody, SubmitBody, PublishBody]),
)
def test_any_body_is_read_or_refused_with_a_4xx(
    raw: bytes, content_type: str, model: type[UploadBody | SubmitBody | PublishBody]
) -> None:
    read = parse_body(raw, content_type, model)
    if isinstance(read, Refused):
        assert read.status in (400, 415, 422) and read.code and read.message
    else:
        assert isinstance(read, model)


# -- where it is served -------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_api_is_on_the_ops_and_push_ports_in_socket_mode_and_the_console(
    session: Session,
) -> None:
    from bot import ci, operating, pushes

    rt = session.runtime
    ops, push = _free_port(), _free_port()
    rt.settings = rt.settings.model_copy(update={"ops_port": ops, "push_port": push})
    token = await make_token(session, "ci --role view")
    async with (
        ci(rt, session.console.commands),
        pushes(rt),
        operating(rt),
        httpx.AsyncClient(headers=bearer(token)) as http,
    ):
        for port in (ops, push):
            base = f"http://127.0.0.1:{port}"
            doc = await http.get(f"{base}/api/openapi.json")
            assert doc.status_code == 200 and doc.json()["openapi"].startswith("3.")
            read = await http.get(f"{base}/api/v1/apps/demo/releases/9.9.9")
            assert read.status_code == 404 and read.json()["error"]["code"] == "not_found"
        assert (await http.get(f"http://127.0.0.1:{ops}/healthz")).status_code == 200
    assert rt.api is None


async def test_the_api_is_on_slacks_server_in_http_mode(session: Session) -> None:
    from slack_bolt.async_app import AsyncApp

    from bot import ci, operating, pushes

    rt = session.runtime
    app = AsyncApp(signing_secret="s", token="xoxb-test").web_app(path="/slack/events")
    async with (
        ci(rt, session.console.commands),
        pushes(rt, app, 0),
        operating(rt, app),
        serving(app, "127.0.0.1", 0) as port,
        httpx.AsyncClient() as http,
    ):
        doc = await http.get(f"http://127.0.0.1:{port}/api/openapi.json")
        assert doc.status_code == 200
        unsigned = await http.post(f"http://127.0.0.1:{port}/api/v1/apps/demo/releases")
        assert unsigned.status_code == 401 and "error" in unsigned.json()
        assert (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code in (200, 503)


async def test_a_stopping_miniship_takes_no_call(session: Session, api: tuple[CiApi, str]) -> None:
    _, base = api
    token = await make_token(session, "ci --role release")
    session.runtime.service.work.stopping = True
    try:
        async with httpx.AsyncClient(headers=bearer(token)) as http:
            answer = await http.post(f"{base}{BASE}/demo/releases", json={"version": "1.0.0"})
    finally:
        session.runtime.service.work.stopping = False
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "stopping"
    assert await session.runtime.store.release("demo", "1.0.0") is None
