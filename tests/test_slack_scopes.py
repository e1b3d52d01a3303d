"""Scopes = calls: the bot asks Slack for exactly the scopes its Web API calls need.

Several places name the scopes (manifest.yml, SLACK_SCOPES' default in bot/config.py,
.env.example and docs/settings.md, the app setup in docs/slack.md) and they must agree. Which scopes are needed follows from the
methods bot/ calls, each looked up in the fake Slack's table of what Slack requires
(tests/fakes/slack_api.py REQUIRED_SCOPES, cited from Slack's method pages). And every
call the whole suite made through the fake is checked at the end of the session: a method
the table does not know, or one needing a scope the manifest lacks, fails here, the way
it would fail in a real workspace with `missing_scope`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from fakes.slack_api import METHODS_CALLED, REQUIRED_SCOPES, manifest, manifest_scopes
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import DEFAULT_SCOPES

ROOT = Path(__file__).resolve().parents[1]
# The Socket Mode connection's token is an app-level token with its own scope, set in the
# app's Basic Information (README, Socket Mode), not a bot scope.
APP_LEVEL = {("apps.connections.open", "connections:write")}
# Tests of the fake itself call methods journey never does, to check the fake.
NOT_THE_BOT = ("test_fake_slack.py",)
# Where a method takes one of several scopes, the one journey's use of it needs:
# conversations.open only ever opens a DM with one person; conversations.history reads
# the public and private channels digests and alerts go to, never a DM (pause notices in
# a DM are checked against the database instead, bot/posting/delivery.py).
CHOSEN = {
    "conversations.open": ("im:write",),
    # conversations.info checks that *Share* never posts into a shared conversation: public
    # and private channels and DMs; in a group DM the bot refuses to share (fail closed).
    "conversations.info": ("channels:read", "groups:read", "im:read"),
    "conversations.history": ("channels:history", "groups:history"),
}
# files_upload_v2 is slack_sdk's name for Slack's two-step upload.
COMPOSITE = {"files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal")}


def _api_method(python_name: str) -> tuple[str, ...]:
    """slack_sdk's method name -> Slack's (chat_postMessage -> chat.postMessage)."""
    return COMPOSITE.get(python_name, (python_name.replace("_", "."),))


def methods_called_in_bot() -> dict[str, set[str]]:
    """Every Slack Web API method bot/ calls on a client, with the files calling it."""
    client_methods = {
        name
        for name in dir(AsyncWebClient)
        if not name.startswith("_")
        and name not in ("api_call", "token", "base_url")
        and "_" in name
    }
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "bot").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in client_methods
            ):
                for method in _api_method(node.func.attr):
                    found.setdefault(method, set()).add(str(path.relative_to(ROOT)))
    return found


def needed_scopes(method: str) -> tuple[str, ...]:
    return CHOSEN.get(method, REQUIRED_SCOPES[method])


def test_manifest_config_env_and_docs_name_the_same_scopes():
    scopes = manifest_scopes()
    assert len(set(scopes)) == len(scopes), "a scope is listed twice in manifest.yml"
    assert set(DEFAULT_SCOPES) == set(scopes)
    env = (ROOT / ".env.example").read_text(encoding="utf-8")
    line = re.search(r"^# SLACK_SCOPES=(.*)$", env, re.M)
    assert line is not None, ".env.example no longer documents SLACK_SCOPES"
    assert set(line.group(1).split(",")) == set(scopes)
    settings = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    row = re.search(r"^\| `SLACK_SCOPES` \| `([^`]*)`", settings, re.M)
    assert row is not None, "docs/settings.md no longer lists SLACK_SCOPES"
    assert set(row.group(1).split(",")) == set(scopes)
    guide = (ROOT / "docs" / "slack.md").read_text(encoding="utf-8")
    create = guide.split("### Create the app", 1)[1].split("\n2. ", 1)[0]
    named = set(re.findall(r"`([a-z.]+:[a-z.:]+|commands)`", create))
    assert named == set(scopes), "docs/slack.md's 'Create the app' names other scopes"


def test_the_manifest_asks_for_exactly_what_bot_code_calls():
    called = methods_called_in_bot()
    unknown = sorted(set(called) - set(REQUIRED_SCOPES))
    assert not unknown, f"bot/ calls methods the fake does not know the scopes of: {unknown}"
    needed = {"commands"}  # the /journey slash command declared in the manifest
    for method in called:
        needed.update(s for s in needed_scopes(method) if (method, s) not in APP_LEVEL)
    scopes = set(manifest_scopes())
    assert needed - scopes == set(), f"manifest.yml lacks {sorted(needed - scopes)}"
    assert scopes - needed == set(), f"manifest.yml asks for unused {sorted(scopes - needed)}"
    assert manifest()["features"]["slash_commands"][0]["command"] == "/journey"


def test_the_manifest_subscribes_to_the_events_the_bot_handles():
    handled: set[str] = set()
    for path in (ROOT / "bot" / "listeners").rglob("*.py"):
        handled.update(re.findall(r"app\.event\(\"([a-z_]+)\"\)", path.read_text("utf-8")))
    events = set(manifest()["settings"]["event_subscriptions"]["bot_events"])
    assert events == handled


def test_the_messages_tab_is_on_so_people_can_answer_the_bot():
    home = manifest()["features"]["app_home"]
    assert home["messages_tab_enabled"] is True
    assert home["messages_tab_read_only_enabled"] is False


def test_every_call_the_suite_made_is_covered(collected_modules):
    """Runs last (tests/conftest.py): every (method, scope) any test drove the bot to call
    through the fake is known and covered by the manifest; when every test file that talks
    to the fake Slack ran, every manifest scope was used by some call."""
    scopes = set(manifest_scopes())
    problems = []
    used = {"commands"}
    for (method, scope), tests in sorted(METHODS_CALLED.items()):
        callers = sorted(t for t in tests if not t.split("::")[0].endswith(NOT_THE_BOT))
        if not callers:
            continue
        if method not in REQUIRED_SCOPES:
            problems.append(f"{method}: unknown to REQUIRED_SCOPES (called by {callers[0]})")
        elif scope and scope not in scopes and (method, scope) not in APP_LEVEL:
            problems.append(f"{method} needs {scope}, not in manifest.yml ({callers[0]})")
        used.add(scope)
    assert not problems, "\n".join(problems)
    if slack_modules() <= collected_modules:
        assert scopes <= used, f"no test exercised {sorted(scopes - used)}"


def slack_modules() -> set[str]:
    """The test files that talk to the fake Slack: when all of them ran, every scope the
    manifest asks for must have been needed by some call."""
    marks = ("fakes.slack_api", "slack_driver", "fake_slack", "FakeSlack")
    return {
        p.name
        for p in (ROOT / "tests").glob("test_*.py")
        if any(mark in p.read_text(encoding="utf-8") for mark in marks)
    }
