"""The local console: the bot's replies in a terminal, on the demo store."""

from bot.console import run_console
from journey.db import make_engine, upgrade


def test_console_builds_the_demo_and_answers_like_the_bot(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
    lines = iter(["/journey churn", "funel", "journey reviews", "", "exit", "never read"])
    said: list[str] = []
    run_console(engine, "local", read=lambda _prompt: next(lines), say=said.append)
    out = "\n".join(said)
    assert "building the demo store" in out
    assert "Funnel ·" in out and "awareness" in out  # the opening funnel
    assert "Churn ·" in out and "At risk now" in out
    assert "Did you mean /journey funnel?" in out
    assert "Whom to ask for a review" in out
    assert "Traceback" not in out


def test_console_ends_cleanly_at_end_of_input(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)

    def eof(_prompt: str) -> str:
        raise EOFError

    said: list[str] = []
    run_console(engine, "local", read=eof, say=said.append)
    assert any("Funnel ·" in s for s in said)
