"""MINISHIP_LOG_FORMAT=json: one object per line, with what the line is about."""

from __future__ import annotations

import io
import json
import logging

from handlers import logs


def test_json_lines_carry_the_command_app_platform_and_release() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    try:
        logs.setup("INFO", "json", stream)
        with logs.about(command="publish", app="demo"):
            with logs.about(platform="wechat", release="1.4.0"):
                logging.getLogger("handlers.somewhere").warning("could not ask %s", "WeChat")
            logging.getLogger("handlers.elsewhere").info("done")
        logging.getLogger("httpx").info("GET https://api.weixin.qq.com/?access_token=secret")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "WARNING" and first["logger"] == "handlers.somewhere"
    assert first["message"] == "could not ask WeChat"
    assert {k: first[k] for k in ("command", "app", "platform", "release")} == {
        "command": "publish",
        "app": "demo",
        "platform": "wechat",
        "release": "1.4.0",
    }
    assert second["message"] == "done" and "platform" not in second  # left the inner block
    assert "secret" not in stream.getvalue()  # the HTTP client's URL logging stays off
