"""Mode selection: the README's one command does the right thing for each .env."""

import pytest
from fakes.slack_api import DEFAULT_BOT_TOKEN, FakeSlack

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


def test_socket_mode_asks_the_configured_api_and_stops_in_words_on_a_refused_token(
    monkeypatch, tmp_path
):
    """run() in Socket Mode talks to SLACK_API_URL with the app-level token; a token Slack
    does not know ends the start with what to do (the full protocol is in
    test_bot_socket_mode.py)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'j.db'}")
    monkeypatch.setenv("SLACK_BOT_TOKEN", DEFAULT_BOT_TOKEN)
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-unknown")
    monkeypatch.setenv("JOURNEY_SCHEDULER_INTERVAL", "0")
    with FakeSlack() as fake:
        monkeypatch.setenv("SLACK_API_URL", fake.api_url)
        with pytest.raises(JourneyError, match=r"Slack refused SLACK_APP_TOKEN \(invalid_auth\)"):
            bot_run.run()
        [call] = [c for c in fake.calls if c.method == "apps.connections.open"]
        assert call.token == "xapp-1-unknown"
