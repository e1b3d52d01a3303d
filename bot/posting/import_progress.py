"""A file sent to the bot: checked (who, what, how big), downloaded, dry-run, and on
*Import* imported in the background with its progress in the same message.

The flow, as a person sees it in their direct message with journey:

1. They drop a CSV export into the DM (Slack sends `file_shared`) or pick one in the App
   Home's "Import a file" modal. Only admins, owners and JOURNEY_EXPORT_USERGROUP may
   import (an import changes every report); a guest, an external user or a member gets
   one sentence. A file over JOURNEY_IMPORT_MAX_MB, not a CSV, or sent to a workspace
   holding the demo store (the CLI's rule, issue 19) is refused in words before
   anything is downloaded.
2. One message says "Checking…"; the file is downloaded with the bot token
   (bot/files/download.py) and dry-run exactly as `journey import --dry-run` does, in
   the import pool (bot/work/pool.IMPORTS), and the message becomes the dry run with
   *Import* and *Cancel* (bot/blocks/imports.py). A file with bad rows gets the first
   ones and no *Import*: the import is all or nothing, as on the command line.
3. *Import* runs `journey.imports.service.import_file` in the import pool (batches
   committed as they land, resumable); the same message shows the lines read, edited at
   most every INTERVAL seconds (chat.update is Tier 3), then the result or the error in
   words. *Cancel* deletes journey's copy. Late and double clicks are answered from the
   entry's state (bot/files/pending.py).

The workspace is always the one Slack authorized (authorized_workspace), never the
payload's team. No stack trace reaches the person: an unexpected error shows a reference
that is also in the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.help import busy_message
from bot.blocks.imports import (
    MAX_MAP_COLUMNS,
    checking_message,
    dry_run_message,
    needs_option_message,
    note_message,
    progress_message,
    result_message,
    skipped_lines,
)
from bot.blocks.message import Message
from bot.blocks.mrkdwn import mrkdwn
from bot.commands.service import unexpected_message
from bot.deps import Deps
from bot.files.download import FileRefused, SlackFile, download, file_info, too_big
from bot.files.pending import KEEP_SECONDS, PENDING, Pending
from bot.guard.access import authorized_workspace
from bot.work.inflight import INFLIGHT
from bot.work.pool import IMPORT_GATE, IMPORTS, Busy, in_pool, in_worker, log_shed, queued
from journey.errors import JourneyError
from journey.imports.claims import IMPORTED, claim
from journey.imports.claims import extend as extend_claim
from journey.imports.claims import finish as finish_claim
from journey.imports.common import ImportResult, NeedsOption
from journey.imports.service import (
    DemoInTheWay,
    ImportOptions,
    check_file,
    holds_demo,
    import_file,
)
from journey.imports.summary import DryRunSummary, dry_run_summary
from journey.render.csv_export import skipped_rows_csv
from journey.render.imports import summary as summary_text

log = logging.getLogger("journey.bot")
INTERVAL = 2.5  # seconds between edits of the progress message
CLAIM_EXTEND = 60.0  # seconds between extensions of a running import's claim
_running: set[asyncio.Task[Any]] = set()


def import_refusal(has_group: bool) -> str:
    who = (
        "workspace admins, owners and the user group your operator chose"
        if has_group
        else "workspace admins and owners"
    )
    return (
        f"Importing files is for {who}: an import changes every report. Ask one of them "
        "to send the file to journey."
    )


def demo_refusal(workspace: str) -> str:
    return (
        "This workspace holds journey's demo store (a made-up vet clinic), and your data "
        "would be mixed into its numbers, so nothing was imported. Ask your journey "
        f"operator to remove the demo (`journey demo remove --workspace {workspace}`), "
        "then send the file again."
    )


BUSY = (
    "Another file is being checked or imported for this workspace right now; send this "
    "one again when it is done."
)
BUSY_ALL = "Many files are being imported right now; please send this one again in a few minutes."
BUSY_CLICK = (
    "Another file is being imported for this workspace right now; click Import again when "
    "it is done (this check counts for {minutes} minutes)."
)
# How long a dropped file waits for the workspace's turn before being turned away: several
# exports dropped at once (customers.csv and orders.csv) are checked one after another.
CHECK_WAIT = 120.0
IMPORT_CUT_SHORT = (
    "journey restarted before your import finished. The batches written so far are kept; "
    "send the file again and its import resumes where this one stopped."
)


async def post(client: AsyncWebClient, channel: str, message: Message) -> str | None:
    try:
        answer = await client.chat_postMessage(channel=channel, **message.payload())
        return str(answer["ts"])
    except SlackApiError as exc:
        log.warning("import: could not post: %s", exc.response.get("error"))
        return None


async def update(client: AsyncWebClient, channel: str, ts: str, message: Message) -> bool:
    try:
        await client.chat_update(channel=channel, ts=ts, **message.payload())
        return True
    except SlackApiError as exc:
        log.warning("import: could not update the message: %s", exc.response.get("error"))
        return False


async def show(
    client: AsyncWebClient, channel: str, ts: str | None, message: Message
) -> str | None:
    """Replace the message at `ts` with `message`, or post it when that fails."""
    if ts is not None and await update(client, channel, ts, message):
        return ts
    return await post(client, channel, message)


def _gate(workspace: str) -> str | None:
    """Let one file of this workspace in; None when let in, else the words why not."""
    if IMPORT_GATE.enter(workspace):
        return None
    return BUSY if IMPORT_GATE.running(workspace) else BUSY_ALL


async def _wait_gate(workspace: str, wait: float = CHECK_WAIT) -> str | None:
    """`_gate`, trying again for up to `wait` seconds (files dropped together take turns)."""
    deadline = time.monotonic() + wait
    while True:
        busy = _gate(workspace)
        if busy is None or time.monotonic() >= deadline:
            return busy
        await asyncio.sleep(0.25)


def fetch_and_check(
    deps: Deps,
    file: SlackFile,
    token: str,
    workspace: str,
    max_bytes: int,
    options: ImportOptions | None = None,
) -> tuple[DryRunSummary, Path, str]:
    """In the import pool: download into a fresh private copy, then the dry run."""
    path = PENDING.new_path()
    try:
        sha = download(file, token, path, max_bytes=max_bytes, api_url=deps.settings.api_url)
        result = check_file(deps.service.engine, workspace, path, label=file.name, options=options)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return dry_run_summary(result), path, sha


async def receive_file(
    deps: Deps,
    client: AsyncWebClient,
    context: AsyncBoltContext,
    user: str,
    file_id: str,
    channel: str,
    options: ImportOptions | None = None,
) -> None:
    """A file `user` sent (into DM `channel`, or through the modal): check it and post the
    dry run with *Import* / *Cancel*, or say in one message why not. `options`: what
    the person answered when an earlier check needed one of the CLI's options."""
    options = options or ImportOptions()
    workspace = authorized_workspace(context)
    viewer = await deps.guard.viewer(client, context, user)
    refusal = viewer.refusal()
    if refusal is None and not await deps.guard.may_export(client, viewer):
        refusal = import_refusal(bool(deps.settings.export_groups_of(workspace)))
    if refusal is not None:
        await post(client, channel, note_message(refusal))
        return
    try:
        file = await file_info(client, file_id)
    except FileRefused as exc:
        await post(client, channel, note_message(str(exc)))
        return
    if not file.looks_like_csv:
        await post(
            client,
            channel,
            note_message(
                f"{file.name} is not a CSV file, and journey imports CSV exports. Export it "
                "as CSV (in Excel: Save As > CSV UTF-8) and send that."
            ),
        )
        return
    max_bytes = int(deps.settings.import_max_mb * 1_000_000)
    if file.size > max_bytes:
        await post(client, channel, note_message(too_big(file.name, file.size, max_bytes)))
        return
    try:
        demo = await queued(workspace, holds_demo, deps.service.engine, workspace)
    except Busy as exc:  # the report pool is full (bot/work/pool.py): say so, at once
        log_shed(exc.why)
        await post(client, channel, busy_message(f"{file.name} was not checked"))
        return
    if demo:
        await post(client, channel, note_message(demo_refusal(workspace)))
        return
    busy = await _wait_gate(workspace)
    if busy is not None:
        await post(client, channel, note_message(busy))
        return
    ts = None
    try:
        ts = await post(client, channel, checking_message(file.name))
        token = context.bot_token or client.token or ""
        found, path, sha = await in_pool(
            IMPORTS, fetch_and_check, deps, file, token, workspace, max_bytes, options
        )
    except NeedsOption as exc:
        # Settled by an answer (a date style, a rate, what a column is): a button opens
        # the form that asks for it, and the file is checked again with it.
        value = option_value(file.id, exc, options)
        await show(client, channel, ts, needs_option_message(file.name, str(exc), value))
        return
    except (FileRefused, JourneyError) as exc:
        # FileRefused: Slack would not hand the file out. JourneyError: the import's own
        # words (an unknown layout with the --map that would place it, an ambiguous date
        # style...), as `journey import --dry-run` prints them.
        await show(client, channel, ts, result_message(file.name, False, str(exc)))
        return
    except Exception as exc:
        await show(client, channel, ts, unexpected_message(exc))
        return
    finally:
        # Left before the buttons show: an Import clicked at once must find the gate free.
        IMPORT_GATE.leave(workspace)
    entry = None
    if found.importable or found.good_rows:
        # Bad rows among good ones: the only button offered imports the good rows.
        skip = options.replace(skip_bad=bool(found.rejected))
        entry = PENDING.add(
            workspace, user, channel, file.id, file.name, path, file.size, sha, options=skip
        )
        entry.ts = ts  # the message the dry run replaces, known before anyone can click
    else:
        path.unlink(missing_ok=True)
    value = entry.button_value() if entry is not None else None
    shown = await show(client, channel, ts, dry_run_message(found, value))
    if entry is not None:
        if shown is None:
            PENDING.drop(entry)
        else:
            entry.ts = shown
    log.info(
        "import: file %s checked for team %s: %d rows, %d bad",
        file.id,
        workspace,
        found.rows,
        found.rejected,
    )


def option_value(file_id: str, need: NeedsOption, options: ImportOptions) -> dict[str, Any]:
    """What the question's button carries to its form and back: the file, what is
    asked, the answers so far; under Slack's 2,000 characters for a button's value
    (columns left out are asked for in the next round)."""
    value: dict[str, Any] = {"f": file_id, "n": need.option, "o": options.compact()}
    if need.option == "currency":
        value["k"], value["w"] = need.currency, need.workspace_currency
    elif need.option == "map":
        value["c"] = need.columns[:MAX_MAP_COLUMNS]
        value["l"] = need.fields[:60]
        while len(json.dumps(value, separators=(",", ":"))) > 1900 and len(value["c"]) > 1:
            value["c"] = value["c"][:-1]
    return value


def late_answer(entry: Pending | None) -> str:
    """Why a button can no longer import (or cancel) its file."""
    if entry is None:
        return (
            "I no longer hold a copy of this file: journey keeps it for "
            f"{KEEP_SECONDS // 60} minutes after the check. Send the file again to import it."
        )
    name = entry.name
    if entry.state == "importing":
        return f"{name} is being imported now: the message above shows how far it got."
    if entry.state == "imported":
        return f"{name} was already imported. {entry.outcome or ''}".strip()
    if entry.state == "failed":
        return (
            f"This import of {name} already ran and did not import: {entry.outcome or ''} "
            "Send the file again once it is fixed."
        )
    if entry.state == "cancelled":
        return (
            f"You cancelled this import, so nothing was imported. Send {name} again to import it."
        )
    if entry.state == "expired":
        return (
            f"This check of {name} is more than {KEEP_SECONDS // 60} minutes old, so journey "
            "deleted its copy. Send the file again to import it."
        )
    return f"{name} is waiting for its Import button."


@dataclass
class ImportProgress:
    """Lines read so far, written by the import thread, read by the loop."""

    lines: int = 0
    done: int = 0
    total: int = 0
    version: int = 0
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def tick(self, lines: int, done: int, total: int) -> None:
        with self._lock:
            self.lines, self.done, self.total = lines, done, total
            self.version += 1

    def message(self, name: str) -> Message:
        with self._lock:
            lines, done, total = self.lines, self.done, self.total
        return progress_message(name, lines, done, total, time.monotonic() - self.started)


async def run_import(
    deps: Deps, client: AsyncWebClient, entry: Pending, interval: float = INTERVAL
) -> None:
    """The claimed entry imported in the pool, its message edited while lines are read,
    then replaced by the result. The gate is held until the end."""
    progress = ImportProgress()
    channel = entry.channel
    ts = await show(client, channel, entry.ts, progress.message(entry.name))
    loop = asyncio.get_running_loop()
    work = loop.run_in_executor(
        IMPORTS,
        lambda: import_file(
            deps.service.engine,
            entry.workspace,
            entry.path,
            label=entry.name,
            progress=progress.tick,
            options=entry.options,
        ),
    )
    shown = progress.version
    extended = time.monotonic()
    claim_ended = False
    try:
        while True:
            done, _ = await asyncio.wait({work}, timeout=interval)
            if done:
                break
            if time.monotonic() - extended >= CLAIM_EXTEND:
                extended = time.monotonic()
                await in_worker(_extend_claim, deps, entry)
            if ts is not None and progress.version != shown:
                shown = progress.version
                await update(client, channel, ts, progress.message(entry.name))
        try:
            result = work.result()
        except DemoInTheWay:
            text, ok = demo_refusal(entry.workspace), False
        except JourneyError as exc:
            text, ok = str(exc), False
        except Exception as exc:
            final = unexpected_message(exc)
            PENDING.finish(entry, "failed", final.text)
            await show(client, channel, ts, final)
            return
        else:
            # A file of only pending orders writes nothing and is no failure: the
            # summary says what each row was. Bad rows skipped on the person's word
            # are no failure either: the message says how many and where they are.
            skip = entry.options.skip_bad
            ok = result.rejected == 0 or skip
            text = summary_text(result, skip_bad=skip, cli=False)
            if skip and result.rejected:
                text += " " + await tell_skipped(client, channel, ts, entry.name, result)
        PENDING.finish(entry, "imported" if ok else "failed", text)
        # Before the result shows: a click after it finds the claim ended.
        await in_worker(_end_claim, deps, entry, ok)
        claim_ended = True
        log.info(
            "import: file %s for team %s: %s",
            entry.file_id,
            entry.workspace,
            "ok" if ok else "failed",
        )
        await show(client, channel, ts, result_message(entry.name, ok, text))
    finally:
        if entry.state == "importing":  # cancelled by a shutdown: the copy goes too
            PENDING.finish(entry, "failed", IMPORT_CUT_SHORT)
        # Not awaited in a worker: a shutdown may be cancelling this task (one short
        # statement; a claim left behind lapses by itself).
        if not claim_ended:
            _end_claim(deps, entry, entry.state == "imported")
        IMPORT_GATE.leave(entry.workspace)


SKIPPED_FILE = "{stem}-skipped-rows.csv"


async def tell_skipped(
    client: AsyncWebClient, channel: str, ts: str | None, name: str, result: ImportResult
) -> str:
    """The rows skipped as bad, as a CSV file (line, reason) in the thread of the import's
    message (files.uploadV2 with files:write, which the app has for its charts and CSVs);
    returns the sentence for the result. When the upload fails, the sentence lists the
    first ones itself."""
    rows = len(result.errors)
    stem = Path(name).stem or "import"
    filename = SKIPPED_FILE.format(stem=stem)[:200]
    first = "" if rows >= result.rejected else f"the first {rows:,} of "
    try:
        await client.files_upload_v2(
            channel=channel,
            thread_ts=ts,
            content=skipped_rows_csv(result.errors).encode(),
            filename=filename,
            title=f"Rows of {name} skipped as bad",
            initial_comment=str(
                mrkdwn(
                    f"{first}{result.rejected:,} rows of {name} skipped as bad: their line "
                    "in the file (the header is line 1) and why."
                )
            ),
        )
    except Exception as exc:  # SlackApiError, network: the message lists them instead
        log.warning("import: could not upload the skipped rows: %s", type(exc).__name__)
        listed = skipped_lines([(e.line, e.reason) for e in result.errors], result.rejected)
        return f"The bad rows, not imported:\n{listed}"
    which = f"The first {rows:,} bad rows'" if first else "The bad rows'"
    return f"{which} lines and reasons are in {filename}, in this message's thread."


def start_import(
    deps: Deps, client: AsyncWebClient, entry: Pending, interval: float = INTERVAL
) -> asyncio.Task[None]:
    """`run_import` as a task of its own (the click's listener returns at once); a
    shutdown that cannot wait for it tells the person in the DM."""
    task = asyncio.ensure_future(run_import(deps, client, entry, interval))
    _running.add(task)
    task.add_done_callback(_running.discard)

    async def farewell(text: str) -> None:
        await post(client, entry.channel, note_message(text))

    INFLIGHT.adopt(task, "your import", farewell, IMPORT_CUT_SHORT)
    return task


def holder() -> str:
    """This replica in an import claim: hostname:pid, at most 64 characters."""
    return f"{socket.gethostname()}:{os.getpid()}"[-64:]


def _claim_args(entry: Pending) -> tuple[str, str, str]:
    return entry.workspace, entry.file_id, entry.sha[:32]


async def claim_import(deps: Deps, entry: Pending) -> tuple[str, bool] | None:
    """Claim the entry's file in the database every replica shares (journey/imports/
    claims.py): None when this replica may import it, else the words for the click and
    whether the file was imported already."""
    state = await in_worker(claim, deps.service.engine, *_claim_args(entry), holder())
    if state is None:
        return None
    if state == IMPORTED:
        return (
            f"{entry.name} was already imported, by an earlier click on this check. Send "
            "the file again to import it anew (the same rows change nothing).",
            True,
        )
    return (
        f"{entry.name} is already being imported (by another journey server, where the "
        "first click went): the message above shows how far it got.",
        False,
    )


def _end_claim(deps: Deps, entry: Pending, imported: bool) -> None:
    try:
        finish_claim(deps.service.engine, *_claim_args(entry), holder(), imported)
    except Exception as exc:  # the claim then lapses by itself (CLAIM seconds)
        log.warning("import: could not end the claim of file %s (%s)", entry.file_id, exc)


def _extend_claim(deps: Deps, entry: Pending) -> None:
    try:
        if not extend_claim(deps.service.engine, *_claim_args(entry), holder()):
            log.warning("import: the claim of file %s lapsed while importing", entry.file_id)
    except Exception as exc:
        log.warning("import: could not extend the claim of file %s (%s)", entry.file_id, exc)


async def claim_and_start(
    deps: Deps, client: AsyncWebClient, entry: Pending, interval: float = INTERVAL
) -> str | None:
    """An entry this process claimed (PENDING) and let through its gate: claimed in the
    database too, then imported in the background. None when it started, else the words
    why not (another replica imports it, or did); the gate is left then."""
    try:
        lost = await claim_import(deps, entry)
    except Exception as exc:
        IMPORT_GATE.leave(entry.workspace)
        PENDING.release(entry)
        return unexpected_message(exc).text
    if lost is not None:
        IMPORT_GATE.leave(entry.workspace)
        words, imported = lost
        if imported:
            PENDING.finish(entry, "imported", words)
        else:
            PENDING.release(entry)
        log.info("import: file %s is claimed by another replica", entry.file_id)
        return words
    start_import(deps, client, entry, interval)
    return None


def gate_for_import(workspace: str) -> str | None:
    """The gate for an Import click: None when let in, else the words for a click."""
    busy = _gate(workspace)
    if busy == BUSY:
        return BUSY_CLICK.format(minutes=KEEP_SECONDS // 60)
    return busy


def refetch(deps: Deps, file: SlackFile, token: str, sha: str, max_bytes: int) -> Path:
    """In the import pool: the file downloaded again, kept only if it is the same bytes
    that were checked (else FileRefused)."""
    path = PENDING.new_path()
    got = download(file, token, path, max_bytes=max_bytes, api_url=deps.settings.api_url)
    if not sha or not got.startswith(sha):
        path.unlink(missing_ok=True)
        raise FileRefused(
            f"{file.name} in Slack is no longer the file journey checked, so nothing was "
            "imported. Send it again to see what it holds now."
        )
    return path


async def import_elsewhere_checked(
    deps: Deps,
    client: AsyncWebClient,
    context: AsyncBoltContext,
    value: dict[str, Any],
    user: str,
    channel: str,
    ts: str | None,
    interval: float = INTERVAL,
) -> str | None:
    """An *Import* click for a check this process never saw (another replica ran it, or
    journey restarted): fetch the file from Slack again, make sure it is the same bytes,
    and import it in the background. None when it started, else the words why not."""
    entry_id, file_id, sha = (
        str(value.get("i") or ""),
        str(value.get("f") or ""),
        str(value.get("s") or ""),
    )
    checked_at = value.get("t")
    if not entry_id or not file_id or not isinstance(checked_at, int):
        return late_answer(None)
    if time.time() - checked_at > KEEP_SECONDS:
        return (
            f"This check is more than {KEEP_SECONDS // 60} minutes old, so it no longer "
            "counts. Send the file again to import it."
        )
    workspace = authorized_workspace(context)
    try:
        file = await file_info(client, file_id)
    except FileRefused as exc:
        return str(exc)
    if file.user != user:
        return "Only the person who sent this file can import it."
    busy = gate_for_import(workspace)
    if busy is not None:
        return busy
    entry = Pending(
        entry_id,
        workspace,
        user,
        channel,
        file.id,
        file.name,
        PENDING.new_path(),  # not made yet: refetch fills the copy in
        file.size,
        time.time(),
        sha=sha,
        options=ImportOptions.from_compact(value.get("o")),
    )
    started = claimed = False
    try:
        if not PENDING.adopt(entry):
            return late_answer(PENDING.get(entry_id))
        entry.ts = ts
        lost = await claim_import(deps, entry)
        if lost is not None:
            PENDING.drop(entry)
            log.info("import: file %s is claimed by another replica", file.id)
            return lost[0]
        claimed = True
        token = context.bot_token or client.token or ""
        max_bytes = int(deps.settings.import_max_mb * 1_000_000)
        entry.path = await in_pool(IMPORTS, refetch, deps, file, token, sha, max_bytes)
        log.info("import: file %s fetched again for a check another process ran", file.id)
        start_import(deps, client, entry, interval)  # it leaves the gate when it ends
        started = True
        return None
    except FileRefused as exc:
        PENDING.finish(entry, "failed", str(exc))
        return str(exc)
    except Exception as exc:
        message = unexpected_message(exc)
        PENDING.finish(entry, "failed", message.text)
        return message.text
    finally:
        if not started:
            if claimed:
                await in_worker(_end_claim, deps, entry, False)
            IMPORT_GATE.leave(workspace)
