"""The console: the same commands as Slack, typed at a prompt or read from a script.

Interactive (a terminal): a prompt, and review changes printed as the watcher finds them.
A script (``python bot.py console < script.txt``): each line is echoed and run in
order, ``wait <seconds>`` pauses, blank lines and ``#`` comments are skipped, and the
console exits at the end of the script. Nothing typed can crash it: a line that fails
in an unexpected way is reported and the console carries on.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from pathlib import Path
from typing import TextIO

from handlers import render
from handlers.commands import Asked, Commands, Picture, Reply
from handlers.config import ChannelEntry
from handlers.fleet import Progress
from handlers.releases import Actor, Change
from handlers.timed import Notice
from platforms.base import Authorization, TrialCode

__all__ = ["Console"]

log = logging.getLogger(__name__)

MAX_WAIT = 3600.0


class Console:
    def __init__(
        self,
        commands: Commands,
        actor: Actor,
        *,
        stdin: TextIO = sys.stdin,
        stdout: TextIO = sys.stdout,
        interactive: bool | None = None,
        pictures: Path,
    ) -> None:
        self.commands = commands
        self.actor = actor
        self.stdin = stdin
        self.stdout = stdout
        self.interactive = stdin.isatty() if interactive is None else interactive
        self.pictures = pictures
        """Where QR codes are saved (their paths are printed: a terminal shows no image)."""
        self._lines: asyncio.Queue[str] | None = None  # what is typed, once run() reads it
        self._waiting: int | None = None  # the fleet run a line waits for
        self._news = ""  # the last app news (an authorization that added the app)
        self._held: list[tuple[str, str]] | None = None
        """While a typed line runs: the thread posts said meanwhile ((what, as printed)),
        printed after its reply unless the reply says the same (Slack shows both: the
        reply to the person, the post in the release's thread)."""
        commands.service.listeners.append(self.on_change)
        commands.admin.listeners.append(self.on_grant)
        commands.admin.apps.listeners.append(self.on_app_news)
        commands.fleets.listeners.append(self.on_fleet)
        if commands.timed is not None:
            commands.timed.announcers.append(self)

    def say(self, text: str) -> None:
        self.stdout.write(text.rstrip("\n") + "\n")
        self.stdout.flush()

    def _interject(self, text: str) -> None:
        """Print something that happened meanwhile (between the prompts when interactive)."""
        self.say(("\n" if self.interactive else "") + text)
        if self.interactive:
            self.stdout.write("ship> ")
            self.stdout.flush()

    async def on_fleet(self, progress: Progress) -> None:
        if progress.run.state != "running":
            return  # the end is said by the line that waits for it, or by `fleet <id>`
        if progress.run.id == self._waiting:  # the prompt comes back when the run ends
            self.say(render.fleet_bar(progress))
        else:
            self._interject(render.fleet_bar(progress))

    async def relay(self, reply: Reply) -> None:
        """What a CI API call ran (the API answers the caller; this tells the operator)."""
        self._interject(f"[api] {reply.text}")

    async def on_app_news(self, text: str) -> None:
        self._news = text
        self._interject(text)

    async def on_change(self, change: Change) -> None:
        text = render.change(change)
        images = await self.commands.service.evidence(change)
        lines = [self._save(p) for p in Picture.evidence(change, images)]
        self._interject("\n".join([text, *lines]))

    # handlers.timed.Announcer
    async def notice(self, notice: Notice) -> None:
        text = f"[{notice.app.key} {notice.version}] {notice.text}"
        if notice.publish_now is not None:
            where = notice.publish_now[0] + " " if len(notice.publish_now) == 1 else ""
            anyway = f" --override {notice.override}" if notice.override else ""
            text += f"\n  To publish now: publish {notice.app.key} {where}{notice.version}{anyway}"
        if self._held is not None:  # a typed line is running: its reply may say this
            self._held.append((notice.text, text))
            return
        self._interject(text)

    async def digest(self, channel: ChannelEntry, text: str) -> None:
        self._interject(f"[digest{' for ' + channel.id if channel.id else ''}] {text}")

    def _start_reader(self) -> asyncio.Queue[str]:
        """Read input lines on a daemon thread, so Ctrl-C never waits for Enter."""
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str] = asyncio.Queue()

        def read() -> None:
            while True:
                line = self.stdin.readline()
                loop.call_soon_threadsafe(lines.put_nowait, line)
                if not line:
                    return

        threading.Thread(target=read, name="console-input", daemon=True).start()
        return lines

    async def run(self) -> None:
        lines = self._lines = self._start_reader()
        while True:
            if self.interactive:
                self.stdout.write("ship> ")
                self.stdout.flush()
            line = await lines.get()
            if not line:  # end of input
                if self.interactive:
                    self.say("")
                return
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            if not self.interactive:
                self.say(f"> {text}")
            if text.lower() in ("quit", "exit"):
                return
            word, _, rest = text.partition(" ")
            if word.lower() == "wait":
                await self.wait(rest.strip())
                continue
            await self.run_line(text)

    async def wait(self, arg: str) -> None:
        try:
            seconds = float(arg)
        except ValueError:
            self.say("Usage: `wait <seconds>`, e.g. wait 35")
            return
        if not 0 <= seconds <= MAX_WAIT:
            self.say(f"wait takes 0 to {MAX_WAIT:.0f} seconds")
            return
        await asyncio.sleep(seconds)

    async def run_line(self, text: str) -> None:
        self._held = []
        try:
            reply = await self.commands.handle(self.actor, text)
            if reply.asked is not None:
                reply = await self._confirm(reply, reply.asked)
        except Exception as exc:
            log.exception("command failed: %s", text)
            self.say(
                f"Something went wrong running that ({type(exc).__name__}); its outcome is "
                "unknown, so check `status`. Details are in the log."
            )
            self._said_meanwhile("")
            return
        self.say(reply.text)
        self._said_meanwhile(reply.text)
        if reply.fleet is not None:  # a script's next line may need it done: wait for it
            self._waiting = reply.fleet
            try:
                await self.commands.fleets.wait(reply.fleet)
            finally:
                self._waiting = None
            self.say(render.fleet(await self.commands.fleets.progress(reply.fleet)))
        for attachment in reply.files:  # a history export: next to the QR codes' folder
            path = self.pictures.parent / "exports" / attachment.filename
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(attachment.content)
            except OSError as exc:
                self.say(f"  could not save {attachment.title} to {path}: {exc.strerror}")
                continue
            self.say(f"  {attachment.title}: saved to {path.resolve()}")
        for picture in reply.pictures:
            self.say(self._save(picture))

    def _said_meanwhile(self, reply: str) -> None:
        """The thread posts held while a line ran, but what its reply said already (a post
        on the move the reply is about: only the lines the reply did not say)."""
        held, self._held = self._held or [], None
        said = {line.strip() for line in reply.splitlines()}
        for what, printed in held:
            lines = what.strip().splitlines()
            if lines and lines[0].strip() in said:
                printed = "\n".join(line for line in lines[1:] if line.strip() not in said)
            if printed:
                self.say(printed)

    def _save(self, picture: Picture) -> str:
        """Save a picture next to the others (a terminal shows no image); what to say."""
        code = picture.code
        what = "QR code" if isinstance(code, TrialCode) else "screenshot"
        if not code.image:  # the platform gave a link only
            return f"  {picture.title}: {what} at {code.url}"
        path = self.pictures / picture.filename
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(code.image)
        except OSError as exc:
            return f"  could not save the {what} to {path}: {exc.strerror}"
        link = f" (also at {code.url})" if code.url else ""
        return f"  {picture.title}: {what} saved to {path.resolve()}{link}"

    async def _confirm(self, question: Reply, asked: Asked) -> Reply:
        """Ask ``[y/N]`` at the prompt; a script (no prompt) confirms with ``--yes``."""
        if not self.interactive or self._lines is None:
            await self.commands.answer(self.actor, asked.token, False)  # recorded: cancelled
            return Reply(
                f"{question.text}\n  Not run: a script confirms with --yes at the end of the line.",
                error=True,
            )
        self.stdout.write(f"{question.text} [y/N] ")
        self.stdout.flush()
        said = (await self._lines.get()).strip().lower()
        return await self.commands.answer(self.actor, asked.token, said in ("y", "yes"))

    async def on_grant(self, grant: Authorization) -> None:
        granted = ", ".join(grant.permission_names) or "no permission sets"
        who = grant.app or grant.platform_app_id
        news, self._news = self._news, ""
        if grant.app and f"`{grant.app}`" in news:  # "➕ … it is app `x` now": said once
            self._interject(f"  granted: {granted}")
            return
        self._interject(f"[connect] {who} authorized miniship: {granted}")
