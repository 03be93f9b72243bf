"""The shared adapter suite: every platform in the registry passes it unchanged.

Each test runs an adapter against its own emulator over real HTTP on loopback.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator

import pytest
from pydantic import BaseModel, SecretStr

import platforms
from platforms.base import Exchange, ReviewState, recording
from platforms.errors import (
    AlreadyInReview,
    ConfigError,
    InvalidState,
    PlatformUnavailable,
)
from tests.helpers import World, open_world


@pytest.fixture(params=platforms.names())
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    async with open_world(request.param) as w:
        yield w


async def test_release_happy_path(world: World) -> None:
    a, app = world.adapter, world.app
    up = await a.upload(app, "1.0.0", "first release")
    assert up.version == "1.0.0"
    sub = await a.submit(app, "1.0.0", "first release")
    assert sub.ref
    status = await a.review_status(app, "1.0.0", sub.ref)
    assert status.state is ReviewState.IN_REVIEW
    world.decide_reviews()
    status = await a.review_status(app, "1.0.0", sub.ref)
    assert status.state is ReviewState.APPROVED
    assert status.decided_at is not None and status.decided_at.tzinfo is not None
    await a.publish(app, "1.0.0", sub.ref)
    assert (await a.review_status(app, "1.0.0", sub.ref)).state is ReviewState.RELEASED
    assert (await a.overview(app)).live_version == "1.0.0"


async def test_rejection_carries_reason(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "try #reject")
    sub = await a.submit(app, "1.0.0", "try #reject")
    world.decide_reviews()
    status = await a.review_status(app, "1.0.0", sub.ref)
    assert status.state is ReviewState.REJECTED
    assert status.reason


async def test_withdraw(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    sub = await a.submit(app, "1.0.0", "notes")
    await a.withdraw(app, "1.0.0", sub.ref)
    assert (await a.review_status(app, "1.0.0", sub.ref)).state is ReviewState.WITHDRAWN


async def test_second_review_is_refused(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    await a.submit(app, "1.0.0", "notes")
    await a.upload(app, "1.0.1", "notes")
    with pytest.raises(AlreadyInReview) as err:
        await a.submit(app, "1.0.1", "notes")
    assert err.value.code and err.value.platform == world.name


async def test_publish_before_approval_is_refused(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    sub = await a.submit(app, "1.0.0", "notes")
    with pytest.raises(InvalidState):
        await a.publish(app, "1.0.0", sub.ref)


async def test_token_expiry_mid_flow_is_invisible(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    world.emulator.inject("*", "expired_token")  # every token issued so far dies
    sub = await a.submit(app, "1.0.0", "notes")
    assert (await a.review_status(app, "1.0.0", sub.ref)).state is ReviewState.IN_REVIEW


async def test_busy_status_query_is_retried(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    sub = await a.submit(app, "1.0.0", "notes")
    world.emulator.inject(world.emulator.OPERATIONS["status"], "busy")
    assert (await a.review_status(app, "1.0.0", sub.ref)).state is ReviewState.IN_REVIEW


async def test_busy_submit_is_reported_not_repeated(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    world.emulator.inject(world.emulator.OPERATIONS["submit"], "busy")
    with pytest.raises(PlatformUnavailable) as err:
        await a.submit(app, "1.0.0", "notes")
    assert err.value.explanation
    # nothing was submitted: a real submit now works
    sub = await a.submit(app, "1.0.0", "notes")
    assert (await a.review_status(app, "1.0.0", sub.ref)).state is ReviewState.IN_REVIEW


async def test_http_503_is_unavailable(world: World) -> None:
    a, app = world.adapter, world.app
    world.emulator.inject("*", "unavailable", times=10)
    with pytest.raises(PlatformUnavailable):
        await a.upload(app, "1.0.0", "notes")


async def test_lost_publish_answer_is_checked_not_retried(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    sub = await a.submit(app, "1.0.0", "notes")
    world.decide_reviews()
    # the publish happens on the platform, but its answer never arrives
    world.emulator.inject(world.emulator.OPERATIONS["publish"], "timeout")
    await a.publish(app, "1.0.0", sub.ref)
    assert (await a.overview(app)).live_version == "1.0.0"


async def test_unknown_app_is_a_config_error(world: World) -> None:
    with pytest.raises(ConfigError):
        await world.adapter.upload("nope", "1.0.0", "notes")


def secret_values(world: World) -> set[str]:
    """Every secret the adapter holds: the SecretStr values of its settings and app configs,
    and every credential and token the emulator issued (which the adapter may have
    obtained at run time)."""

    def in_model(model: BaseModel) -> set[str]:
        found: set[str] = set()
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                found.add(value.get_secret_value())
        return found

    values = in_model(world.adapter.settings)
    for cfg in world.adapter.apps.values():
        values |= in_model(cfg)
    return values | world.emulator.issued_secrets()


def assert_no_secret_values(world: World, log: list[Exchange]) -> None:
    text = json.dumps([dataclasses.asdict(x) for x in log], ensure_ascii=False)
    secrets = secret_values(world)
    assert len(secrets) >= 3
    for secret in secrets:
        escaped = json.dumps(secret, ensure_ascii=False)[1:-1]  # as it would stand in JSON
        assert secret not in text and escaped not in text, f"a secret leaked into {text}"


async def test_exchanges_are_recorded_without_secrets(world: World) -> None:
    a, app = world.adapter, world.app
    a.apps[app] = a.apps[app].model_copy(update={"review_notes": "Reviewers need no login."})
    with recording() as log:
        await a.upload(app, "1.0.0", "notes")
        world.emulator.inject("*", "expired_token")  # tokens are renewed on the way
        sub = await a.submit(app, "1.0.0", "notes")
        world.decide_reviews()
        await a.review_status(app, "1.0.0", sub.ref)
        await a.publish(app, "1.0.0", sub.ref)
        await a.overview(app)
    assert log and all(x.platform == world.name for x in log)
    assert_no_secret_values(world, log)


async def test_refused_calls_are_recorded_without_secrets(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    await a.submit(app, "1.0.0", "notes")
    await a.upload(app, "1.0.1", "notes")
    with recording() as log:
        world.emulator.inject("*", "expired_token")
        with pytest.raises(AlreadyInReview):
            await a.submit(app, "1.0.1", "notes")
        with pytest.raises(InvalidState):
            await a.publish(app, "1.0.0", "not-the-ref")
    assert log
    assert_no_secret_values(world, log)


async def test_single_trial_version(world: World) -> None:
    """Whether an older upload can still be submitted is what ``single_trial_version`` says."""
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    await a.upload(app, "1.0.1", "notes")
    if type(a).single_trial_version:
        with pytest.raises(InvalidState):
            await a.submit(app, "1.0.0", "notes")
    else:
        sub = await a.submit(app, "1.0.0", "notes")
        assert (await a.review_status(app, "1.0.0", sub.ref)).state is ReviewState.IN_REVIEW
