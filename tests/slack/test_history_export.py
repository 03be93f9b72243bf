"""A history export in Slack: the CSV goes to the asker's DM with the bot, nowhere else."""

from __future__ import annotations

from pathlib import Path

from tests.slack.fake_slack import dm_channel
from tests.slack.test_release_flow import open_world


async def test_the_export_goes_to_the_askers_dm(tmp_path: Path, database_url: str) -> None:
    async with open_world(tmp_path, database_url) as world:
        await world.command("upload demo 1.0.0 notes")
        await world.slack.wait_for("chat.postMessage", count=2)  # the card, its thread reply
        await world.settled()
        await world.command("history demo export", user="U0DEV")
        await world.settled()
        (asked,) = [
            c
            for c in world.slack.calls("files.getUploadURLExternal")
            if c.params["filename"].endswith(".csv")
        ]
        assert asked.params["filename"].startswith("miniship-history-demo-")
        shared = [c.params["channel_id"] for c in world.slack.calls("files.completeUploadExternal")]
        assert dm_channel("U0DEV") in shared  # the CSV, in the DM; the QR codes elsewhere
        (opened,) = world.slack.calls("conversations.open")
        assert opened.params["users"] == "U0DEV"
        said = [c.params.get("text", "") for c in world.slack.calls("response_url")]
        assert any("demo: 2 events exported to miniship-history-demo-" in t for t in said), said
