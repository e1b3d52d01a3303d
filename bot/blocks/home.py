"""The App Home tab: the workspace at a glance."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block, DividerBlock
from slack_sdk.models.views import View

from bot.blocks.message import context, header, section
from journey.render.format import money, pct, period, rate
from journey.reporting import Overview

HOME_BLOCKS = 100


def home_view(
    overview: Overview | None, sources: list[tuple[str, str, str | None, str | None]]
) -> dict[str, Any]:
    """sources: (kind, name, last sync as ISO text or None, last error or None)."""
    blocks: list[Block] = [header("journey")]
    if overview is None:
        blocks.append(
            section(
                "No data for this workspace yet. An admin can import CSV exports with "
                "`journey import`, or try the demo store with `journey demo`. Then type `/journey help`."
            )
        )
    else:
        f, r, v = overview.funnel, overview.retention, overview.reviews
        purchase = next((s for s in f.stages if s.stage == f.purchase_stage), None)
        bought = f", {purchase.reached} bought ({pct(purchase.overall.value)})" if purchase else ""
        blocks += [
            section(f"*Last 30 days* ({period(f.period)})"),
            section(
                f"*Funnel:* {f.entered} new customers{bought}.\n"
                + (
                    f"*Biggest drop-off:* {f.biggest_drop.from_stage} → {f.biggest_drop.to_stage} "
                    f"({pct(f.biggest_drop.current.value)} continue).\n"
                    if f.biggest_drop
                    else ""
                )
                + f"*Retention:* repeat rate {rate(r.repeat_rate)}; {r.returning} returning customers "
                f"({r.previous_returning} the period before).\n"
                f"*At risk:* {r.at_risk_count} customers, {money(r.value_at_risk_cents, r.currency)}.\n"
                f"*Reviews:* {v.total_candidates} customers to ask now."
            ),
            context(
                "`/journey funnel`, `/journey retention`, `/journey churn`, `/journey reviews` for the details."
            ),
        ]
    blocks += [DividerBlock(), section("*Connected sources*")]
    if not sources:
        blocks.append(
            context(
                "None yet. Store and CRM connections (Shopify, HubSpot, Stripe, WooCommerce) come in a later release."
            )
        )
    for kind, name, last_sync, last_error in sources[:20]:
        status = f"last sync {last_sync}" if last_sync else "never synced"
        if last_error:
            status += f" · last error: {last_error}"
        blocks.append(context(f"*{name}* ({kind}): {status}"))
    blocks += [
        DividerBlock(),
        section("*Digests and alerts*"),
        context(
            "`/journey digest weekly monday 09:00` in a channel sends it a digest; "
            "`/journey alerts` lists the retention, funnel and churn alerts and where they post."
        ),
    ]
    return View(type="home", blocks=blocks[:HOME_BLOCKS]).to_dict()
