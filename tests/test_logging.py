"""Logging that works under every entry point, and never shows a secret.

Each case runs in a fresh interpreter: logging's set-up is process-wide, and the bug
was in the order of two set-up calls (the CLI's WARNING first, the bot's INFO after).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str, **env: str) -> str:
    import os

    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_the_bot_gets_info_lines_after_the_cli_set_warning():
    err = _run(
        """
        import logging
        from journey import logs
        logs.configure(logging.WARNING)   # journey.cli.main, first
        logging.getLogger("journey.bot").info("not yet")
        logs.configure(logging.INFO)      # bot.run.run, later
        logging.getLogger("journey.bot").info("journey bot serving")
        """
    )
    assert "not yet" not in err
    assert "INFO journey.bot: journey bot serving" in err
    assert err.count("journey bot serving") == 1  # one handler, not one per call


def test_journey_log_level_wins():
    err = _run(
        """
        import logging
        from journey import logs
        logs.configure(logging.INFO)
        logging.getLogger("journey.bot").info("chatty")
        logging.getLogger("journey.bot").warning("kept")
        """,
        JOURNEY_LOG_LEVEL="warning",
    )
    assert "chatty" not in err and "kept" in err


def test_secrets_are_blanked_in_messages_and_tracebacks():
    err = _run(
        """
        import logging
        from journey import logs
        logs.configure(logging.INFO)
        log = logging.getLogger("journey.bot")
        log.info("token %s for %s", "xoxb-1234-5678-abcdefgh", "postgresql://me:hunter2@db/j")
        try:
            raise RuntimeError("Authorization: Bearer abcdefghijklmnop shpat_0123456789abcdef")
        except RuntimeError:
            log.exception("failed")
        """
    )
    for secret in ("xoxb-1234", "hunter2", "abcdefghijklmnop", "shpat_0123"):
        assert secret not in err
    assert "token [redacted] for postgresql://me:[redacted]@db/j" in err
    assert "RuntimeError" in err  # the traceback itself is kept


def test_each_slack_retry_is_one_log_line(caplog):
    """slack_sdk retries a 503 silently; each retry now leaves a line naming the method,
    the status and the attempt (and never the token)."""
    import logging

    from fakes.slack_api import DEFAULT_BOT_TOKEN, FakeSlack
    from slack_sdk import WebClient

    from bot.retries import LoggedServerErrorRetryHandler

    with FakeSlack() as fake:
        fake.add_channel("C0DIGEST", name="digests")
        fake.server_error("chat.postMessage", status=503, times=2)
        client = WebClient(
            token=DEFAULT_BOT_TOKEN,
            base_url=fake.api_url,
            retry_handlers=[LoggedServerErrorRetryHandler(max_retry_count=2)],
        )
        with caplog.at_level(logging.WARNING, logger="journey.bot.slack"):
            client.chat_postMessage(channel="C0DIGEST", text="hi")
    lines = [r.getMessage() for r in caplog.records if r.name == "journey.bot.slack"]
    assert lines == [
        "Slack chat.postMessage failed (HTTP 503): retry 1 of 2",
        "Slack chat.postMessage failed (HTTP 503): retry 2 of 2",
    ]
    assert DEFAULT_BOT_TOKEN not in caplog.text
