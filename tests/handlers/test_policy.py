"""The release policy against the use cases: what a card offers from each state is exactly
what the use case accepts from it, on every platform, and the policy's words and readings.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, update

from handlers import cards, policy
from handlers.releases import Actor, Outcome
from platforms.base import ReviewState
from storage import ReleaseState
from storage.models import ReleaseTarget
from storage.states import TRANSITIONS
from tests.handlers.harness import Session

S = ReleaseState
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


async def _force(session: Session, version: str, platform: str, state: ReleaseState) -> None:
    """Put the stored release in ``state`` (as if it had got there), bypassing the machine."""
    store = session.runtime.store
    release = await store.release("demo", version)
    assert release is not None
    async with store.session() as s:
        await s.exec(
            update(ReleaseTarget)
            .where(col(ReleaseTarget.release_id) == release.id)
            .where(col(ReleaseTarget.platform) == platform)
            .values(state=str(state), updated_at=datetime.now(UTC))
        )
        await s.commit()


async def test_the_card_offers_exactly_what_the_use_case_accepts(session: Session) -> None:
    """Every state × every card action × every platform: the button is there exactly when
    the use case goes ahead (calls the platform) instead of refusing."""
    service = session.runtime.service
    actor = Actor("console:tester")
    await session.run("upload demo 1.0.0 notes")
    disagreements = []
    for platform in service.adapters:
        for state in ReleaseState:
            offered = set(cards.next_steps(state, platform))
            for verb in cards.button_verbs():
                await _force(session, "1.0.0", platform, state)
                run = getattr(service, verb)
                result = await run(actor, "demo", [platform], "1.0.0")
                outcomes = [r.outcome for r in result.results]
                accepted = not result.refusal and Outcome.REFUSED not in outcomes
                if accepted != (verb in offered):
                    disagreements.append((platform, str(state), verb, accepted, result))
    assert not disagreements


@pytest.mark.parametrize("state", list(ReleaseState))
def test_every_state_has_words_and_a_moment(state: ReleaseState) -> None:
    assert policy.words(state) and "_" not in policy.words(state)
    word, field = policy.stamp(state)
    assert field in ReleaseTarget.model_fields and word


def test_withdraw_of_an_approved_version_depends_on_the_platform() -> None:
    assert policy.allows("withdraw", S.APPROVED, withdraws_decided=True)
    assert not policy.allows("withdraw", S.APPROVED, withdraws_decided=False)
    assert policy.refusal("withdraw", "1.0", S.APPROVED, withdraws_decided=False) == (
        "1.0 is approved, not in review; nothing to withdraw"
    )
    assert policy.refusal("withdraw", "1.0", S.IN_REVIEW, withdraws_decided=False) == ""


def test_every_action_leads_where_the_state_machine_allows() -> None:
    for action, after in policy.AFTER.items():
        starts = policy.candidates(action)
        assert starts, action
        for state in starts:
            direct = after in TRANSITIONS[state]
            claimed = policy.CLAIM in TRANSITIONS[state] and after in TRANSITIONS[policy.CLAIM]
            assert direct or claimed, (action, state)


@pytest.mark.parametrize(
    ("stored", "review", "wanted", "moves", "outside"),
    [
        (S.IN_REVIEW, ReviewState.APPROVED, S.APPROVED, True, False),
        (S.IN_REVIEW, ReviewState.NOT_SUBMITTED, S.WITHDRAWN, True, True),
        (S.APPROVED, ReviewState.RELEASED, S.RELEASED, True, True),
        (S.APPROVED, ReviewState.APPROVED, S.APPROVED, False, False),
        (S.APPROVED, ReviewState.UNKNOWN, None, False, False),
        (S.PUBLISHING, ReviewState.RELEASED, S.RELEASED, True, False),
        (S.PUBLISHING, ReviewState.APPROVED, S.APPROVED, False, False),  # claim still fresh
    ],
)
def test_reading_a_platform_review(
    stored: ReleaseState,
    review: ReviewState,
    wanted: ReleaseState | None,
    moves: bool,
    outside: bool,
) -> None:
    said = policy.reading(stored, review, claimed_at=NOW, now=NOW + timedelta(seconds=5))
    assert (said.wanted, said.moves, said.outside) == (wanted, moves, outside)


def test_an_abandoned_claim_is_settled_by_the_platform() -> None:
    later = NOW + policy.CLAIM_TIMEOUT
    said = policy.reading(S.PUBLISHING, ReviewState.APPROVED, claimed_at=NOW, now=later)
    assert said.moves and said.interrupted_publish


def test_release_rows_are_never_shown_raw() -> None:
    # views take view models: the card and the console text get no ORM rows
    import inspect

    from handlers import render

    for module in (cards, render):
        source = inspect.getsource(module)
        assert "ReleaseTarget" not in source and "storage.models" not in source, module
