"""A store whose every name is Slack markup or a spreadsheet formula.

Customers, emails, acquisition channels, the source name, a source's last error, a
digest's pause reason and an alert rule's switch-off reason carry what a hostile
customer (or a careless import) could put there: `<!channel>` pings, disguised
links, `<@U…>` mentions, `&` that must not be escaped twice, mrkdwn formatting, and
CSV formulas. Reports built from it must show all of it as text (tests/slack_render.py).

The store is filled through the real ingest path (tests/builders.py), relative to a
given `now`, so both the service-level tests (fixed clock) and the HTTP tests (wall
clock) can use it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from builders import Shop
from sqlmodel import Session

from journey.models import Source
from journey.models.schedule import DigestSubscription
from journey.schedule import subscribe
from journey.schedule.alerts import AlertNotice, ensure_default_rules
from journey.stats import wilson
from journey.workspaces import ensure_workspace

# Names a person might give a customer (or an attacker their own account).
NAMES = {
    "mallory": "<!channel> Mallory",
    "phish": "<https://evil.example/login|Verify your account>",
    "mention": "<@U0123ABCD>",
    "tom": "Tom & Jerry",
    "everyone": "<!everyone>",
    "here": "<!here> @here #general",
    "group": "<!subteam^S0123|@admins>",
    "formula": '=HYPERLINK("https://evil.example","Click")',
    "bold": "*VIP* _client_ ~x~ `y`",
}
EMAILS = {
    "mallory": "mallory@<!here>.example",
    "phish": "<mailto:ceo@evil.example|ceo@shop.example>",
    "tom": "tom&jerry@example.com",
    "formula": "@evil.example",
}
CHANNELS = {
    "mallory": "<!everyone> promo",
    "mention": "<@U0123ABCD> ads",
    "tom": "Tom & Jerry's ads",
}
SOURCE_NAME = "<!here>"
BUSINESS_NAME = "<!channel> Tom & Jerry's *Shop*"
SOURCE_ERROR = "<!channel> HTTP 401 from <https://evil.example|shop.example>"
PAUSE_REASON = "<!channel> was archived & <@U0123ABCD> left"
# Every text the tests look for as typed, and the references the bot itself may make.
TYPED = [*NAMES.values(), *CHANNELS.values(), SOURCE_NAME]
OWN_USER = "U0ALICE"
DIGEST_CHANNEL = "C0DIGEST"
PAUSED_CHANNEL = "C0PAUSED"


def build_hostile_store(session: Session, workspace_id: str, now: datetime) -> Shop:
    """One workspace, one source named `<!here>`, and for each hostile name three
    customers: one lapsed long ago (at risk, in the CSV and the churn list), one who
    crossed the at-risk line this week (the digest's "newly at risk"), and one who
    visited and bought a few days ago (funnel by channel, review candidates)."""
    workspace = ensure_workspace(session, workspace_id)
    workspace.name = BUSINESS_NAME  # shown in every report header and the digest's text
    session.add(workspace)
    shop = Shop(session, workspace_id, source_name=SOURCE_NAME)

    def ago(days: float) -> datetime:
        return now - timedelta(days=days)

    for key, name in NAMES.items():
        email = EMAILS.get(key)
        channel = CHANNELS.get(key)
        shop.customer(
            f"{key}-lapsed",
            ("order", ago(200), 12_000),
            ("order", ago(170), 11_000),
            ("order", ago(140), 10_000),
            name=name,
            email=email,
            channel=channel,
        )
        shop.customer(
            f"{key}-newly",
            ("order", ago(122), 9_000),
            ("order", ago(92), 9_000),
            ("order", ago(62), 9_000),
            name=name,
            email=email,
            channel=channel,
        )
        shop.customer(
            f"{key}-recent",
            ("visit", ago(9)),
            ("order", ago(6), 5_000),
            first_seen=ago(9),
            name=name,
            email=email,
            channel=channel,
        )
    source = session.get(Source, shop.source_id)
    assert source is not None
    # A connected (API) source, so the Home tab and `/journey sources` show its last error.
    source.kind, source.last_error = "shopify", SOURCE_ERROR
    session.add(source)
    # A digest running here, one paused with a hostile reason, and alert rules (one
    # switched off with a hostile reason) for the Home tab and the lists.
    subscribe(session, workspace_id, DIGEST_CHANNEL, subscriber_user_id=OWN_USER, now=now)
    paused = subscribe(session, workspace_id, PAUSED_CHANNEL, subscriber_user_id=OWN_USER, now=now)
    paused.status, paused.pause_reason, paused.paused_at = "paused", PAUSE_REASON, now
    session.add(paused)
    rules = ensure_default_rules(session, workspace_id, DIGEST_CHANNEL, now=now)
    rules[0].enabled, rules[0].disabled_reason = False, PAUSE_REASON
    session.add(rules[0])
    session.flush()
    return shop


def digest_subscription(session: Session, workspace_id: str) -> DigestSubscription:
    from sqlmodel import select

    sub = session.exec(
        select(DigestSubscription).where(
            DigestSubscription.workspace_id == workspace_id,
            DigestSubscription.channel_id == DIGEST_CHANNEL,
        )
    ).one()
    return sub


def hostile_alert(workspace_id: str, now: datetime) -> AlertNotice:
    """An alert whose title, stage, groups and customers come from the hostile data."""
    start = now - timedelta(days=14)
    return AlertNotice(
        rule_id=1,
        workspace_id=workspace_id,
        kind="high_value_churn",
        key=NAMES["mallory"],
        event="fired",
        title=f"Valuable customers from {CHANNELS['mallory']} stopped buying",
        summary=f"{NAMES['tom']} and {NAMES['phish']} did not come back.",
        stage=NAMES["here"],
        playbook=None,
        recent=wilson(2, 10),
        baseline=wilson(6, 10),
        relative_drop=0.66,
        p_value=0.01,
        recent_group=f"customers from {CHANNELS['mention']}",
        baseline_group=NAMES["group"],
        outcome="bought again",
        recent_window=(start, now),
        baseline_window=(start - timedelta(days=14), start),
        fired_at=now,
        resolved_at=None,
        customers=list(NAMES.values()),
    )
