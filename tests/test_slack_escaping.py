"""The one escaping rule (bot/blocks/mrkdwn.py), the builders that apply it, the console
that undoes it, and the test helper that renders payloads as Slack would."""

from __future__ import annotations

import pytest
from slack_render import findings, render_mrkdwn, visible_texts

from bot.blocks.help import error_message, help_message
from bot.blocks.message import Message, button, code, context, header, section
from bot.blocks.mrkdwn import (
    Mrkdwn,
    channel_link,
    clip,
    escape,
    md,
    mention,
    mrkdwn,
    stored_reason,
    turned_off_by,
    unescape,
)
from bot.blocks.terminal import render_terminal

HOSTILE = [
    "<!channel> Mallory",
    "<https://evil.example/login|Verify your account>",
    "<@U0123ABCD>",
    "Tom & Jerry",
    "<!everyone>",
    "<!here>",
    "<!subteam^S0123|@admins>",
    "<#C0GENERAL>",
]


def test_escape_replaces_exactly_the_three_characters_slack_reserves():
    assert escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    # Formatting characters, quotes and emoji are left as typed (see the module's docstring).
    assert escape("*bold* _it_ ~s~ `c` \"q\" 'a' :tada: @here #general") == (
        "*bold* _it_ ~s~ `c` \"q\" 'a' :tada: @here #general"
    )


@pytest.mark.parametrize("name", HOSTILE)
def test_escaped_data_shows_as_typed_and_makes_nothing_live(name):
    safe = mrkdwn(name)
    assert "<" not in safe and ">" not in safe
    assert render_mrkdwn(safe) == name
    assert unescape(safe) == name
    assert findings({"text": safe}) == []


def test_text_typed_with_an_entity_shows_the_entity():
    """`R&amp;D` typed that way is escaped again, so Slack shows `R&amp;D`, as typed."""
    assert mrkdwn("R&amp;D") == "R&amp;amp;D"
    assert render_mrkdwn(mrkdwn("R&amp;D")) == "R&amp;D"


def test_mrkdwn_never_escapes_twice():
    once = mrkdwn("Tom & Jerry")
    assert mrkdwn(once) == "Tom &amp; Jerry"
    assert section(once).to_dict()["text"]["text"] == "Tom &amp; Jerry"
    assert Message(once).payload()["text"] == "Tom &amp; Jerry"


def test_md_escapes_fields_and_keeps_the_template_and_the_bots_own_references():
    text = md(
        "*{who}* was asked by {user} in {channel} ({n:,} orders)",
        who="<!channel> Tom & Jerry",
        user=mention("U0ALICE"),
        channel=channel_link("C0SALES"),
        n=1234,
    )
    assert text == (
        "*&lt;!channel&gt; Tom &amp; Jerry* was asked by <@U0ALICE> in <#C0SALES> (1,234 orders)"
    )
    assert [f.token for f in findings({"text": text}, ["U0ALICE", "C0SALES"])] == []
    assert [f.token for f in findings({"text": text})] == ["<@U0ALICE>", "<#C0SALES>"]


def test_ids_that_are_not_ids_are_escaped_instead_of_linked():
    assert mention("U1|x>") == "U1|x&gt;"
    assert channel_link("!channel") == "!channel"
    assert mention("console") == "<@console>"  # the local console's user


def test_a_mrkdwn_value_in_an_f_string_is_refused_rather_than_escaped_twice():
    link = mention("U0ALICE")
    with pytest.raises(TypeError, match="md"):
        _ = f"hello {link}"
    # Composition that keeps the type: +, join, md.
    assert (link + " & co") == "<@U0ALICE> &amp; co"
    assert ("Tom & " + link) == "Tom &amp; <@U0ALICE>"
    assert Mrkdwn(", ").join(["a<b", link]) == "a&lt;b, <@U0ALICE>"


def test_clip_never_cuts_an_entity_or_a_mention_in_half():
    text = mrkdwn("x" * 8 + "&")  # "xxxxxxxx&amp;"
    for limit in range(9, 13):
        cut = clip(text, limit)
        assert cut.endswith("…") and "&" not in cut and len(cut) <= limit
    cut = clip(md("{} {}", "x" * 5, mention("U0ALICE")), 10)
    assert "<" not in cut


def test_stored_reasons_keep_only_the_bots_own_mention_live():
    assert stored_reason(turned_off_by("U0ALICE")) == "turned off by <@U0ALICE>"
    assert stored_reason("turned off by <@U0ALICE> <!channel>") == (
        "turned off by &lt;@U0ALICE&gt; &lt;!channel&gt;"
    )
    assert stored_reason("<!here> channel_not_found") == "&lt;!here&gt; channel_not_found"


def test_builders_escape_mrkdwn_and_leave_plain_text_as_typed():
    assert section("Tom & Jerry").to_dict()["text"] == {
        "type": "mrkdwn",
        "text": "Tom &amp; Jerry",
        "verbatim": True,
    }
    assert context("<!here>").to_dict()["elements"][0]["text"] == "&lt;!here&gt;"
    assert header("Tom & Jerry").to_dict()["text"]["text"] == "Tom & Jerry"
    assert button("Tom & Jerry", "a", "v").to_dict()["text"]["text"] == "Tom & Jerry"
    table = code(["name       orders", "Tom & Jerry     2"]).to_dict()["text"]["text"]
    assert table == "```\nname       orders\nTom &amp; Jerry     2\n```"
    payload = Message("<!channel> Mallory bought", [header("<!channel> Mallory")]).payload()
    assert payload["text"] == "&lt;!channel&gt; Mallory bought"
    assert findings(payload) == []
    assert visible_texts(payload) == ["<!channel> Mallory bought", "<!channel> Mallory"]


def test_echoed_input_in_errors_and_help_is_escaped():
    for message in (error_message("No source named '<!channel>'"), help_message("<@U0BOSS>?")):
        payload = message.payload()
        assert findings(payload) == [], findings(payload)


def test_the_console_shows_names_as_typed():
    payload = Message(
        md("{} asked {}", "Tom & Jerry <b>", mention("U0ALICE")),
        [header("Tom & Jerry"), section("*<!channel> Mallory* & co"), context("a < b")],
    ).payload()
    out = render_terminal(payload)
    assert out.splitlines()[0] == "Tom & Jerry"
    assert "<!channel> Mallory & co" in out and "a < b" in out
    assert "&amp;" not in out and "&lt;" not in out
    assert render_terminal({"text": payload["text"]}) == "Tom & Jerry <b> asked @U0ALICE"


def test_the_console_neutralises_terminal_control_characters_from_data():
    payload = Message("x", [header("Evil\x1b[2J Corp"), section("Bob\rAlice\x07\x9b")]).payload()
    out = render_terminal(payload)
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out and "\x9b" not in out
    assert "Evil^[[2J Corp" in out and "Bob^MAlice^G?" in out


def test_the_render_helper_finds_what_slack_would_act_on():
    """The helper itself: each kind of problem is reported (so a test using it can fail)."""
    raw = {
        "text": "hi <!channel>",
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "<https://evil.example|Verify>"},
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "Tom &amp;amp; Jerry"}]},
            {"type": "header", "text": {"type": "plain_text", "text": "Tom &amp; Jerry"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "ping @here, p < 0.05"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "by <@U0ALICE>"}},
        ],
    }
    kinds = [(f.kind, f.token) for f in findings(raw, allowed=["U0ALICE"])]
    assert kinds == [
        ("live", "<!channel>"),
        ("live", "<https://evil.example|Verify>"),
        ("double-escaped", "&amp;"),
        ("double-escaped", "&amp;"),
        ("unescaped", "<"),
        ("auto-parsed", "@here"),
    ]
    # `allowed` never covers a broadcast.
    assert findings({"text": "<!here>"}, allowed=["here", "!here"]) != []


def test_only_the_builders_make_mrkdwn_text():
    """The one place: a mrkdwn text object built anywhere else in bot/ would skip the
    escaping (and `verbatim`). Build it with section/context/code/mrkdwn_text instead."""
    from pathlib import Path

    import bot

    root = Path(bot.__file__).parent
    allowed = {root / "blocks" / "message.py"}
    needles = ("MarkdownTextObject", "SectionBlock(", "ContextBlock(", '"mrkdwn"', "'mrkdwn'")
    found = [
        f"{path.relative_to(root.parent)}: {needle}"
        for path in sorted(root.rglob("*.py"))
        if path not in allowed
        for needle in needles
        if needle in path.read_text()
    ]
    assert found == []
