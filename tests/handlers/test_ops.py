"""/healthz, /readyz and /metrics over a running release service."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from handlers.ops import Ops
from tests.handlers.harness import Session


async def test_readiness_says_what_is_wrong(session: Session) -> None:
    leading = [True]
    slack_said: list[str | None] = [None]

    async def slack() -> str | None:
        return slack_said[0]

    ops = Ops(session.runtime.service, leading=lambda: leading[0], slack=slack)
    async with TestClient(TestServer(ops.web_app())) as client:
        assert (await client.get("/healthz")).status == 200
        ready = await client.get("/readyz")
        assert ready.status == 200
        assert (await ready.json())["ready"] is True
        leading[0] = False  # a follower is ready too: it answers Slack and commands
        assert (await (await client.get("/readyz")).json())["leader"] is False
        slack_said[0] = "auth.test failed (SlackApiError)"
        refused = await client.get("/readyz")
        assert refused.status == 503
        assert (await refused.json())["problems"] == ["Slack: auth.test failed (SlackApiError)"]
        slack_said[0] = None
        session.runtime.service.work.stopping = True  # a load balancer sends no more
        stopping = await client.get("/readyz")
        assert stopping.status == 503 and "stopping" in (await stopping.json())["problems"]
        await session.runtime.store.engine.dispose()
        metrics = await client.get("/metrics")
        assert metrics.status == 200 and "miniship_leader 0.0" in await metrics.text()


async def test_metrics_count_commands_and_stored_releases(session: Session) -> None:
    await session.run("upload demo 1.4.0 notes for the metrics")
    await session.run("frobnicate demo")
    ops = Ops(session.runtime.service, leading=lambda: True)
    async with TestClient(TestServer(ops.web_app())) as client:
        text = await (await client.get("/metrics")).text()
    assert 'miniship_commands_total{command="unknown",outcome="error"}' in text
    assert 'miniship_releases{platform="alipay",state="uploaded"}' in text
    uploads = [
        line
        for line in text.splitlines()
        if line.startswith("miniship_platform_calls_total")
        and 'operation="alipay.open.mini.version.upload"' in line
    ]
    assert uploads and all('platform="alipay"' in line for line in uploads), text
