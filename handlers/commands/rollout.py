"""``rollout <app> <version> [platform] [plan <steps>|<name>] [every <span>] [on-regression
revert|pause]`` starts a staged rollout; ``rollout <app> [platform] status | pause | resume |
advance | abort`` looks at it or steers it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from handlers.commands._kit import Command, Context, Question, Reply
from handlers.commands._words import AppArgs, Scope, Words, clip
from handlers.rollouts.plan import PlanError, read_every, read_steps
from storage import RolloutState

CONTROLS = ("status", "pause", "resume", "advance", "abort")
_OPTIONS = ("plan", "every", "on-regression")
_NAMED = re.compile(r"[a-z][a-z0-9_-]{0,31}")  # a [rollouts.<name>] plan
_STEP = re.compile(r"p\d+|online|full|all")  # … unless it reads as a step


@dataclass(frozen=True, kw_only=True)
class RolloutArgs(AppArgs):
    version: str | None = None  # starting; None: a control of the rollout under way
    control: str = ""  # status, pause, resume, advance, abort ("" when starting)
    steps: tuple[int, ...] | None = None
    named: str | None = None  # a [rollouts.<name>] plan
    every: timedelta | None = None
    on_regression: str | None = None

    def scope(self) -> Scope:
        return Scope(self.app, self.version, self.platform)

    def acts_now(self) -> bool:
        """Starting, resuming or advancing puts the new version before more users (a
        freeze stops it); pausing, aborting and looking do not."""
        return self.control in ("", "resume", "advance")

    def second_person(self) -> bool:
        return self.control in ("", "advance")


def read(words: Words) -> RolloutArgs:
    app = words.app()
    chosen = words.platform()
    control = words.take_if(*CONTROLS)
    if control is not None:
        chosen += tuple(p for p in words.platform() if p not in chosen)
        return RolloutArgs(app=app, platforms=chosen, control=control)
    version = words.version("which version, or status / pause / resume / advance / abort?")
    chosen += tuple(p for p in words.platform() if p not in chosen)
    steps: tuple[int, ...] | None = None
    named: str | None = None
    every: timedelta | None = None
    on_regression: str | None = None
    seen: set[str] = set()
    while words.more():
        option = words.take_if(*_OPTIONS)
        if option is None:
            words.fail(f"unexpected `{clip(words.take())}`; options: plan, every, on-regression")
        if option in seen:
            words.fail(f"`{option}` is given twice")
        seen.add(option)
        if not words.more():
            words.fail(f"`{option}` needs a value")
        value = words.take()
        try:
            if (
                option == "plan"
                and _NAMED.fullmatch(value.lower())
                and not _STEP.fullmatch(value.lower())
            ):
                named = value.lower()  # a named plan of miniship.toml
            elif option == "plan":
                steps = read_steps(value)
            elif option == "every":
                every = read_every(value)
            elif value.lower() in ("revert", "pause"):
                on_regression = value.lower()
            else:
                words.fail("on-regression is `revert` (take the staged release back) or `pause`")
        except PlanError as exc:
            words.fail(str(exc))
    return RolloutArgs(
        app=app,
        platforms=chosen,
        version=version,
        steps=steps,
        named=named,
        every=every,
        on_regression=on_regression,
    )


def _platform(context: Context, args: RolloutArgs) -> str | None:
    """The platform the line means: named, the app's only one, or (controls) any."""
    if args.platforms:
        return args.platforms[0]
    app = context.service.app(args.app)
    names = context.service.platforms_for(app, [])
    if len(names) == 1 or args.control:
        return names[0] if len(names) == 1 else None
    return None


async def run(context: Context, args: RolloutArgs) -> Reply:
    app = context.service.app(args.app)
    engine = context.rollouts
    platform = _platform(context, args)
    if args.control == "status":
        return Reply(await engine.status(app.key, platform))
    refusal = await context.require(app, "publish", "rollout", args.version, platform)
    if refusal is not None:
        return refusal
    if args.control:
        # the engine decides whether the override is needed, on the state it acts on
        override = args.control in ("advance", "resume") and await context.may(app, "override")
        rollout, text = await engine.control(
            context.actor, app.key, platform, args.control, override=override
        )
        return Reply(text, about=(app.key, rollout.version), outcome="ok")
    if platform is None:
        return Reply(
            f"{app.key} is on several platforms; name one: `rollout {app.key} {args.version} "
            "wechat …` (each platform rolls out on its own)",
            error=True,
        )
    assert args.version is not None
    plan = engine.plan(
        app,
        platform,
        steps=args.steps,
        every=args.every,
        name=args.named,
        on_regression=args.on_regression,
    )
    started = await engine.start(
        context.actor, app.key, args.version, platform, plan, context.channel
    )
    reply = Reply.of(started.result, started.text)
    return (
        reply
        if started.rollout is not None
        else Reply(reply.text, error=True, about=reply.about, outcome=reply.outcome or "failed")
    )


async def confirm(context: Context, args: RolloutArgs) -> Question | None:
    if args.control in ("status", "pause"):
        return None
    app = context.service.app(args.app)
    platform = _platform(context, args)
    if args.control == "resume":
        rollout = await context.rollouts.find(app.key, platform)
        if rollout.state != RolloutState.HALTED:
            return None
        return Question(
            f"Resume rollout #{rollout.id} of {app.key} {rollout.version}, halted on a "
            "regression? Its share goes out again if it was taken back (the override role "
            "is needed)."
        )
    if args.control == "abort":
        return Question(
            f"Abort the staged rollout of {app.key}? Users who have the new version go back "
            "to the live one."
        )
    if args.control == "advance":
        return Question(
            f"Advance the rollout of {app.key} to its next step now, without the health gate?"
        )
    if platform is None:
        return None  # refused when run
    plan = context.rollouts.plan(
        app,
        platform,
        steps=args.steps,
        every=args.every,
        name=args.named,
        on_regression=args.on_regression,
    )
    return Question(
        f"Roll {app.key} {args.version} out on {context.where(app.key, (platform,))}: "
        f"{plan.steps[0]}% now, then {plan.words()}, each step after the health gate?"
    )


COMMAND = Command(
    name="rollout",
    usage="rollout <app> <version> [platform] [plan <steps>|<name>] [every <span>] "
    "[on-regression revert|pause] | rollout <app> [platform] status|pause|resume|advance|abort",
    summary="release in steps, each after a health gate on the platform's own error data",
    details="The first step goes out at once; each later step waits `every` (default 1d), "
    "then WeChat's JS error reports of the new version are compared with the one it "
    "replaces: healthy → the next step; a regression → the staged release is taken back "
    "(or paused) with the evidence in the thread; no figures → the step is held and tried "
    "again. Alipay reports no such figures: its steps (p10, p30, p50, online) go on time "
    "only. Advancing past a halt needs the override role. Named plans: [rollouts.<name>] "
    "in miniship.toml.",
    examples=(
        "rollout demo 1.4.0 wechat plan 5,20,50,100 every 1d",
        "rollout demo 1.4.0 alipay plan p10,p30,p50,online every 12h",
        "rollout demo 1.4.0 wechat plan careful",
        "rollout demo status",
        "rollout demo advance",
    ),
    role="view",
    rank=115,
    guarded=True,
    two_person=True,
    read=read,
    run=run,
    confirm=confirm,
)
