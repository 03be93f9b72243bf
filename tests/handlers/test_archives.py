"""Builds handed over through the CI API (handlers/archives.py): unpacked safely or
refused, uploaded as ``upload … code <id>``, and removed afterwards."""

from __future__ import annotations

import io
import json
import stat
import warnings
import zipfile
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.api import CiApi
from handlers.archives import ArchiveError, Archives
from handlers.commands import parse
from tests.handlers.harness import Session
from tests.handlers.test_api import api_served, bearer, make_token
from tests.platforms.test_wechat import APPID, direct, fake_ci  # noqa: F401  (a fixture)


def zipped(*members: tuple[str, bytes], link: str | None = None) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w") as z:
        warnings.simplefilter("ignore")  # a duplicate name is made on purpose
        for name, data in members:
            z.writestr(name, data)
        if link is not None:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
    return out.getvalue()


def test_a_build_is_unpacked_and_its_project_found(tmp_path: Path) -> None:
    archives = Archives(tmp_path / "a")
    flat = archives.unpack(zipped(("project.config.json", b"{}"), ("pages/index.js", b"x")))
    assert (archives.path(flat) or Path()).joinpath("pages/index.js").read_bytes() == b"x"
    nested = archives.unpack(zipped(("dist/project.config.json", b"{}"), ("dist/app.js", b"")))
    found = archives.path(nested)
    assert found is not None and found.name == "dist"
    assert (found / "project.config.json").is_file()
    archives.remove(flat)
    assert archives.path(flat) is None and archives.path("../../etc") is None


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"not a zip", "not a zip"),
        (zipped(), "empty"),
        (zipped(("../evil.js", b"x")), "not a name inside"),
        (zipped(("a/../../evil.js", b"x")), "not a name inside"),
        (zipped(("/etc/evil", b"x")), "not a name inside"),
        (zipped(("C:/evil", b"x")), "not a name inside"),
        (zipped(("a\\..\\evil", b"x")), "not a name inside"),
        (zipped(("ok.js", b"x"), link="link"), "symbolic link"),
        (zipped(("big.bin", b"\0" * 2048)), "over 0 MiB"),
        (zipped(("same.js", b"1"), ("same.js", b"2")), "could not be unpacked"),
    ],
)
def test_what_is_not_a_plain_tree_of_files_is_refused(
    tmp_path: Path, data: bytes, said: str
) -> None:
    archives = Archives(tmp_path / "a", max_unpacked=1024)
    with pytest.raises(ArchiveError, match=said):
        archives.unpack(data)
    assert not any((tmp_path / "a").glob("*/*"))  # nothing left behind
    assert not (tmp_path / "evil.js").exists() and not (tmp_path.parent / "evil.js").exists()


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_are_unpacked_or_refused(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as where:
        archives = Archives(Path(where) / "a", max_unpacked=4096)
        try:
            ident = archives.unpack(data)
        except ArchiveError:
            return
        assert archives.path(ident) is not None


def test_upload_reads_a_code_archive_only_by_its_id() -> None:
    ident = "0123456789abcdef0123456789abcdef"
    line = parse(f"upload demo wechat 1.2.0 code {ident} built by CI", ["wechat", "alipay"])
    assert (line.args.code, line.args.notes) == (ident, "built by CI")  # type: ignore[attr-defined]
    notes = parse("upload demo 1.2.0 code cleanup in the cart", ["wechat"])
    assert notes.args.code is None  # type: ignore[attr-defined]
    assert notes.args.notes == "code cleanup in the cart"  # type: ignore[attr-defined]


async def test_a_build_through_the_api_reaches_the_platform_and_is_removed(
    session: Session, tmp_path: Path
) -> None:
    commands = session.runtime.commands()
    assert commands.archives is not None
    commands.archives = Archives(tmp_path / "archives")
    token = await make_token(session, "ci --role release")
    build = zipped(("dist/project.config.json", b"{}"), ("dist/app.js", b"App({})"))
    async with (
        api_served(CiApi(commands, max_archive=4096)) as base,
        httpx.AsyncClient(headers=bearer(token)) as http,
    ):
        url = f"{base}/api/v1/apps/demo/releases/1.0.0/archive"
        zip_type = {"Content-Type": "application/zip"}
        # demo is built from templates: the platforms refuse uploaded code
        refused = await http.post(
            url, params={"platforms": "wechat"}, content=build, headers=zip_type
        )
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["code"] == "platform_refused" and "template" in error["message"]
        for content, headers, status in [
            (b"PK not really", zip_type, 422),
            (build, {"Content-Type": "application/json"}, 415),
            (b"", zip_type, 400),
            (b"x" * 4097, zip_type, 413),
        ]:
            answer = await http.post(url, content=content, headers=headers)
            assert answer.status_code == status, answer.text
        bad = await http.post(url, params={"notes": "template 3"}, content=build, headers=zip_type)
        assert bad.status_code == 422
    assert list((tmp_path / "archives").iterdir()) == []  # every build removed again
    events = await session.runtime.store.events(["demo"], actor="token:ci", limit=None)
    assert any(e.action == "upload" and "template" in e.message for e in events)


async def test_a_wechat_app_owned_directly_uploads_the_build_handed_over(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_ci: Path,  # noqa: F811
) -> None:
    build = tmp_path / "ci-build"
    build.mkdir()
    (build / "project.config.json").write_text(json.dumps({"appid": APPID}))
    async with direct(tmp_path, monkeypatch) as adapter:
        result = await adapter.upload("shop", "2.2.0", "from CI", code=build)
        configured = str(adapter.apps["shop"].project_path)
    args = json.loads(fake_ci.read_text())["args"]
    assert args[args.index("--pp") + 1] == str(build) != configured
    assert result.version == "2.2.0"
    (build / "project.config.json").unlink()
    async with direct(tmp_path, monkeypatch) as adapter:
        with pytest.raises(Exception, match=r"no project\.config\.json"):
            await adapter.upload("shop", "2.2.1", "from CI", code=build)
