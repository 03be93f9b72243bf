"""Races between people, the watcher and a second miniship process on one database.

A second ReleaseService over its own engine plays the other process: it shares the
database and the platforms, but not the first one's in-process locks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import handlers.policy
from handlers.releases import Actor, Outcome, ReleaseService
from platforms.errors import OutcomeUnknown
from storage import ReleaseState, Store, make_engine
from tests.handlers.harness import REVIEW, settings_for
from tests.helpers import FakeClock, clocked_runtime, release_state

pytestmark = pytest.mark.both_databases  # its SQL matters: both databases

S = ReleaseState
ME = Actor("console:me")


class Both:
    def __init__(self, first: ReleaseService, second: ReleaseService, clock: FakeClock) -> None:
        self.first, self.second, self.clock = first, second, clock

    async def state(self, version: str, platform: str) -> S:
        return await release_state(self.first.store, version, platform)

    async def approved(self, version: str, *names: str) -> None:
        await self.first.upload(ME, "demo", names, version, "notes")
        await self.first.submit(ME, "demo", names, version)
        self.clock.advance(REVIEW + 1)
        await self.first.refresh_watched()
        for p in names:
            assert await self.state(version, p) is S.APPROVED


@pytest.fixture
async def both(tmp_path: Path, database_url: str) -> AsyncIterator[Both]:
    clock = FakeClock()
    async with clocked_runtime(settings_for(tmp_path, database_url), clock) as rt:
        engine = make_engine(database_url)
        other = ReleaseService(
            Store(engine), rt.config, rt.service.adapters, emulated=list(rt.emulators)
        )
        try:
            yield Both(rt.service, other, clock)
        finally:
            await engine.dispose()


def during(
    service: ReleaseService, platform: str, method: str, side: Callable[[], Awaitable[Any]]
) -> None:
    """Run ``side`` while ``platform``'s ``method`` call is in flight (after it answered)."""
    adapter = service.adapters[platform]
    real = getattr(adapter, method)

    async def wrapped(*args: Any) -> Any:
        answer = await real(*args)
        await side()
        return answer

    setattr(adapter, method, wrapped)


async def test_publish_still_reports_success_when_another_process_saw_it_first(
    both: Both,
) -> None:
    await both.approved("1.0.0", "wechat")

    async def other_process_watches() -> None:
        changes = await both.second.refresh_watched()
        assert [(c.platform, c.new) for c in changes] == [("wechat", S.RELEASED)]

    during(both.first, "wechat", "publish", other_process_watches)
    result = await both.first.publish(ME, "demo", ["wechat"], "1.0.0")
    assert [r.outcome for r in result.results] == [Outcome.OK], result
    assert await both.state("1.0.0", "wechat") is S.RELEASED
    _, events = await both.first.history("demo")
    assert [(e.action, e.outcome) for e in events if e.action == "publish"] == [("publish", "ok")]


async def test_withdraw_still_reports_success_when_another_process_saw_it_first(
    both: Both,
) -> None:
    await both.first.upload(ME, "demo", ["wechat"], "1.0.0", "notes")
    await both.first.submit(ME, "demo", ["wechat"], "1.0.0")

    async def other_process_watches() -> None:
        await both.second.refresh_watched()

    during(both.first, "wechat", "withdraw", other_process_watches)
    result = await both.first.withdraw(ME, "demo", ["wechat"], "1.0.0")
    assert [r.outcome for r in result.results] == [Outcome.OK], result
    assert await both.state("1.0.0", "wechat") is S.WITHDRAWN


async def test_a_publish_of_both_claims_both_or_neither(both: Both) -> None:
    await both.approved("1.0.0", "wechat", "alipay")
    release = await both.first.store.release("demo", "1.0.0")
    assert release is not None and release.id is not None
    wechat = await both.first.store.target(release.id, "wechat")
    alipay = await both.first.store.target(release.id, "alipay")
    assert wechat is not None and alipay is not None
    # the other process claims Alipay after this one read it
    await both.second.store.transition(alipay, S.PUBLISHING)
    why = await both.first._claim({"wechat": wechat, "alipay": alipay})
    assert isinstance(why, str) and "somebody else acted first on Alipay" in why
    assert await both.state("1.0.0", "wechat") is S.APPROVED  # its claim was given back


async def test_one_platform_crashing_does_not_hide_the_other(both: Both) -> None:
    async def boom(*_: Any) -> Any:
        raise RuntimeError("a bug")

    both.first.adapters["alipay"].upload = boom  # type: ignore[method-assign,assignment]
    result = await both.first.upload(ME, "demo", [], "1.0.0", "notes")
    outcomes = {r.platform: r.outcome for r in result.results}
    assert outcomes == {"wechat": Outcome.OK, "alipay": Outcome.FAILED}
    assert "check `status`" in result.results[1].message


async def test_an_abandoned_publish_claim_is_settled_by_the_watcher(
    both: Both, monkeypatch: pytest.MonkeyPatch
) -> None:
    await both.approved("1.0.0", "wechat")
    release = await both.first.store.release("demo", "1.0.0")
    assert release is not None and release.id is not None
    target = await both.first.store.target(release.id, "wechat")
    assert target is not None
    await both.first.store.transition(target, S.PUBLISHING)  # …and then the process died
    assert await both.first.refresh_watched() == []  # a fresh claim is left to its owner
    monkeypatch.setattr(handlers.policy, "CLAIM_TIMEOUT", timedelta(0))
    changes = await both.first.refresh_watched()
    assert [(c.old, c.new) for c in changes] == [(S.PUBLISHING, S.APPROVED)]
    result = await both.first.publish(ME, "demo", ["wechat"], "1.0.0")
    assert result.ok


async def test_a_publish_whose_outcome_is_unknown_keeps_its_claim(both: Both) -> None:
    await both.approved("1.0.0", "alipay")
    adapter = both.first.adapters["alipay"]
    real_publish = adapter.publish

    async def lost(app: str, version: str, ref: str) -> str:
        await real_publish(app, version, ref)  # it happened on the platform…
        raise OutcomeUnknown(  # …but the answer was lost and the platform could not be asked
            "alipay", explanation="the answer was lost and Alipay could not be asked"
        )

    adapter.publish = lost  # type: ignore[method-assign]
    result = await both.first.publish(ME, "demo", ["alipay"], "1.0.0")
    (only,) = result.results
    assert only.outcome is Outcome.FAILED and "could not tell whether" in only.message
    assert await both.state("1.0.0", "alipay") is S.PUBLISHING  # the claim is kept
    changes = await both.first.refresh_watched()
    assert [(c.old, c.new, c.outside) for c in changes] == [(S.PUBLISHING, S.RELEASED, False)]
