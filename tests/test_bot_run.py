"""Mode selection: the README's one command does the right thing for each .env."""

import pytest

from bot import run as bot_run
from bot.config import BotSettings, load_bot_settings
from journey.errors import JourneyError


@pytest.mark.parametrize(
    ("env", "mode"),
    [
        ({}, "console"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}, "http"),
        ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}, "socket"),
        (
            {"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "x", "SLACK_SIGNING_SECRET": "s"},
            "http",
        ),
    ],
)
def test_mode_follows_the_environment(monkeypatch, tmp_path, env, mode):
    monkeypatch.chdir(tmp_path)
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_CLIENT_ID",
        "SLACK_CLIENT_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_bot_settings()
    assert settings.mode == mode
    settings.check()
    assert "xoxb" not in repr(settings) and "xapp" not in repr(settings)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (BotSettings(app_token="xapp-1"), "Socket Mode needs both"),
        (BotSettings(bot_token="xoxb-1"), "SLACK_SIGNING_SECRET"),
        (BotSettings(bot_token="xoxb-1", app_token="xoxb-wrong"), "should start with xapp-"),
        (BotSettings(client_id="1.2", signing_secret="s"), "SLACK_CLIENT_SECRET"),
    ],
)
def test_half_configured_apps_fail_early_in_words(settings, message):
    with pytest.raises(JourneyError, match=message):
        settings.check()


def test_socket_mode_uses_the_configured_api_url(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'j.db'}")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("JOURNEY_SCHEDULER_INTERVAL", "0")
    started = {}

    class FakeHandler:
        def __init__(self, app, app_token, web_client):
            started.update(app=app, token=app_token, base_url=web_client.base_url)

        async def start_async(self):
            started["started"] = True

    monkeypatch.setattr(
        "slack_bolt.adapter.socket_mode.async_handler.AsyncSocketModeHandler", FakeHandler
    )
    bot_run.run()
    assert started["started"] and started["token"] == "xapp-1"
    assert started["base_url"] == "http://127.0.0.1:9/api/"
