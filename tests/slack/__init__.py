"""Test kit for the Slack side: a loopback fake of the Web API and signed request builders."""
