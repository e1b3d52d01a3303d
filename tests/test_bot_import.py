"""Imports from Slack, driven as a person drives them: a file dropped into the DM with
journey (the fake Slack sends `file_shared`), the dry run shown, *Import* clicked, and
the result; refusals, limits, hostile names, Cancel, double clicks, the App Home modal.

Signed requests go through the real ASGI app; the file is served by the fake Slack only
to the bot token's bearer (tests/fakes/slack_api.py). The counts a Slack import gives are
compared with `journey import` of the same file into a database of its own.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import io
import itertools
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from fakes import slack_api as fakes_slack_api
from fakes.signing import block_actions, event_callback, view_submission
from fakes.slack_api import DEFAULT_BOT_TOKEN, FakeSlack
from slack_driver import SECRET, SignedBot, bot_client
from slack_render import all_findings, visible_texts
from sqlalchemy import Engine, func
from sqlmodel import select

from bot.app import build_app
from bot.blocks.imports import A_CANCEL, A_FILE, A_IMPORT, A_OPEN, B_FILE, CALLBACK_ID
from bot.commands.service import ReportService
from bot.config import BotSettings
from bot.deps import Deps
from bot.files.download import FileRefused, SlackFile, download
from bot.files.pending import PENDING
from journey.db import make_engine, session_scope, upgrade
from journey.imports import import_csv
from journey.imports.summary import dry_run_summary
from journey.models import Customer, JourneyEvent

FIXTURES = Path(__file__).parent / "data" / "imports"
ADMIN, MEMBER, GUEST = "U0ADMIN", "U0MEMBER", "U0GUEST"
SCOPES = [*fakes_slack_api.DEFAULT_BOT_SCOPES]


def dm(user: str) -> str:
    return "D" + user.removeprefix("U")


@dataclass
class Bot(SignedBot):
    async def drop(self, user: str, name: str, data: bytes) -> str:
        """`user` drops a file into their DM with journey; returns the file id."""
        file = self.fake.user_upload(user, name, data, channel=dm(user))
        body, ctype = event_callback(self.fake.file_shared_event(file), self.team)
        response = await self.post(body, ctype)
        assert response.status_code == 200
        return file.id

    async def message(self, user: str, until: str, timeout: float = 20) -> fakes_slack_api.Message:
        """The bot's latest message in `user`'s DM once its text contains `until`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # The DM as it reads, without replies in threads (a file of skipped rows).
            posts = [p for p in self.fake.posted(dm(user)) if p.thread_ts is None]
            if posts and until in posts[-1].text:
                # What the person saw then (the fake edits its record in place).
                return replace(posts[-1], blocks=copy.deepcopy(posts[-1].blocks))
            await asyncio.sleep(0.02)
        raise AssertionError(
            f"no message with {until!r} in {dm(user)}: {self.fake.posted(dm(user))}"
        )

    async def click(
        self, action: str, message: fakes_slack_api.Message, user: str, name: str
    ) -> httpx.Response:
        value = button_value(message, action)
        body, ctype = block_actions(
            action,
            value,
            team_id=self.team,
            user_id=user,
            channel_id=dm(user),
            response_url=self.fake.response_url(name, channel=dm(user)),
            message={"ts": message.ts, "blocks": message.blocks},
        )
        return await self.post(body, ctype)


def button_value(message: fakes_slack_api.Message, action: str) -> str:
    for block in message.blocks or []:
        for element in block.get("elements", []):
            if element.get("action_id") == action:
                return str(element["value"])
    raise AssertionError(f"no {action} button in {message.blocks}")


def buttons(message: fakes_slack_api.Message) -> list[str]:
    return [
        e.get("action_id")
        for b in message.blocks or []
        for e in b.get("elements", [])
        if e.get("type") == "button"
    ]


def counts(engine: Engine, workspace: str) -> tuple[int, int]:
    with session_scope(engine) as session:
        customers = session.exec(
            select(func.count()).select_from(Customer).where(Customer.workspace_id == workspace)
        ).one()
        events = session.exec(
            select(func.count())
            .select_from(JourneyEvent)
            .where(JourneyEvent.workspace_id == workspace)
        ).one()
    return int(customers), int(events)


@pytest.fixture
async def bot(tmp_path) -> AsyncIterator[Bot]:
    engine = make_engine(f"sqlite:///{tmp_path / 'slack-import.db'}")
    upgrade(engine)
    with FakeSlack(bot_scopes=SCOPES) as fake:
        fake.add_user(ADMIN, is_admin=True)
        fake.add_user(MEMBER)
        fake.add_user(GUEST, is_restricted=True)
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url
        )
        deps = Deps(
            service=ReportService(engine),
            settings=settings,
            working_after=10,
            extra={"import_progress_interval": 0.05},
        )
        app = build_app(settings, engine, deps=deps)
        async with bot_client(app) as http:
            yield Bot(fake, engine, http, fake.team_id)
    PENDING.close()
    engine.dispose()


def cli_import(tmp_path: Path, path: Path) -> tuple[tuple[int, int], object]:
    """`journey import FILE` (and its dry run) of the same file, in a database of its own."""
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    upgrade(engine)
    with session_scope(engine) as session:
        dry = import_csv(session, "cli", path, dry_run=True, label=path.name)
    with session_scope(engine) as session:
        import_csv(session, "cli", path, commit=session.commit)
    found = counts(engine, "cli")
    engine.dispose()
    return found, dry_run_summary(dry)


async def test_a_shopify_export_dropped_in_the_dm_imports_what_the_cli_imports(bot, tmp_path):
    path = FIXTURES / "shopify_orders_export.csv"
    (cli_counts, cli_dry) = cli_import(tmp_path, path)
    await bot.drop(ADMIN, path.name, path.read_bytes())
    shown = await bot.message(ADMIN, "Import it?")
    assert buttons(shown) == [A_IMPORT, A_CANCEL]
    texts = "\n".join(visible_texts({"blocks": shown.blocks}))
    assert "Shopify" in texts
    for label, fact in cli_dry.facts:  # the CLI's dry run, fact by fact
        assert f"*{label}:* {fact}" in texts
    assert counts(bot.engine, bot.team) == (0, 0)  # the dry run wrote nothing

    await bot.click(A_IMPORT, shown, ADMIN, "import-1")
    done = await bot.message(ADMIN, "orders from")
    assert not buttons(done) and "Imported" in json.dumps(done.blocks)
    assert counts(bot.engine, bot.team) == cli_counts
    # One message all along: checking, dry run, progress, result.
    assert len(bot.fake.posted(dm(ADMIN))) == 1 and done.updates >= 3
    assert not list(PENDING.folder().iterdir())  # the copy is gone
    assert all_findings(bot.fake) == []


async def test_members_and_guests_get_one_sentence_and_nothing_is_downloaded(bot):
    for user, words in ((MEMBER, "Importing files is for"), (GUEST, "guest")):
        await bot.drop(user, "orders.csv", (FIXTURES / "shopify_orders_export.csv").read_bytes())
        said = await bot.message(user, words)
        assert not buttons(said) and len(said.blocks) == 1
    assert not bot.fake.calls_to("files.info")
    assert not bot.fake.calls_to(fakes_slack_api.FILE_DOWNLOAD)


async def test_a_member_of_the_export_group_may_import(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'group.db'}")
    upgrade(engine)
    with FakeSlack(bot_scopes=SCOPES) as fake:
        fake.add_user(MEMBER)
        fake.add_usergroup("S0EXPORT", [MEMBER])
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN,
            signing_secret=SECRET,
            api_url=fake.api_url,
            export_usergroups=frozenset({"S0EXPORT"}),
        )
        app = build_app(settings, engine, deps=Deps(ReportService(engine), settings))
        async with bot_client(app) as http:
            driver = Bot(fake, engine, http, fake.team_id)
            path = FIXTURES / "mailchimp_subscribed_members.csv"
            await driver.drop(MEMBER, path.name, path.read_bytes())
            shown = await driver.message(MEMBER, "Import it?")
            assert buttons(shown) == [A_IMPORT, A_CANCEL]
    PENDING.close()
    engine.dispose()


async def test_a_file_over_the_limit_is_refused_before_it_is_downloaded(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'big.db'}")
    upgrade(engine)
    with FakeSlack(bot_scopes=SCOPES) as fake:
        fake.add_user(ADMIN, is_admin=True)
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN,
            signing_secret=SECRET,
            api_url=fake.api_url,
            import_max_mb=0.001,  # 1,000 bytes
        )
        app = build_app(settings, engine, deps=Deps(ReportService(engine), settings))
        async with bot_client(app) as http:
            driver = Bot(fake, engine, http, fake.team_id)
            await driver.drop(ADMIN, "big.csv", b"order_id,email,ordered_at,amount\n" * 100)
            said = await driver.message(ADMIN, "JOURNEY_IMPORT_MAX_MB")
            assert "big.csv is 0.0 MB" in said.text or "over the 0.0 MB" in said.text
            assert not fake.calls_to(fakes_slack_api.FILE_DOWNLOAD)
    engine.dispose()


async def test_without_files_read_the_bot_says_so_and_no_bearer_gets_the_file(tmp_path, caplog):
    """The download without a bearer gets Slack's sign-in page, which is never taken for
    the file; the file's URL is in no message and no log line."""
    caplog.set_level(logging.DEBUG)
    with FakeSlack(bot_scopes=SCOPES) as fake:
        data = b"order_id,email,ordered_at,amount\n1,a@example.com,2026-01-02,10.00\n"
        file = fake.user_upload(ADMIN, "orders.csv", data, channel=dm(ADMIN))
        info = SlackFile.from_api(fake.web_client().files_info(file=file.id)["file"])
        for token in ("", "xoxb-not-a-token"):
            with pytest.raises(FileRefused, match="sign-in page"):
                download(
                    info, token, tmp_path / f"x{token}.csv", max_bytes=10**6, api_url=fake.api_url
                )
            assert not (tmp_path / f"x{token}.csv").exists()
        # A token may only travel to Slack's own file host.
        forged = SlackFile(
            info.id, info.name, info.size, info.user, "csv", url="https://evil.example/f"
        )
        with pytest.raises(FileRefused, match="not its file server"):
            download(
                forged, DEFAULT_BOT_TOKEN, tmp_path / "y.csv", max_bytes=10**6, api_url=fake.api_url
            )
        assert [c.token for c in fake.calls_to(fakes_slack_api.FILE_DOWNLOAD)] == [
            None,
            "xoxb-not-a-token",
        ]
        sha = download(
            info, DEFAULT_BOT_TOKEN, tmp_path / "z.csv", max_bytes=10**6, api_url=fake.api_url
        )
        assert (tmp_path / "z.csv").read_bytes() == data and len(sha) == 64
        assert oct((tmp_path / "z.csv").stat().st_mode & 0o777) == "0o600"
        with pytest.raises(FileRefused, match="more than"):
            download(
                info, DEFAULT_BOT_TOKEN, tmp_path / "w.csv", max_bytes=10, api_url=fake.api_url
            )
        # journey's own lines (httpx and slack_sdk stay at WARNING and INFO in production:
        # journey/logs.py) name the file by id only.
        ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("journey"))
        assert file.id in ours and "files-pri" not in ours and "127.0.0.1" not in ours

    engine = make_engine(f"sqlite:///{tmp_path / 'noscope.db'}")
    upgrade(engine)
    no_files = [s for s in SCOPES if s != "files:read"]
    with FakeSlack(bot_scopes=no_files) as fake:
        fake.add_user(ADMIN, is_admin=True)
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url
        )
        app = build_app(settings, engine, deps=Deps(ReportService(engine), settings))
        async with bot_client(app) as http:
            driver = Bot(fake, engine, http, fake.team_id)
            await driver.drop(ADMIN, "orders.csv", b"a,b\n1,2\n")
            said = await driver.message(ADMIN, "files:read")
            assert "reinstall" in said.text and not buttons(said)
    engine.dispose()


async def test_a_hostile_file_name_pings_nobody(bot):
    name = "<!channel> <https://evil.example|Verify> & co.csv"
    await bot.drop(ADMIN, name, (FIXTURES / "stripe_unified_payments.csv").read_bytes())
    shown = await bot.message(ADMIN, "Import it?")
    assert "&lt;!channel&gt;" in shown.text
    assert any(name in t for t in visible_texts({"blocks": shown.blocks}))
    await bot.click(A_IMPORT, shown, ADMIN, "hostile")
    await bot.message(ADMIN, "revenue")
    assert all_findings(bot.fake) == []


async def test_cells_starting_with_equals_are_names_not_formulas(bot):
    data = (
        b"id,email,name\n"
        b'c1,eve@example.com,"=HYPERLINK(""https://evil.example"",""click"")"\n'
        b"c2,bob@example.com,=1+2\n"
    )
    await bot.drop(ADMIN, "customers.csv", data)
    shown = await bot.message(ADMIN, "Import it?")
    await bot.click(A_IMPORT, shown, ADMIN, "formula")
    await bot.message(ADMIN, "2 new")
    with session_scope(bot.engine) as session:
        names = sorted(c.name for c in session.exec(select(Customer)).all())
    assert names == ["=1+2", '=HYPERLINK("https://evil.example","click")']
    assert all_findings(bot.fake) == []


async def test_cancel_deletes_the_copy_and_a_later_import_click_says_so(bot):
    await bot.drop(ADMIN, "orders.csv", (FIXTURES / "shopify_orders_export.csv").read_bytes())
    shown = await bot.message(ADMIN, "Import it?")
    copies = list(PENDING.folder().iterdir())
    assert len(copies) == 1 and oct(copies[0].stat().st_mode & 0o777) == "0o600"
    await bot.click(A_CANCEL, shown, ADMIN, "cancel")
    cancelled = await bot.message(ADMIN, "Cancelled")
    assert not buttons(cancelled) and not copies[0].exists()
    await bot.click(A_IMPORT, shown, ADMIN, "late")
    (late,) = await bot.responses("late")
    assert "You cancelled this import" in late.text
    assert counts(bot.engine, bot.team) == (0, 0)


async def test_a_double_click_imports_once(bot):
    await bot.drop(ADMIN, "orders.csv", (FIXTURES / "shopify_orders_export.csv").read_bytes())
    shown = await bot.message(ADMIN, "Import it?")
    await asyncio.gather(
        bot.click(A_IMPORT, shown, ADMIN, "first"), bot.click(A_IMPORT, shown, ADMIN, "second")
    )
    await bot.message(ADMIN, "orders from")
    answers = bot.fake.responses.get("first", []) + bot.fake.responses.get("second", [])
    assert len(answers) == 1
    assert "being imported now" in answers[0].text or "already imported" in answers[0].text
    # The import ran once: one "Imported" result, and a click now says it was done.
    await bot.click(A_IMPORT, shown, ADMIN, "third")
    (third,) = await bot.responses("third")
    assert "was already imported" in third.text


async def test_an_expired_check_gets_a_clear_answer(bot):
    await bot.drop(ADMIN, "orders.csv", (FIXTURES / "shopify_orders_export.csv").read_bytes())
    shown = await bot.message(ADMIN, "Import it?")
    entry = PENDING.get(json.loads(button_value(shown, A_IMPORT))["i"])
    assert entry is not None
    entry.created -= 31 * 60  # the check is 31 minutes old
    await bot.click(A_IMPORT, shown, ADMIN, "expired")
    (expired,) = await bot.responses("expired")
    assert "more than 30 minutes old" in expired.text and not entry.path.exists()
    assert counts(bot.engine, bot.team) == (0, 0)


async def test_a_click_reaching_a_process_without_the_copy_fetches_the_same_file_again(
    bot, tmp_path
):
    """Another replica checked the file, or journey restarted: the click is still good
    for 30 minutes, with the very bytes that were checked."""
    path = FIXTURES / "shopify_orders_export.csv"
    cli_counts, _ = cli_import(tmp_path, path)
    file_id = await bot.drop(ADMIN, path.name, path.read_bytes())
    shown = await bot.message(ADMIN, "Import it?")
    PENDING.close()  # the copy and the entry are gone here
    await bot.click(A_IMPORT, shown, ADMIN, "elsewhere")
    done = await bot.message(ADMIN, "orders from")
    assert "Imported" in json.dumps(done.blocks) and counts(bot.engine, bot.team) == cli_counts
    assert len(bot.fake.calls_to(fakes_slack_api.FILE_DOWNLOAD)) == 2
    # A second click now finds the import done, here.
    await bot.click(A_IMPORT, shown, ADMIN, "again")
    (again,) = await bot.responses("again")
    assert "was already imported" in again.text

    # Changed bytes under the same id, a deleted file, an old check: a sentence each.
    value = json.loads(button_value(shown, A_IMPORT))
    cases = [
        ({**value, "i": "other-1", "s": "0" * 32}, "no longer the file journey checked"),
        ({**value, "i": "other-2", "t": value["t"] - 31 * 60}, "more than 30 minutes old"),
    ]
    for forged, words in cases:
        body, ctype = block_actions(
            A_IMPORT,
            json.dumps(forged),
            team_id=bot.team,
            user_id=ADMIN,
            channel_id=dm(ADMIN),
            response_url=bot.fake.response_url(forged["i"], channel=dm(ADMIN)),
            message={"ts": shown.ts},
        )
        await bot.post(body, ctype)
        (said,) = await bot.responses(forged["i"])
        assert words in said.text
    bot.fake.delete_file(file_id)
    PENDING.close()
    await bot.click(A_IMPORT, shown, ADMIN, "deleted")
    (deleted,) = await bot.responses("deleted")
    assert "deleted from Slack" in deleted.text


async def test_a_workspace_holding_the_demo_is_refused_as_the_cli_refuses(bot):
    from journey.demo import DEMO_SOURCE
    from journey.workspaces import ensure_source, ensure_workspace

    with session_scope(bot.engine) as session:  # what `journey demo` leaves: its source
        ensure_workspace(session, bot.team)
        ensure_source(session, bot.team, "demo", DEMO_SOURCE)
    await bot.drop(ADMIN, "orders.csv", (FIXTURES / "shopify_orders_export.csv").read_bytes())
    said = await bot.message(ADMIN, "demo store")
    assert f"journey demo remove --workspace {bot.team}" in said.text and not buttons(said)
    assert not bot.fake.calls_to(fakes_slack_api.FILE_DOWNLOAD)


async def test_a_file_sent_while_the_report_pool_is_full_is_refused_in_words(bot):
    """Its first look at the database waits in the report pool like a report: past the
    pool's bounds the sender reads "busy ... not checked" at once (bot/work/pool.py)."""
    from test_workload import Filled

    from bot.work.pool import PoolLimits, ReportPool, use_pool

    full = ReportPool(PoolLimits(threads=1, max_queue=2, max_queue_per_workspace=2, max_wait=60))
    old = use_pool(full)
    try:
        async with Filled(full, bot.team, 2):
            path = FIXTURES / "shopify_orders_export.csv"
            await bot.drop(ADMIN, path.name, path.read_bytes())
            said = await bot.message(ADMIN, "busy")
            assert f"{path.name} was not checked" in said.text and "try again" in said.text
            assert not buttons(said)
    finally:
        use_pool(old)
    assert not bot.fake.calls_to(fakes_slack_api.FILE_DOWNLOAD)
    assert full.shed == 1


async def test_files_in_channels_and_the_bots_own_uploads_are_not_imports(bot):
    fake = bot.fake
    fake.add_channel("C0SHOP")
    shared = fake.user_upload(ADMIN, "orders.csv", b"a\n1\n", channel="C0SHOP")
    own = fake.user_upload(fake.bot_user_id, "churn.csv", b"a\n1\n", channel=dm(ADMIN))
    for file in (shared, own):
        body, ctype = event_callback(fake.file_shared_event(file), bot.team)
        assert (await bot.post(body, ctype)).status_code == 200
    await asyncio.sleep(0.3)
    assert not fake.calls_to("files.info") and not fake.posted()


async def test_the_home_tabs_import_button_opens_a_file_picker_whose_file_is_checked(bot):
    body, ctype = block_actions(
        A_OPEN,
        "home",
        team_id=bot.team,
        user_id=ADMIN,
        channel_id=None,
        response_url=None,
        trigger_id=bot.fake.issue_trigger(),
    )
    assert (await bot.post(body, ctype)).status_code == 200
    deadline = time.monotonic() + 10
    while not bot.fake.calls_to("views.update") and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    (update,) = bot.fake.calls_to("views.update")
    assert update.ok, update.response
    view = update.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["blocks"][0]["element"]["type"] == "file_input"

    path = FIXTURES / "square_transactions.csv"
    file = bot.fake.user_upload(ADMIN, path.name, path.read_bytes(), via_file_input=True)
    values = {B_FILE: {A_FILE: bot.fake.file_input_value(file)}}
    body, ctype = view_submission(CALLBACK_ID, values, team_id=bot.team, user_id=ADMIN)
    assert (await bot.post(body, ctype)).status_code == 200
    shown = await bot.message(ADMIN, "Import it?")
    assert "Square" in json.dumps(shown.blocks)

    # A member clicking the same button sees why not, in the modal.
    body, ctype = block_actions(
        A_OPEN,
        "home",
        team_id=bot.team,
        user_id=MEMBER,
        channel_id=None,
        response_url=None,
        trigger_id=bot.fake.issue_trigger(),
    )
    await bot.post(body, ctype)
    deadline = time.monotonic() + 10
    while len(bot.fake.calls_to("views.update")) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert "Importing files is for" in json.dumps(bot.fake.calls_to("views.update")[1].params)


async def test_progress_edits_one_message_at_most_once_an_interval(tmp_path):
    """A larger file: the message shows the lines read while the import runs, edited no
    more often than the interval (chat.update is Tier 3)."""
    rows = [
        f"{i},c{i % 700}@example.com,2026-0{1 + i % 9}-1{i % 10},{10 + i % 50}.00"
        for i in range(6000)
    ]
    data = ("order_id,email,ordered_at,amount\n" + "\n".join(rows) + "\n").encode()
    engine = make_engine(f"sqlite:///{tmp_path / 'progress.db'}")
    upgrade(engine)
    interval = 0.2
    with FakeSlack(bot_scopes=SCOPES) as fake:
        fake.add_user(ADMIN, is_admin=True)
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url
        )
        deps = Deps(ReportService(engine), settings, extra={"import_progress_interval": interval})
        app = build_app(settings, engine, deps=deps)
        async with bot_client(app) as http:
            driver = Bot(fake, engine, http, fake.team_id)
            await driver.drop(ADMIN, "orders.csv", data)
            shown = await driver.message(ADMIN, "Import it?", timeout=60)
            await driver.click(A_IMPORT, shown, ADMIN, "progress")
            done = await driver.message(ADMIN, "6000 new", timeout=120)
    PENDING.close()
    engine.dispose()
    assert len(fake.posted(dm(ADMIN))) == 1
    progress = [
        c
        for c in fake.calls_to("chat.update")
        if str(c.params.get("text", "")).startswith("Importing")
    ]
    assert len(progress) >= 2, [c.params.get("text") for c in progress]
    assert any("lines read (" in str(c.params["text"]) for c in progress)
    # The first edit says the import started; the later ones come an interval apart.
    gaps = [b.time - a.time for a, b in itertools.pairwise(progress[1:])]
    assert all(gap >= interval * 0.8 for gap in gaps), gaps
    assert "6000 new" in done.text


async def test_files_dropped_together_are_checked_in_turn(bot):
    shopify = (FIXTURES / "shopify_customers_export.csv").read_bytes()
    stripe = (FIXTURES / "stripe_unified_payments.csv").read_bytes()
    await asyncio.gather(
        bot.drop(ADMIN, "customers.csv", shopify), bot.drop(ADMIN, "payments.csv", stripe)
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        posts = bot.fake.posted(dm(ADMIN))
        if len(posts) == 2 and all("Import it?" in p.text for p in posts):
            break
        await asyncio.sleep(0.05)
    assert sorted(p.text.split(":")[0] for p in bot.fake.posted(dm(ADMIN))) == [
        "customers.csv",
        "payments.csv",
    ]


def test_copies_nobody_imports_are_deleted_after_30_minutes(tmp_path):
    from bot.files.pending import PendingImports

    now = [1_000_000.0]
    pending = PendingImports(clock=lambda: now[0])
    path = pending.new_path()
    path.write_bytes(b"a,b\n1,2\n")
    entry = pending.add("T1", "U1", "D1", "F1", "orders.csv", path, 8)
    now[0] += 29 * 60
    pending.sweep()
    assert path.exists() and entry.state == "ready"
    now[0] += 2 * 60
    pending.sweep()
    assert not path.exists() and entry.state == "expired"
    assert pending.claim(entry.id, "U1") is None
    folder = pending.folder()
    pending.close()
    assert not folder.exists()


async def test_a_listener_that_raises_tells_the_user_one_sentence_and_logs_one_line(
    bot, monkeypatch, caplog
):
    """An action listener that raises after its ack: the person gets the one-sentence
    error with a reference at the response URL; the log gets one line with the same
    reference and no traceback, and Bolt does not complain about the error handler."""
    caplog.set_level(logging.DEBUG)
    await bot.drop(ADMIN, "orders.csv", (FIXTURES / "shopify_orders_export.csv").read_bytes())
    shown = await bot.message(ADMIN, "Import it?")

    def boom(entry_id: str, user: str) -> None:
        raise RuntimeError("secret-ish detail that must not reach Slack")

    monkeypatch.setattr(PENDING, "claim", boom)
    response = await bot.click(A_IMPORT, shown, ADMIN, "boom")
    assert response.status_code == 200
    (said,) = await bot.responses("boom")
    assert said.text.startswith("Something went wrong on our side (reference `")
    ref = said.text.split("`")[1]
    assert "secret-ish" not in json.dumps(said.payload)
    await asyncio.sleep(0.2)
    failed = [r for r in caplog.records if "listener failed" in r.getMessage()]
    assert len(failed) == 1 and f"ref {ref}" in failed[0].getMessage()
    assert "import_file_go" in failed[0].getMessage() and "RuntimeError" in failed[0].getMessage()
    assert failed[0].exc_info is None and "secret-ish" not in failed[0].getMessage()
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert "response must be provided" not in everything
    assert "Task exception was never retrieved" not in everything
    assert counts(bot.engine, bot.team) == (0, 0)


BAD_ROWS = (
    b"order_id,email,ordered_at,amount\n"
    b"1,ann@example.com,2026-01-02,10.00\n"
    b"2,bob@example.com,not a date,5.00\n"
    b"3,<!channel>@example.com,2026-01-03,-4.00\n"
    b"4,cy@example.com,2026-01-04,12.00\n"
    b"5,dee@example.com,2026-01-05,7.50\n"
)


def cli_skip_bad(tmp_path: Path, data: bytes) -> tuple[tuple[int, int], list[tuple[int, str]]]:
    """`journey import --skip-bad FILE` of the same bytes, in a database of its own."""
    path = tmp_path / "orders.csv"
    path.write_bytes(data)
    engine = make_engine(f"sqlite:///{tmp_path / 'cli-skip.db'}")
    upgrade(engine)
    with session_scope(engine) as session:
        result = import_csv(
            session, "cli", path, all_or_nothing=False, commit=session.commit, label=path.name
        )
        bad = [(e.line, e.reason) for e in result.errors]
    found = counts(engine, "cli")
    engine.dispose()
    return found, bad


async def test_a_file_with_bad_rows_offers_its_good_rows_and_sends_the_skipped_ones(bot, tmp_path):
    cli_counts, cli_bad = cli_skip_bad(tmp_path, BAD_ROWS)
    assert [line for line, _ in cli_bad] == [3, 4]
    await bot.drop(ADMIN, "orders.csv", BAD_ROWS)
    shown = await bot.message(ADMIN, "Import the 3 good rows?")
    assert buttons(shown) == [A_IMPORT, A_CANCEL]
    texts = "\n".join(visible_texts({"blocks": shown.blocks}))
    assert "2 of 5 rows are bad" in texts
    for line, reason in cli_bad:  # the CLI's reasons, line by line, as the person reads them
        assert f"line {line}: {reason}" in texts
    labels = [
        e["text"]["text"]
        for b in shown.blocks or []
        for e in b.get("elements", [])
        if e.get("type") == "button"
    ]
    assert "Import the 3 good rows" in labels
    assert counts(bot.engine, bot.team) == (0, 0)

    await bot.click(A_IMPORT, shown, ADMIN, "good-rows")
    done = await bot.message(ADMIN, "bad rows skipped")
    said = "\n".join(visible_texts({"blocks": done.blocks}))
    assert "3 new, 0 changed, 0 unchanged, 2 bad rows skipped." in said
    assert "The bad rows' lines and reasons are in orders-skipped-rows.csv, in this " in said
    assert counts(bot.engine, bot.team) == cli_counts
    (upload,) = [f for f in bot.fake.files.values() if f.filename.endswith("-skipped-rows.csv")]
    assert upload.completed and upload.channels == [dm(ADMIN)] and upload.thread_ts == done.ts
    rows = list(csv.reader(io.StringIO(upload.data.decode())))
    assert rows == [["line", "reason"], *([str(line), reason] for line, reason in cli_bad)]
    assert all_findings(bot.fake) == []


async def test_without_files_write_the_skipped_rows_are_listed_in_the_message(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'nowrite.db'}")
    upgrade(engine)
    rows = [b"order_id,email,ordered_at,amount", b"1,ann@example.com,2026-01-02,10.00"]
    rows += [f"{i},c{i}@example.com,someday,1.00".encode() for i in range(2, 16)]
    with FakeSlack(bot_scopes=[s for s in SCOPES if s != "files:write"]) as fake:
        fake.add_user(ADMIN, is_admin=True)
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url
        )
        app = build_app(settings, engine, deps=Deps(ReportService(engine), settings))
        async with bot_client(app) as http:
            driver = Bot(fake, engine, http, fake.team_id)
            await driver.drop(ADMIN, "orders.csv", b"\n".join(rows) + b"\n")
            shown = await driver.message(ADMIN, "Import the 1 good row?")
            assert "14 of 15 rows are bad" in json.dumps(shown.blocks)
            assert "… and 9 more." in json.dumps(shown.blocks, ensure_ascii=False)
            await driver.click(A_IMPORT, shown, ADMIN, "nowrite")
            done = await driver.message(ADMIN, "bad rows skipped")
            said = "\n".join(visible_texts({"blocks": done.blocks}))
            assert "14 bad rows skipped. The bad rows, not imported:\nline 3: " in said
            assert "line 12: " in said and "line 13: " not in said and "… and 4 more." in said
            assert counts(engine, fake.team_id)[1] == 1
    PENDING.close()
    engine.dispose()


async def test_a_file_another_replica_is_importing_is_not_imported_twice(bot, tmp_path):
    """Two Import clicks on one checked file that reach two replicas: the database claim
    (workspace, file id, checked bytes) lets one import; the other click says so."""
    from journey.imports.claims import CLAIM

    path = FIXTURES / "shopify_orders_export.csv"
    cli_counts, _ = cli_import(tmp_path, path)
    await bot.drop(ADMIN, path.name, path.read_bytes())
    shown = await bot.message(ADMIN, "Import it?")
    value = json.loads(button_value(shown, A_IMPORT))
    # The other replica's click won the claim a moment ago and is importing.
    with bot.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO import_claim VALUES (?, ?, ?, 'importing', 'other-host:7', ?)",
            (bot.team, value["f"], value["s"], int(time.time()) + CLAIM),
        )
    await bot.click(A_IMPORT, shown, ADMIN, "second-replica")
    (said,) = await bot.responses("second-replica")
    assert "is already being imported (by another journey server" in said.text
    assert counts(bot.engine, bot.team) == (0, 0)
    assert not bot.fake.calls_to("chat.update")[-1].params["text"].startswith("Importing")

    # That replica died mid-import: its claim lapses, and the next click imports.
    with bot.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE import_claim SET expires_at = 0")
    await bot.click(A_IMPORT, shown, ADMIN, "after-lapse")
    await bot.message(ADMIN, "orders from")
    assert counts(bot.engine, bot.team) == cli_counts
    with bot.engine.connect() as conn:
        (state,) = conn.exec_driver_sql("SELECT state FROM import_claim").one()
    assert state == "imported"

    # A replica that never saw the check (or restarted) is told it was imported.
    PENDING.close()
    await bot.click(A_IMPORT, shown, ADMIN, "restarted")
    (late,) = await bot.responses("restarted")
    assert "was already imported" in late.text
    assert len(bot.fake.calls_to(fakes_slack_api.FILE_DOWNLOAD)) == 1  # not fetched again


async def answer_question(
    bot: Bot, shown: fakes_slack_api.Message, values: dict[str, dict[str, dict]], name: str
) -> httpx.Response:
    """Click the dry run's question button, then submit its form with `values`."""
    from bot.blocks.imports import A_OPTION, CALLBACK_OPTIONS

    opened_before = len(bot.fake.calls_to("views.open"))
    body, ctype = block_actions(
        A_OPTION,
        button_value(shown, A_OPTION),
        team_id=bot.team,
        user_id=ADMIN,
        channel_id=dm(ADMIN),
        response_url=bot.fake.response_url(name, channel=dm(ADMIN)),
        message={"ts": shown.ts, "blocks": shown.blocks},
        trigger_id=bot.fake.issue_trigger(),
    )
    assert (await bot.post(body, ctype)).status_code == 200
    deadline = time.monotonic() + 10
    while len(bot.fake.calls_to("views.open")) == opened_before and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    opened = bot.fake.calls_to("views.open")[-1]
    assert opened.ok, opened.response
    view = opened.params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    body, ctype = view_submission(
        CALLBACK_OPTIONS,
        values,
        team_id=bot.team,
        user_id=ADMIN,
        private_metadata=view["private_metadata"],
        blocks=view["blocks"],
    )
    return await bot.post(body, ctype)


def picked(value: str) -> dict:
    return {"type": "static_select", "selected_option": {"value": value}}


def event_days(engine: Engine, workspace: str) -> list[str]:
    with session_scope(engine) as session:
        events = session.exec(
            select(JourneyEvent).where(JourneyEvent.workspace_id == workspace)
        ).all()
        return sorted(f"{e.occurred_at:%Y-%m-%d}" for e in events)


async def test_dates_no_day_decides_are_asked_for_and_the_file_checked_again(bot):
    from bot.blocks.imports import A_DAY_FIRST, B_DAY_FIRST

    data = (
        b"order_id,email,ordered_at,amount\n"
        b"1,ann@example.com,03/04/2026 10:30,10.00\n"
        b"2,bob@example.com,05/06/2026,12.00\n"
    )
    await bot.drop(ADMIN, "orders.csv", data)
    asked = await bot.message(ADMIN, "could be day/month or month/day")
    assert buttons(asked) == ["import_file_option"]
    assert "Choose the date style" in json.dumps(asked.blocks)
    response = await answer_question(bot, asked, {B_DAY_FIRST: {A_DAY_FIRST: picked("d")}}, "q1")
    assert response.status_code == 200 and not response.content.strip(b"{}")
    shown = await bot.message(ADMIN, "Import it?")
    facts = "\n".join(visible_texts({"blocks": shown.blocks}))
    assert "*rows:* 2" in facts, facts  # the generic layout's dry run counts rows only
    await bot.click(A_IMPORT, shown, ADMIN, "dates")
    await bot.message(ADMIN, "2 new")
    assert event_days(bot.engine, bot.team) == ["2026-04-03", "2026-06-05"]


async def test_another_currency_asks_for_the_rate_and_refuses_one_that_is_no_number(bot):
    from bot.blocks.imports import A_RATE, B_RATE

    data = (
        b"order_id,email,ordered_at,amount\n"
        b"1,ann@example.com,2026-01-02,12.50 EUR\n"
        b"2,bob@example.com,2026-01-03,7.50 EUR\n"
    )
    await bot.drop(ADMIN, "orders.csv", data)
    asked = await bot.message(ADMIN, "amounts are in EUR")
    typed = {B_RATE: {A_RATE: {"type": "plain_text_input", "value": "lots"}}}
    refused = await answer_question(bot, asked, typed, "q2")
    assert refused.json()["response_action"] == "errors" and B_RATE in refused.json()["errors"]
    typed = {B_RATE: {A_RATE: {"type": "plain_text_input", "value": "2"}}}
    await answer_question(bot, asked, typed, "q3")
    shown = await bot.message(ADMIN, "Import it?")
    facts = "\n".join(visible_texts({"blocks": shown.blocks}))
    assert "*rows:* 2" in facts, facts
    await bot.click(A_IMPORT, shown, ADMIN, "rate")
    await bot.message(ADMIN, "2 new")
    with session_scope(bot.engine) as session:
        cents = sorted(e.amount_cents for e in session.exec(select(JourneyEvent)).all())
    assert cents == [1500, 2500]


async def test_an_unplaced_column_is_asked_for_and_the_answer_remembered_for_the_layout(bot):
    from bot.blocks.imports import A_MAP, B_MAP

    data = (
        b"order_id,email,ordered_at,amount,Shipped date\n"
        b"1,ann@example.com,2026-01-02,10.00,2026-01-04\n"
    )
    await bot.drop(ADMIN, "orders.csv", data)
    asked = await bot.message(ADMIN, "Shipped date")
    assert "Say what the columns are" in json.dumps(asked.blocks)
    await answer_question(bot, asked, {f"{B_MAP}0": {A_MAP: picked("-")}}, "q4")
    shown = await bot.message(ADMIN, "Import it?")
    await bot.click(A_IMPORT, shown, ADMIN, "mapped")
    await bot.message(ADMIN, "1 new")
    # The next export of the same layout needs no answer, as after `journey import --map`.
    await bot.drop(ADMIN, "orders-2.csv", data.replace(b"1,ann", b"2,ann"))
    again = await bot.message(ADMIN, "orders-2.csv: ")
    assert "Import it?" in again.text, again.text


async def test_a_click_on_the_good_rows_reaching_another_replica_skips_the_same_rows(bot, tmp_path):
    """The button carries how the file was checked (skip the bad rows): a process that
    never saw the check imports the good rows, as the one that checked it would."""
    cli_counts, _ = cli_skip_bad(tmp_path, BAD_ROWS)
    await bot.drop(ADMIN, "orders.csv", BAD_ROWS)
    shown = await bot.message(ADMIN, "Import the 3 good rows?")
    assert json.loads(button_value(shown, A_IMPORT))["o"] == {"b": 1}
    PENDING.close()
    await bot.click(A_IMPORT, shown, ADMIN, "good-elsewhere")
    done = await bot.message(ADMIN, "bad rows skipped")
    assert "Imported" in json.dumps(done.blocks)
    assert counts(bot.engine, bot.team) == cli_counts


async def test_a_member_clicking_a_question_gets_one_sentence_and_no_form(bot):
    from bot.blocks.imports import A_OPTION

    data = b"order_id,email,ordered_at,amount\n1,ann@example.com,03/04/2026,10.00\n"
    await bot.drop(ADMIN, "orders.csv", data)
    asked = await bot.message(ADMIN, "could be day/month or month/day")
    body, ctype = block_actions(
        A_OPTION,
        button_value(asked, A_OPTION),
        team_id=bot.team,
        user_id=MEMBER,
        channel_id=dm(ADMIN),
        response_url=bot.fake.response_url("member-q", channel=dm(ADMIN)),
        trigger_id=bot.fake.issue_trigger(),
    )
    await bot.post(body, ctype)
    (said,) = await bot.responses("member-q")
    assert "Importing files is for" in said.text
    assert not bot.fake.calls_to("views.open")


async def test_a_file_of_journeys_own_layout_shows_its_counts_before_the_import(bot, tmp_path):
    """The README's orders file: the Slack dry run counts its customers, buyers, orders,
    dates and revenue (it once said `customers: 0; buyers: 0` for journey's own layout)."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    content = readme.split("```csv\n", 1)[1].split("```", 1)[0]
    rows = list(csv.DictReader(io.StringIO(content)))
    per_customer = Counter(r["email"].lower() for r in rows)
    repeat = sum(1 for n in per_customer.values() if n > 1)
    days = sorted(r["ordered_at"] for r in rows)
    revenue = sum(int(r["amount"].replace(".", "")) for r in rows)
    await bot.drop(ADMIN, "orders.csv", content.encode())
    shown = await bot.message(ADMIN, "Import it?")
    texts = "\n".join(visible_texts({"blocks": shown.blocks}))
    assert "an orders file (journey layout)" in texts
    assert f"*events:* {len(rows)} order" in texts
    assert f"*dates:* {days[0]} to {days[-1]} (UTC)" in texts
    assert (
        f"*customers:* {len(per_customer)}; buyers: {len(per_customer)}, repeat buyers: {repeat}"
        in texts
    )
    assert f"*revenue (after refunds):* {revenue // 100:,}.{revenue % 100:02d}" in texts
    assert counts(bot.engine, bot.team) == (0, 0)
