"""The bridge from a Slack (or console) request to journey's reports.

Everything here is synchronous database work and pure rendering; listeners run
it in a worker thread after acknowledging, so the 3-second acknowledgement never
waits on a query. Every call is scoped to the workspace of the team that asked.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import select

from bot.blocks.help import (
    connect_here_message,
    error_message,
    help_message,
    sources_message,
    sync_message,
    topic_message,
)
from bot.blocks.home import home_view
from bot.blocks.message import Message, section
from bot.blocks.mrkdwn import md
from bot.blocks.reports import (
    churn_message,
    funnel_message,
    retention_message,
    reviews_message,
    value_message,
)
from bot.commands.language import REPORTS, Command
from journey.db import make_engine, session_scope
from journey.errors import JourneyError, NotFound
from journey.metrics.churn import churn_report
from journey.metrics.insights import weakest_stage
from journey.metrics.retention import retention_report
from journey.models import Customer, ExportRecord, ReviewRequest, Source
from journey.outage import OUTAGES, classify, retry_reads
from journey.render.csv_export import at_risk_csv as render_at_risk_csv
from journey.reporting import build_overview, build_report, workspace_period
from journey.reports import ChurnReport, FunnelReport, RetentionReport, ReviewReport, ValueReport
from journey.schedule.acks import AckResult, acknowledge
from journey.schedule.status import schedule_status
from journey.sources.manage import api_sources, connected_sources, source_health
from journey.sync import SyncResult, sync_source

log = logging.getLogger("journey.bot")
EXPORT_LIMIT = 5000


def no_data_message(workspace_id: str) -> Message:
    return error_message(
        "There is no data for this workspace yet. An admin can send a CSV export (Shopify, "
        "Stripe, Square, WooCommerce, HubSpot...) to journey in a Slack direct message, load files on "
        f"the server with `journey import --workspace {workspace_id} customers.csv orders.csv`, "
        f"or try the demo with `journey demo --workspace {workspace_id}`."
    )


def unexpected_message(exc: BaseException) -> Message:
    """Log the failure with a reference the user can quote; show no details.

    A database outage (restarting, disk full, read-only, busy) is no bug: the user
    reads what happened and what to do, and the log gets one line per incident
    (journey.outage), not a traceback per request."""
    outage = classify(exc)
    if outage is not None:
        OUTAGES.seen(outage)
        return error_message(outage.words)
    ref = uuid.uuid4().hex[:8]
    log.error("unexpected error (ref %s)", ref, exc_info=exc)
    return error_message(
        f"Something went wrong on our side (reference `{ref}`). Please try again in a minute; "
        "if it keeps happening, give your admin this reference."
    )


# Commands that only read: retried while the database restarts (journey.outage).
READ_ONLY_COMMANDS = frozenset({*REPORTS, "sources", "help"})
READ_DEADLINE = 20.0  # seconds a read keeps trying; the working message shows meanwhile
WRITE_BUSY_SECONDS = 5.0

Report = FunnelReport | RetentionReport | ReviewReport | ChurnReport | ValueReport
# (source id, resource, pages read in that resource, records read in the sync)
SourceProgressFn = Callable[[int, str, int, int], None]


@dataclass(frozen=True)
class SyncTarget:
    id: int
    name: str
    kind: str


@dataclass(frozen=True)
class Reply:
    """The message to send and, when there is one, the report behind it (for the chart)."""

    message: Message
    report: Report | None = None


@dataclass
class ReportService:
    engine: Engine
    read_deadline: float = READ_DEADLINE
    _writes: Engine | None = field(default=None, repr=False)

    @property
    def write_engine(self) -> Engine:
        """The engine for writes made while a user waits (settings, acknowledgements):
        on SQLite, one whose writes wait WRITE_BUSY_SECONDS for another writer's lock
        (an import) rather than 30 s, then say "busy" in words (journey.outage)."""
        if self._writes is None:
            url = self.engine.url
            if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
                self._writes = make_engine(
                    url.render_as_string(hide_password=False), busy_timeout=WRITE_BUSY_SECONDS
                )
            else:
                self._writes = self.engine
        return self._writes

    def command_message(
        self,
        workspace_id: str,
        command: Command,
        view: str = "",
        shared: bool = False,
        *,
        exports: bool = False,
    ) -> Message:
        return self.command_reply(workspace_id, command, view, shared, exports=exports).message

    def command_reply(
        self,
        workspace_id: str,
        command: Command,
        view: str = "",
        shared: bool = False,
        *,
        exports: bool = False,
    ) -> Reply:
        """The reply to a parsed command, with every failure turned into a helpful message.

        `exports`: the viewer may export and share (the bot decides, bot/guard/access.py),
        so the report carries the *CSV* and *Share* buttons; without it they are left out.

        Reports only read: while the database restarts they are tried again, with
        backoff, for up to READ_DEADLINE seconds before the user is told."""
        try:
            if command.name in READ_ONLY_COMMANDS:
                return retry_reads(
                    lambda: self._command_reply(workspace_id, command, view, shared, exports),
                    deadline=self.read_deadline,
                )
            return self._command_reply(workspace_id, command, view, shared, exports)
        except NotFound:
            return Reply(no_data_message(workspace_id))
        except JourneyError as exc:
            return Reply(error_message(str(exc)))
        except Exception as exc:
            return Reply(unexpected_message(exc))

    def _command_reply(
        self, workspace_id: str, command: Command, view: str, shared: bool, exports: bool
    ) -> Reply:
        if command.name == "help":
            return Reply(topic_message(command.args[0]) if command.args else help_message())
        if command.name in ("digest", "alerts"):
            return Reply(
                error_message(
                    f"`/journey {command.name}` works in Slack: run it in the channel that "
                    "should get the digest or the alerts."
                )
            )
        if command.name == "connect":  # Slack opens a form before this (bot/listeners)
            from journey.workspaces import demo_source

            with session_scope(self.engine) as session:
                demo = demo_source(session, workspace_id) is not None
            return Reply(connect_here_message(workspace_id, demo=demo))
        if command.name == "sources":
            with session_scope(self.engine) as session:
                return Reply(sources_message(source_health(session, workspace_id)))
        if command.name == "sync":
            results = self.sync(workspace_id, command.args[0] if command.args else None)
            with session_scope(self.engine) as session:
                health = source_health(session, workspace_id)
            return Reply(sync_message(results, health))
        if command.name == "customer":  # the console: read-only (`journey people` changes)
            from bot.commands.people import details

            return Reply(details(self.engine, workspace_id, command.args[0], admin=False))
        if command.name == "reviews" and command.args:
            status, who = command.args[0], command.args[1]
            return Reply(self.record_review_by(workspace_id, who, status, "console"))
        now = datetime.now(UTC)
        with session_scope(self.engine) as session:
            period = workspace_period(session, workspace_id, command.period, now=now)
            report = build_report(
                session, workspace_id, command.name, period, channel=command.channel, now=now
            )
            insight = None
            if isinstance(report, FunnelReport) and not command.channel:
                insight = weakest_stage(
                    report, retention_report(session, workspace_id, period, now=now)
                )
        if isinstance(report, FunnelReport):
            view = "by_channel" if command.by_channel else (command.view or view)
            message = funnel_message(report, command.period, view, shared, insight, exports=exports)
            return Reply(message, report)
        if isinstance(report, ChurnReport):
            return Reply(churn_message(report, command.period, shared, exports=exports), report)
        if isinstance(report, ValueReport):
            return Reply(value_message(report, command.period, shared, exports=exports), report)
        if isinstance(report, RetentionReport):
            message = retention_message(
                report, command.name, command.period, shared, exports=exports
            )
            return Reply(message, report)
        return Reply(reviews_message(report, shared, exports=exports), report)

    def schedule_reply(
        self,
        workspace_id: str,
        command: Command,
        channel_id: str,
        user_id: str,
        timezone: str = "UTC",
        *,
        zone_words: str | None = None,
        now: datetime | None = None,
    ) -> Reply:
        """`/journey digest ...` and `/journey alerts ...` for one channel (bot/commands/schedule_settings.py).

        Slack and the local console both come here, each with its own channel, user and
        timezone, so both set up digests and alerts in exactly the same way; `now` is the
        console's clock (its tests move it)."""
        from bot.commands.language import AlertsRequest, DigestRequest
        from bot.commands.schedule_settings import alerts_reply, digest_preview, digest_reply

        try:
            if isinstance(command.setting, DigestRequest) and command.setting.action == "now":
                from bot.blocks.digest import digest_message

                digest = digest_preview(
                    self.write_engine, workspace_id, channel_id, timezone, now=now
                )
                # With its funnel: the chart the posted digest carries (the console saves it).
                return Reply(digest_message(digest, preview=True), report=digest.funnel)
            if isinstance(command.setting, DigestRequest):
                return Reply(
                    digest_reply(
                        self.write_engine,
                        workspace_id,
                        channel_id,
                        user_id,
                        timezone,
                        command.setting,
                        now=now,
                        zone_words=zone_words,
                    )
                )
            if isinstance(command.setting, AlertsRequest):
                return Reply(
                    alerts_reply(
                        self.write_engine,
                        workspace_id,
                        channel_id,
                        user_id,
                        command.setting,
                        now=now,
                    )
                )
            return self.command_reply(workspace_id, command)
        except NotFound:
            return Reply(no_data_message(workspace_id))
        except JourneyError as exc:
            return Reply(error_message(str(exc)))
        except Exception as exc:
            return Reply(unexpected_message(exc))

    def at_risk_csv(
        self, workspace_id: str, period_word: str | None, kind: str | None = None
    ) -> tuple[str, int]:
        """All customers at risk as CSV text, most valuable first, and how many rows.

        From the churn report (the model, or its heuristic fallback) when the
        button was on a churn reply, so the file lists the customers it counted;
        from the retention heuristic otherwise.
        """
        now = datetime.now(UTC)
        with session_scope(self.engine) as session:
            period = workspace_period(session, workspace_id, period_word, now=now)
            report: RetentionReport | ChurnReport
            if kind == "churn":
                report = churn_report(session, workspace_id, period, limit=EXPORT_LIMIT, now=now)
            else:
                report = retention_report(
                    session, workspace_id, period, limit=EXPORT_LIMIT, now=now
                )
        return render_at_risk_csv(report), len(report.at_risk)

    def record_review_by(self, workspace_id: str, who: str, status: str, user_id: str) -> Message:
        """`/journey reviews asked|skipped WHO`: the Asked and Skip buttons, typed; the
        customer is found by email or name (journey.workspaces.find_customer)."""
        from journey.workspaces import find_customer

        with session_scope(self.engine) as session:
            customer = find_customer(session, workspace_id, who)
            label = customer.name or customer.email or customer.external_id
            customer_id = customer.id
        if customer_id is None or not self.record_review_request(
            workspace_id, customer_id, status, user_id
        ):
            return error_message(f"No customer {who!r} here.")
        done = "asked for a review" if status == "asked" else "skipped for now"
        return Message(
            md("Recorded: {} {}. They leave the review list for the cooldown.", label, done),
            [
                section(
                    md(
                        ":white_check_mark: Recorded: *{}* {}. They leave the review list "
                        "for the cooldown.",
                        label,
                        done,
                    )
                )
            ],
        )

    def record_export(
        self, workspace_id: str, user_id: str, report: str, rows: int, destination: str
    ) -> None:
        """Record that `user_id` took `rows` customers out of `report` (a CSV in their DM,
        or a share into a channel), for the workspace's audit trail."""
        with session_scope(self.write_engine) as session:
            session.add(
                ExportRecord(
                    workspace_id=workspace_id,
                    user_id=user_id,
                    exported_at=datetime.now(UTC),
                    report=report[:100],
                    rows=rows,
                    destination=destination[:32],
                )
            )

    def record_review_request(
        self, workspace_id: str, customer_id: int, status: str, user_id: str
    ) -> bool:
        """Record asked/skipped; False when the customer is not this workspace's (never write across)."""
        with session_scope(self.write_engine) as session:
            owner = session.execute(
                select(Customer.id).where(
                    Customer.id == customer_id, Customer.workspace_id == workspace_id
                )
            ).first()
            if owner is None:
                return False
            session.add(
                ReviewRequest(
                    workspace_id=workspace_id,
                    customer_id=customer_id,
                    asked_at=datetime.now(UTC),
                    status=status,
                    via="slack",
                    asked_by=user_id,
                )
            )
        return True

    def acknowledge_alert(
        self, workspace_id: str, rule_id: int, key: str, user_id: str, message_ts: str | None
    ) -> AckResult | Message:
        """Store who acknowledged the alert a button was on (journey.schedule.acks); a
        failure becomes a message with a reference, never a stack trace."""
        try:
            return acknowledge(
                self.write_engine,
                workspace_id,
                rule_id=rule_id,
                key=key,
                user_id=user_id,
                message_ref=message_ts,
            )
        except Exception as exc:
            return unexpected_message(exc)

    def home(self, workspace_id: str, now: datetime | None = None) -> dict[str, Any]:
        """The App Home view for a workspace (an empty-state view when it has no data):
        the numbers at a glance, the sources, and the digests and alerts with how to
        change them."""
        now = now or datetime.now(UTC)
        try:
            with session_scope(self.engine) as session:
                sources = [
                    (
                        src.kind,
                        src.name,
                        src.last_sync_at.strftime("%Y-%m-%d %H:%M UTC")
                        if src.last_sync_at
                        else None,
                        src.last_error,
                    )
                    for src in session.exec(
                        select(Source).where(Source.workspace_id == workspace_id)
                    ).all()
                ]
                try:
                    period = workspace_period(session, workspace_id, None, now=now)
                    overview = build_overview(session, workspace_id, period, now=now)
                except NotFound:
                    overview = None
                schedule = schedule_status(session, workspace_id, now)
            return home_view(overview, sources, schedule)
        except Exception as exc:
            unexpected_message(exc)
            return home_view(None, [])

    def sync(
        self,
        workspace_id: str,
        name: str | None,
        progress: SourceProgressFn | None = None,
    ) -> list[SyncResult]:
        """Sync this workspace's connected sources (or one by name) now, in this thread.

        `progress(source_id, resource, pages, records)` is called after every
        committed page (bot/posting/sync_progress.py turns it into a Slack message
        edited in place). A source that fails unexpectedly gets a result with a
        reference in words, and the next source still syncs.
        """
        return [
            self.sync_one(source.id, source.name, source.kind, progress)
            for source in self.sources_to_sync(workspace_id, name)
        ]

    def sources_to_sync(self, workspace_id: str, name: str | None) -> list[SyncTarget]:
        """The workspace's connected sources (or the one of that name), in sync order."""
        with session_scope(self.engine) as session:
            found = (
                connected_sources(session, workspace_id)
                if name is None
                else api_sources(session, workspace_id, name)
            )
            return [SyncTarget(s.id, s.name, s.kind) for s in found if s.id is not None]

    def sync_one(
        self,
        source_id: int,
        name: str,
        kind: str,
        progress: SourceProgressFn | None = None,
    ) -> SyncResult:
        """One source's sync; never raises (an unexpected failure is logged with a reference)."""
        tick = None
        if progress is not None:

            def tick(resource: str, pages: int, records: int) -> None:
                progress(source_id, resource, pages, records)

        try:
            return sync_source(self.engine, source_id, progress=tick)
        except Exception as exc:
            ref = uuid.uuid4().hex[:8]
            log.error(
                "sync of source %s failed unexpectedly (ref %s)", source_id, ref, exc_info=exc
            )
            return SyncResult(
                source=name,
                kind=kind,
                error=(
                    f"the sync stopped on an unexpected error (reference `{ref}`); what arrived "
                    "before it is kept, and the next sync resumes from there."
                ),
            )
