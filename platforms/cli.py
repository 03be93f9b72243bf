"""Running the platforms' own command-line tools, for apps owned directly.

A mini program that is not run through a third-party platform uploads its code with the
vendor's CLI: ``miniprogram-ci`` for WeChat, ``minidev`` for Alipay (both from npm;
``make clis`` installs them into ``.tools/``). The adapters build the command lines; this
module finds the executable, hands keys over in files only the process owner can read
(never on the command line, where ``ps`` would show them), runs the tool with a time limit
and turns a failure into a :mod:`platforms.errors` error that quotes the tool's own words.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from platforms.base import scrub_message
from platforms.errors import ConfigError, PlatformError, PlatformUnavailable

__all__ = ["MINIDEV", "MINIPROGRAM_CI", "TOOLS_DIR", "CliFailed", "Tool", "key_file", "run"]

log = logging.getLogger(__name__)

TOOLS_DIR = Path(".tools")
"""Where ``make clis`` installs the npm tools (``.tools/node_modules/.bin``)."""

OUTPUT_LIMIT = 4000  # characters of the tool's output kept in an error


@dataclass(frozen=True)
class Tool:
    command: str  # the executable's name
    package: str  # the npm package it comes from
    env_var: str  # names an executable to use instead (a path)
    platform: str

    def install_hint(self) -> str:
        return (
            f"{self.command} is not installed. Run `make clis` (it runs `npm install "
            f"--prefix .tools {self.package}`; Node.js 18+ and npm needed), install it "
            f"globally with `npm install -g {self.package}`, or point {self.env_var} at "
            "the executable."
        )


MINIPROGRAM_CI = Tool("miniprogram-ci", "miniprogram-ci", "MINISHIP_MINIPROGRAM_CI", "wechat")
MINIDEV = Tool("minidev", "minidev", "MINISHIP_MINIDEV", "alipay")


class CliFailed(PlatformError):
    """The tool ran and reported a failure; ``output`` is what it printed (secrets removed)."""

    kind = "the platform's command-line tool failed"

    def __init__(self, platform: str, explanation: str, output: str) -> None:
        self.output = output
        super().__init__(platform, "", "", explanation)


def locate(tool: Tool) -> str:
    """The executable to run: ``$<env_var>``, then ``.tools/node_modules/.bin``, then PATH."""
    chosen = os.environ.get(tool.env_var)
    if chosen:
        path = Path(chosen).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ConfigError(f"{tool.env_var}={chosen} is not an executable file")
        return str(path)
    local = TOOLS_DIR / "node_modules" / ".bin" / tool.command
    if local.is_file() and os.access(local, os.X_OK):
        return str(local.resolve())
    found = shutil.which(tool.command)
    if found is None:
        raise ConfigError(tool.install_hint())
    return found


@contextlib.contextmanager
def key_file(text: str, suffix: str = ".key") -> Iterator[Path]:
    """``text`` (a private key, an identity file) in a file only this user can read,
    removed when the block ends."""
    fd, name = tempfile.mkstemp(prefix="miniship-", suffix=suffix)
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        yield path
    finally:
        path.unlink(missing_ok=True)


async def run(
    tool: Tool,
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    limit: float = 600.0,
) -> str:
    """Run ``tool`` with ``args``; return what it printed on stdout.

    Raises:
        ConfigError: the tool is not installed (the message says how to install it).
        PlatformUnavailable: it did not finish within ``limit`` seconds (it is stopped).
        CliFailed: it exited with an error; the explanation quotes its last words.
    """
    executable = locate(tool)
    log.info("running %s %s", tool.command, args[0] if args else "")
    try:
        process = await asyncio.create_subprocess_exec(
            executable,
            *args,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise ConfigError(f"cannot run {executable}: {exc.strerror}") from None
    try:
        out, err = await asyncio.wait_for(process.communicate(), limit)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise PlatformUnavailable(
            tool.platform,
            "",
            "",
            f"{tool.command} did not finish within {limit:.0f} s and was stopped; "
            "the upload may or may not have reached the platform. Look at the versions "
            "before uploading again.",
        ) from None
    stdout = out.decode("utf-8", "replace")
    if process.returncode == 0:
        return stdout
    said = scrub_message((err.decode("utf-8", "replace") + "\n" + stdout).strip())
    said = said[-OUTPUT_LIMIT:]
    last = next((line for line in reversed(said.splitlines()) if line.strip()), "")
    raise CliFailed(
        tool.platform,
        f"{tool.command} failed (exit {process.returncode}): {last or 'no output'}",
        said,
    )
