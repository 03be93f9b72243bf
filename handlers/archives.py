"""Builds a CI job hands over for an app owned directly (``POST …/releases/{version}/
archive``): a zip, checked and unpacked into a folder of its own under
MINISHIP_ARCHIVE_DIR, named by a random id that the ``upload`` command names
(``upload shop wechat 1.2.0 code <id>``), and removed once that upload is done.

Unpacking refuses, before writing anything, what is not a plain tree of files: a name
that is absolute, climbs out (``..``), holds a backslash or a NUL, a symbolic link, an
encrypted member, more than :data:`MAX_FILES` members or more than ``max_unpacked`` bytes
once unpacked (as declared; zipfile never inflates a member past its declared size, so
a zip bomb stops there). Each file is written under the folder, checked again after
resolving. An archive whose members all sit in one top folder (``dist/…``) is that
folder's tree.
"""

from __future__ import annotations

import io
import re
import secrets
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

__all__ = ["ARCHIVE_ID", "MAX_FILES", "ArchiveError", "Archives"]

ARCHIVE_ID = re.compile(r"[0-9a-f]{32}", re.ASCII)
MAX_FILES = 10_000
MAX_UNPACKED = 256 * 1024 * 1024
CHUNK = 1024 * 1024


class ArchiveError(ValueError):
    """The archive cannot be used; the message says why."""


class Archives:
    """The unpacked builds under ``root`` (one folder per id)."""

    def __init__(self, root: Path, max_unpacked: int = MAX_UNPACKED) -> None:
        self.root = root
        self.max_unpacked = max_unpacked

    def unpack(self, data: bytes) -> str:
        """Unpack the zip ``data`` into a new folder; its id.

        Raises:
            ArchiveError: not a zip, or not one miniship unpacks (see the module).
        """
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            raise ArchiveError(f"not a zip archive ({exc})") from None
        with archive:
            members = _checked(archive.infolist(), self.max_unpacked)
            ident = secrets.token_hex(16)
            folder = self.root / ident
            folder.mkdir(parents=True, mode=0o700)
            try:
                _write(archive, members, folder)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                shutil.rmtree(folder, ignore_errors=True)
                raise ArchiveError(f"the archive could not be unpacked ({exc})") from None
        return ident

    def path(self, ident: str) -> Path | None:
        """The project folder of archive ``ident`` (None: no such archive here)."""
        if not ARCHIVE_ID.fullmatch(ident):
            return None
        folder = self.root / ident
        if not folder.is_dir():
            return None
        inside = [p for p in folder.iterdir() if not p.name.startswith("__MACOSX")]
        if len(inside) == 1 and inside[0].is_dir():  # zipped as dist/…
            return inside[0]
        return folder

    def remove(self, ident: str) -> None:
        if ARCHIVE_ID.fullmatch(ident):
            shutil.rmtree(self.root / ident, ignore_errors=True)


def _checked(members: list[zipfile.ZipInfo], max_unpacked: int) -> list[zipfile.ZipInfo]:
    if not members:
        raise ArchiveError("the archive is empty")
    if len(members) > MAX_FILES:
        raise ArchiveError(f"the archive has {len(members)} members; at most {MAX_FILES}")
    total = 0
    for info in members:
        name = info.filename
        parts = PurePosixPath(name).parts
        shown = name[:80]
        if (
            not name
            or "\\" in name
            or "\x00" in name
            or name.startswith("/")
            or re.match(r"^[A-Za-z]:", name)
            or ".." in parts
        ):
            raise ArchiveError(f"{shown!r} is not a name inside the archive's own folder")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ArchiveError(f"{shown!r} is a symbolic link; only files and folders are taken")
        if info.flag_bits & 0x1:
            raise ArchiveError(f"{shown!r} is encrypted")
        total += info.file_size
        if total > max_unpacked:
            raise ArchiveError(f"unpacked, the archive is over {max_unpacked // 2**20} MiB")
    return members


def _write(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], folder: Path) -> None:
    top = folder.resolve()
    for info in members:
        target = (folder / info.filename).resolve()
        if not target.is_relative_to(top):  # after resolving, still inside
            raise ArchiveError(f"{info.filename[:80]!r} points outside the archive's folder")
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as source, target.open("xb") as sink:
            while chunk := source.read(CHUNK):
                sink.write(chunk)
