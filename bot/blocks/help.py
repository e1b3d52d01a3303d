"""Help and error replies: every subcommand with an example, and errors that say what to do."""

from __future__ import annotations

from bot.blocks.message import Message, context, header, section
from bot.blocks.mrkdwn import md
from bot.commands.language import EXAMPLES, TOPICS
from journey.periods import PERIOD_HELP
from journey.render.format import count
from journey.sources.manage import SourceHealth
from journey.sync import SyncResult


def topic_message(word: str) -> Message:
    """`/journey help churn`: what the command is for, its forms and an example."""
    forms = [(u, e) for u, e in EXAMPLES if u.split()[0] == word]
    lines = "\n".join(f"• `/journey {usage}`: _{example}_" for usage, example in forms)
    text = TOPICS[word]
    blocks = [header(f"/journey {word}"), section(text)]
    if lines:
        blocks.append(section(lines))
    if word in ("funnel", "retention", "churn"):
        blocks.append(context(f"Periods: {PERIOD_HELP}"))
    return Message(f"/journey {word}: {text}", blocks)


def command_error_message(text: str, suggestion: str | None = None) -> Message:
    """A command we could not read: the reason in one line and where to look, not the
    whole help (which buried the one line that mattered)."""
    where = f"/journey help {suggestion}" if suggestion in TOPICS else "/journey help"
    return Message(
        md("{} ({} lists the forms.)", text, where),
        [section(md(":warning: {} _`{}` lists the forms._", text, where))],
    )


def help_message(prefix: str | None = None) -> Message:
    lines = "\n".join(f"• `/journey {usage}`: _{example}_" for usage, example in EXAMPLES)
    blocks = [header("journey: where your customers are, and where you lose them")]
    if prefix:
        blocks.append(section(prefix))
    blocks += [section(lines), context(f"Periods: {PERIOD_HELP}")]
    return Message(
        md("{} Try /journey funnel, retention, churn or reviews.", prefix)
        if prefix
        else "Try /journey funnel, retention, churn or reviews.",
        blocks,
    )


def error_message(text: str) -> Message:
    """`text` may quote what was typed: escaped unless it is Mrkdwn built by the bot."""
    return Message(text, [section(md(":warning: {}", text))])


# For what is not a report (a button, the Home tab, a file): says what was not done.
BUSY_NOT_DONE = (
    "journey is busy answering many requests right now, so {what}: please try again in a minute."
)


def busy_message(what: str) -> Message:
    """The polite refusal of work the report pool turned away, saying `what` was not done."""
    return error_message(BUSY_NOT_DONE.format(what=what))


def connect_here_message(workspace_id: str, *, demo: bool) -> Message:
    """`/journey connect` where there are no forms (the local console): the command line
    does it, into a workspace apart from the demo store (`journey sources add` refuses to
    mix the two), and the console is then opened on that workspace."""
    if demo:
        where = (
            "in a workspace of its own (this one holds the demo): `journey sources add stripe "
            "--name shop --workspace myshop`, then open the console on it with "
            "`JOURNEY_WORKSPACE=myshop python3 run.py`"
        )
    else:
        where = f"`journey sources add stripe --name shop --workspace {workspace_id}`"
    text = (
        f"The console has no forms: connect a store or CRM on the command line, {where}. "
        "Instead of stripe: hubspot, woocommerce or shopify; the key is read from an "
        "environment variable (`--key-env`) or asked for, never typed here. In Slack, "
        "`/journey connect` opens a form where an admin enters the key."
    )
    return Message(text, [section(md(":bulb: {}", text))])  # md escapes the workspace id


# The last line of every message journey sends to someone's DM: the Messages tab is on
# (manifest.yml), so people can answer there, and many never think of trying.
DM_HINT = (
    ":speech_balloon: This is your conversation with journey: type `/journey help` here "
    "for commands; the buttons work here too."
)


def in_dm(message: Message) -> Message:
    """`message` as sent to a direct message: it ends with DM_HINT (a footer line, so it
    stays when a long message is trimmed to Slack's limits)."""
    return Message(message.text, message.blocks, [*message.footer, context(DM_HINT)])


def working_message(what: str) -> Message:
    return Message(
        f"Working on your {what}…", [context(f":hourglass_flowing_sand: Working on your {what}…")]
    )


def _imported(h: SourceHealth) -> bool:
    """Files and the demo are imported, not synced: they have no 'last sync'."""
    from journey.sources import CONNECTORS

    return h.kind not in CONNECTORS


def sources_message(sources: list[SourceHealth]) -> Message:
    """Each source's health: status, last sync, rows, and its last error in words;
    imported files and the demo say when they were imported, never "never synced"."""
    title = "Connected sources"
    if not sources:
        text = (
            "No sources yet. A workspace admin connects Shopify, Stripe, HubSpot or "
            "WooCommerce with `/journey connect` (the key goes into a private form, never "
            "the channel), or on the server with `journey sources add`; a CSV export is "
            "imported by sending it to journey in a Slack direct message, or with `journey "
            "import` on the server."
        )
        return Message(text, [header(title), section(text)])
    blocks = [header(title)]
    lines = []
    for h in sources[:40]:
        if _imported(h):
            on = h.created_at.strftime("%Y-%m-%d") if h.created_at else "earlier"
            what = "demo data, built" if h.kind == "demo" else "imported from files"
            line = (
                f"*{h.name}* ({h.kind}): {what} on {on} · {count(h.customers, 'customer')}, "
                f"{count(h.events, 'event')} · not synced: "
                + (
                    "`journey demo` rebuilds it"
                    if h.kind == "demo"
                    else "sending the export again (a Slack DM to journey, or `journey import`) updates it"
                )
            )
            lines.append(line)
            blocks.append(section(line))
            continue
        when = h.last_sync_at.strftime("%Y-%m-%d %H:%M UTC") if h.last_sync_at else "never synced"
        status = ":double_vertical_bar: paused" if h.status == "paused" else h.status
        line = f"*{h.name}* ({h.kind}): {status} · last sync {when} · {count(h.customers, 'customer')}, {count(h.events, 'event')}"
        if h.last_error:
            line += f"\n   last error: {h.last_error}"
        lines.append(line)
        blocks.append(section(line))
    text = f"{count(len(sources), 'source')}: " + "; ".join(
        f"{h.name} ({h.status})" for h in sources[:10]
    )
    return Message(text, blocks)


def sync_message(results: list[SyncResult], imported: list[SourceHealth] | None = None) -> Message:
    """What an on-demand sync did, source by source, errors in plain words. With nothing
    to sync, the imported sources `/journey sources` lists are named, with how to update
    them, so the two replies agree."""
    if not results:
        files = [h for h in imported or [] if _imported(h)]
        if files:
            names = ", ".join(f"{h.name} ({h.kind})" for h in files[:5])
            return error_message(
                f"Nothing to sync: {names} came from imported files or the demo, which a "
                "sync does not read (send the export again, in a Slack DM to journey or with "
                "`journey import`, to update them). Connect a store or "
                "CRM with `/journey connect` to sync it."
            )
        return error_message("There is no connected store or CRM to sync: see `/journey sources`.")
    lines = []
    for r in results:
        if r.ok:
            lines.append(
                f":white_check_mark: *{r.source}* ({r.kind}): {r.inserted} new, {r.updated} changed, "
                f"{r.unchanged} unchanged records from {r.pages} pages."
            )
        elif r.paused:
            lines.append(f":double_vertical_bar: *{r.source}* ({r.kind}) is paused: {r.error}")
        elif r.skipped:
            lines.append(f":heavy_minus_sign: *{r.source}* ({r.kind}) was not synced: {r.error}")
        else:
            lines.append(f":warning: *{r.source}* ({r.kind}): {r.error}")
    text = "Sync finished. " + " ".join(line.replace("*", "") for line in lines)
    return Message(text, [header("Sync"), *(section(line) for line in lines)])
