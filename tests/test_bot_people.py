"""A customer's *Details* in Slack, and the admin's *Unlink* and *Link another record…*,
driven by signed requests through the real app into the fake Slack (tests/fakes/slack_api.py:
its views.open honours the 3-second trigger, views.update needs a view it opened).

Members see the records and why they are one, without buttons; a forged click or
submission from a member changes nothing. Every change is a person_decision row, as the
CLI's, and holds through a re-sync.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fakes.signing import block_actions, view_submission
from fakes.slack_api import DEFAULT_BOT_TOKEN, FakeSlack
from slack_driver import SECRET, SignedBot, bot_client
from sqlalchemy import text

from bot.app import build_app
from bot.blocks.people import (
    A_OTHER,
    A_PERSON_DETAILS,
    A_PERSON_LINK,
    A_PERSON_UNLINK,
    B_OTHER,
    LINK_CALLBACK,
)
from bot.commands.service import ReportService
from bot.config import BotSettings
from bot.deps import Deps
from journey.db import make_engine, session_scope, upgrade
from journey.ingest import CustomerRecord, EventRecord, Ingestor
from journey.workspaces import ensure_source, ensure_workspace

OTHER = "T0OTHERTEAM"


def _load(engine, team: str) -> None:
    """Ann is in the CRM and the shop with one email (one person); Kim is in both with
    two emails (two people); another workspace has its own Ann."""
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        for ws in (team, OTHER):
            ensure_workspace(session, ws)
        crm = Ingestor(session, team, ensure_source(session, team, "csv", "crm").id or 0)
        shop = Ingestor(session, team, ensure_source(session, team, "csv", "shop").id or 0)
        stats = crm.customers(
            [
                CustomerRecord("lead-1", "Ann Lee", "ann@x.com", channel="ads"),
                CustomerRecord("lead-2", "Kim Ito", "kim@work.com", channel="ads"),
            ]
        )
        stats.add(
            shop.customers(
                [
                    CustomerRecord("9001", "Ann Lee", "ann@x.com"),
                    CustomerRecord("9002", "Kim Ito", "kim@home.com"),
                ]
            )
        )
        stats.add(
            shop.events(
                [
                    EventRecord("o1", "9001", "order", now - timedelta(days=6), amount_cents=5000),
                    EventRecord("o2", "9002", "order", now - timedelta(days=7), amount_cents=4000),
                ]
            )
        )
        shop.refresh(stats)
        other = Ingestor(session, OTHER, ensure_source(session, OTHER, "csv", "shop").id or 0)
        other.refresh(other.customers([CustomerRecord("1", "Ann Other", "ann@x.com")]))


def record_id(engine, team: str, source: str, external_id: str) -> int:
    with session_scope(engine) as session:
        return int(
            session.execute(
                text(
                    "SELECT c.id FROM customer c JOIN source s ON s.id = c.source_id "
                    "WHERE c.workspace_id = :ws AND s.name = :s AND c.external_id = :e"
                ),
                {"ws": team, "s": source, "e": external_id},
            ).scalar_one()
        )


def person(engine, team: str, source: str, external_id: str) -> int:
    with session_scope(engine) as session:
        return int(
            session.execute(
                text("SELECT person_id FROM customer WHERE id = :id"),
                {"id": record_id(engine, team, source, external_id)},
            ).scalar_one()
        )


def decisions(engine) -> list[tuple]:
    with session_scope(engine) as session:
        return [
            tuple(r)
            for r in session.execute(
                text(
                    "SELECT workspace_id, customer_id, kind, other_id, decided_by "
                    "FROM person_decision ORDER BY id"
                )
            )
        ]


@dataclass
class Bot(SignedBot):
    async def click(
        self, action_id: str, value: dict, name: str, user: str, trigger: str | None = None
    ) -> httpx.Response:
        body, ctype = block_actions(
            action_id,
            json.dumps(value),
            team_id=self.team,
            user_id=user,
            channel_id="C0GENERAL",
            response_url=self.fake.response_url(name, channel="C0GENERAL"),
            trigger_id=trigger,
        )
        return await self.post(body, ctype)

    async def submit(
        self, person_id: int | str, other: str | None, user: str, view_id: str
    ) -> httpx.Response:
        values = {B_OTHER: {A_OTHER: {"type": "plain_text_input", "value": other}}}
        body, ctype = view_submission(
            LINK_CALLBACK,
            values,
            team_id=self.team,
            user_id=user,
            private_metadata=json.dumps({"p": person_id}),
            view_id=view_id,
        )
        return await self.post(body, ctype)

    async def updates(self, count: int, timeout: float = 10) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.fake.calls_to("views.update")) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        calls = self.fake.calls_to("views.update")
        assert len(calls) >= count, [c.response for c in calls]
        out = []
        for call in calls:
            assert call.ok, call.response
            view = call.params["view"]
            out.append(json.loads(view) if isinstance(view, str) else view)
        return out


@pytest.fixture
async def bot(tmp_path) -> Iterator[Bot]:
    engine = make_engine(f"sqlite:///{tmp_path / 'people.db'}")
    upgrade(engine)
    with FakeSlack() as fake:
        fake.add_user("U0ALICE", is_admin=False)
        fake.add_user("U0ADMIN", is_admin=True)
        _load(engine, fake.team_id)
        settings = BotSettings(
            bot_token=DEFAULT_BOT_TOKEN, signing_secret=SECRET, api_url=fake.api_url
        )
        deps = Deps(service=ReportService(engine), settings=settings, working_after=10)
        app = build_app(settings, engine, deps=deps)
        async with bot_client(app) as http:
            yield Bot(fake, engine, http, fake.team_id)
    engine.dispose()


def action_ids(payload: dict) -> list[str]:
    found = []
    for block in payload.get("blocks", []):
        if block.get("accessory", {}).get("action_id"):
            found.append(block["accessory"]["action_id"])
        found += [e.get("action_id") for e in block.get("elements", []) if e.get("action_id")]
    return found


async def test_a_member_sees_the_records_and_why_without_buttons(bot):
    await bot.command("customer ann@x.com", "member", user="U0ALICE")
    (post,) = await bot.responses("member")
    shown = json.dumps(post.payload)
    assert "Ann Lee" in shown and "is one person: 2 records from 2 sources (crm, shop)" in shown
    assert shown.count("same email ann@x.com") == 2
    assert "crm:lead-1" in shown and "shop:9001" in shown
    assert not {A_PERSON_UNLINK, A_PERSON_LINK} & set(action_ids(post.payload))
    assert "Admins can link and unlink records here" in shown
    assert "Ann Other" not in shown  # the other workspace's Ann


async def test_an_admin_gets_unlink_per_record_and_link(bot):
    await bot.command("customer Ann Lee", "admin", user="U0ADMIN")
    (post,) = await bot.responses("admin")
    ids = action_ids(post.payload)
    assert ids.count(A_PERSON_UNLINK) == 2 and ids.count(A_PERSON_LINK) == 1
    # A customer not found, and one from another workspace, are said in words.
    await bot.command("customer nobody@x.com", "missing", user="U0ADMIN")
    (post,) = await bot.responses("missing")
    assert "No customer 'nobody@x.com' here" in post.text
    other = record_id(bot.engine, OTHER, "shop", "1")
    await bot.command(f"customer #{other}", "other", user="U0ADMIN")
    (post,) = await bot.responses("other")
    assert "Ann Other" not in json.dumps(post.payload) and "No customer" in post.text


async def test_unlink_is_a_decision_that_survives_a_resync(bot):
    shop_ann = record_id(bot.engine, bot.team, "shop", "9001")
    assert person(bot.engine, bot.team, "shop", "9001") == person(
        bot.engine, bot.team, "crm", "lead-1"
    )
    await bot.click(A_PERSON_UNLINK, {"id": shop_ann, "p": 0}, "unlink", "U0ADMIN")
    (post,) = await bot.responses("unlink")
    assert post.payload.get("replace_original") is True
    shown = json.dumps(post.payload)
    assert "unlinked `shop:9001`" in shown and "<@U0ADMIN>" in shown
    assert "one record, in crm" in shown
    assert decisions(bot.engine) == [(bot.team, shop_ann, "unlink", None, "U0ADMIN")]
    # The shop syncs the same record again: still apart (and nothing was deleted).
    with session_scope(bot.engine) as session:
        shop = Ingestor(session, bot.team, ensure_source(session, bot.team, "csv", "shop").id or 0)
        shop.refresh(shop.customers([CustomerRecord("9001", "Ann Lee", "ann@x.com")]))
    assert person(bot.engine, bot.team, "shop", "9001") != person(
        bot.engine, bot.team, "crm", "lead-1"
    )


async def test_a_members_forged_unlink_changes_nothing(bot):
    shop_ann = record_id(bot.engine, bot.team, "shop", "9001")
    await bot.click(A_PERSON_UNLINK, {"id": shop_ann, "p": 0}, "forged", "U0ALICE")
    (post,) = await bot.responses("forged")
    assert "Only workspace admins and owners can link or unlink" in post.text
    assert post.payload.get("replace_original") is False
    assert decisions(bot.engine) == []
    assert person(bot.engine, bot.team, "shop", "9001") == person(
        bot.engine, bot.team, "crm", "lead-1"
    )


async def open_link_modal(bot: Bot, person_id: int, user: str) -> str:
    trigger = bot.fake.issue_trigger()
    await bot.click(A_PERSON_LINK, {"id": person_id, "n": "Kim Ito"}, "link", user, trigger)
    await bot.updates(1)
    (opened,) = bot.fake.calls_to("views.open")
    assert opened.ok and opened.params["trigger_id"] == trigger
    return str(opened.response["view"]["id"])


async def test_link_asks_for_the_other_record_and_joins_them(bot):
    kim = person(bot.engine, bot.team, "shop", "9002")
    view_id = await open_link_modal(bot, kim, "U0ADMIN")
    (form,) = await bot.updates(1)
    assert form["callback_id"] == LINK_CALLBACK and json.loads(form["private_metadata"]) == {
        "p": kim
    }
    assert "Kim Ito" in json.dumps(form)

    response = await bot.submit(kim, "", "U0ADMIN", view_id)  # nothing typed
    assert response.json()["response_action"] == "errors" and B_OTHER in response.json()["errors"]

    response = await bot.submit(kim, "crm:lead-2", "U0ADMIN", view_id)
    assert response.json()["response_action"] == "update"
    views = await bot.updates(2)
    assert "Linked: crm:lead-2 is the same person from now on (2 records from crm, shop)" in (
        json.dumps(views[-1])
    )
    crm_kim = record_id(bot.engine, bot.team, "crm", "lead-2")
    assert decisions(bot.engine) == [(bot.team, kim, "link", crm_kim, "U0ADMIN")]
    assert person(bot.engine, bot.team, "crm", "lead-2") == person(
        bot.engine, bot.team, "shop", "9002"
    )
    # Details now say so, and why.
    await bot.command("customer kim@work.com", "kim", user="U0ALICE")
    (post,) = await bot.responses("kim")
    assert json.dumps(post.payload).count("linked by hand") == 2


async def test_link_to_an_unknown_or_foreign_record_changes_nothing(bot):
    kim = person(bot.engine, bot.team, "shop", "9002")
    view_id = await open_link_modal(bot, kim, "U0ADMIN")
    foreign = record_id(bot.engine, OTHER, "shop", "1")
    await bot.submit(kim, f"#{foreign}", "U0ADMIN", view_id)
    views = await bot.updates(2)
    said = json.dumps(views[-1])
    assert f"No record '#{foreign}' in this workspace" in said and "Nothing was changed" in said
    assert decisions(bot.engine) == []


async def test_a_link_submitted_while_the_report_pool_is_full_is_refused_in_the_modal(bot):
    """The link is a write that waits in the report pool like a report: past the pool's
    bounds the modal says "busy ... nothing was linked" at once (bot/work/pool.py)."""
    from test_workload import Filled

    from bot.work.pool import PoolLimits, ReportPool, use_pool

    kim = person(bot.engine, bot.team, "shop", "9002")
    view_id = await open_link_modal(bot, kim, "U0ADMIN")
    await bot.updates(1)
    full = ReportPool(PoolLimits(threads=1, max_queue=2, max_queue_per_workspace=2, max_wait=60))
    old = use_pool(full)
    try:
        async with Filled(full, bot.team, 2):
            await bot.submit(kim, "crm:lead-2", "U0ADMIN", view_id)
            views = await bot.updates(2)
            said = json.dumps(views[-1])
            assert "busy" in said and "nothing was linked" in said and "try again" in said
    finally:
        use_pool(old)
    assert decisions(bot.engine) == []


async def test_a_member_cannot_link_even_with_a_forged_submission(bot):
    kim = person(bot.engine, bot.team, "shop", "9002")
    await open_link_modal(bot, kim, "U0ALICE")
    (view,) = await bot.updates(1)
    assert "Only workspace admins and owners" in json.dumps(view)
    assert "callback_id" not in view  # no form
    view_id = str(bot.fake.calls_to("views.open")[0].response["view"]["id"])
    await bot.submit(kim, "crm:lead-2", "U0ALICE", view_id)
    views = await bot.updates(2)
    assert "Only workspace admins and owners" in json.dumps(views[-1])
    assert decisions(bot.engine) == []


async def test_the_review_list_opens_a_customers_details(bot):
    await bot.command("reviews", "reviews", user="U0ALICE")
    (post,) = await bot.responses("reviews")
    details = [
        e
        for b in post.payload["blocks"]
        for e in b.get("elements", [])
        if e.get("action_id") == A_PERSON_DETAILS
    ]
    assert len(details) == 2
    ann = person(bot.engine, bot.team, "shop", "9001")
    (button,) = [d for d in details if json.loads(d["value"]) == {"id": ann}]
    assert "Ann Lee* · ann@x.com · crm + shop" in json.dumps(post.payload, ensure_ascii=False)
    await bot.click(A_PERSON_DETAILS, json.loads(button["value"]), "details", "U0ALICE")
    (shown,) = await bot.responses("details")
    assert shown.payload.get("replace_original") is False
    said = json.dumps(shown.payload, ensure_ascii=False)
    assert "Customer details · Ann Lee" in said
    assert "2 records from 2 sources" in said


def test_the_console_shows_details_read_only(bot):
    """The local console answers `/journey customer` with the same Details, without
    buttons: links and unlinks are `journey people link|unlink` there."""
    from bot.commands.language import parse

    message = ReportService(bot.engine).command_message(bot.team, parse("customer ann@x.com"))
    payload = message.payload()
    assert "2 records from 2 sources" in json.dumps(payload)
    assert action_ids(payload) == []
