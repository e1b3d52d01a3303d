"""The Slack side of digests and alerts: journey.schedule's DeliveryPort over the Web API.

`run_due` is synchronous and runs in a worker thread (bot/posting/loop.py), so this
port uses slack_sdk's synchronous WebClient, with the same base URL and the same
kind of retry handlers as the listeners' client (bot/app.py): a 429 is waited
out for its Retry-After by slack_sdk's RateLimitErrorRetryHandler, connection
errors and 5xx answers are retried by the library.

What one delivery does:

1. Find the workspace's bot token (`TokenLookup`: SLACK_BOT_TOKEN in single-
   workspace mode, the installation store in OAuth mode).
2. A pause notice goes to the subscriber's DM (conversations.open).
3. When an earlier attempt posted and recorded the message's ts (`posted_ref`:
   `on_posted` runs the moment chat.postMessage answers), answer ok: nothing is
   posted and Slack is not asked. When an earlier attempt may have posted without
   recording it (`may_have_been_sent`: its answer was lost), look for the
   delivery's idempotency key (message metadata) in one page of 15 messages of the
   channel's history since the first attempt began posting: Slack gives
   apps distributed outside the Marketplace one history call a minute and 15
   messages a call. Rate-limited: retry later without posting (the mark stays).
   History unreadable, or a direct message (that would need im:history, which
   journey does not ask for): post anyway, at-least-once.
4. Pace posts to one message per second per channel (Slack's chat.postMessage
   limit), then chat.postMessage with the key in the message's `metadata`.
5. `not_in_channel`: join the channel once (public channels; needs
   channels:join) and post again.
5a. Before a digest or an alert is posted, conversations.info: a channel shared with
   another workspace or organization (or about to be: bot.guard.access.shared_outside)
   gets no customer data; the delivery is permanent with SHARED_CHANNEL_PAUSE, so the
   digest is paused and its subscriber told, or the alert rule turned off and whoever
   set it told by DM (`Delivery.set_by`). A failed check is mapped like a failed post
   (permanent or retryable), never posted past.
6. A digest with a funnel gets its funnel chart uploaded as a reply in its thread
   (files:write). Best effort: the text is already posted and is the digest, so a
   missing scope or a failed upload is logged and the delivery is still ok (never
   retried, so a chart problem can never post the text twice). Only the attempt
   that posted the text uploads the chart: one that finds the text already there
   (`may_have_been_sent`) does not.
7. Map the outcome: ok (with the message ts), permanent (the channel or the app
   is gone: the core pauses the subscription and DMs its subscriber), or
   retryable (rate limits, timeouts, Slack errors).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.blocks.digest import (
    alert_message,
    alert_stopped_message,
    digest_message,
    giveup_notice_message,
    pause_notice_message,
)
from bot.blocks.help import in_dm
from bot.blocks.message import MAX_BLOCKS, Message, clip, context
from bot.blocks.mrkdwn import Mrkdwn, md
from bot.guard.access import SHARED_CHANNEL_PAUSE, shared_outside
from bot.retries import (
    LoggedConnectionErrorRetryHandler,
    LoggedRateLimitErrorRetryHandler,
    LoggedServerErrorRetryHandler,
)
from bot.slack_errors import explain
from journey.schedule.digests import Digest
from journey.schedule.runner import NOTICES, Delivery, DeliveryResult
from journey.schedule.syncs import PausedSource

log = logging.getLogger("journey.bot.delivery")

EVENT_TYPE = "journey_delivery"
# A "may have been sent" check reads one page of the channel's history, from a minute
# before the first attempt began posting (clock skew) to now, newest first. 15 is the most
# Slack gives an app distributed outside the Marketplace per call, and it allows one call
# a minute (https://docs.slack.dev/reference/methods/conversations.history, since 29 May
# 2025). Digest and alert channels are quiet; in a channel with more than 15 messages
# since then the digest is posted again (at-least-once, logged).
HISTORY_LIMIT = 15
HISTORY_WINDOW_BEFORE = timedelta(minutes=1)
# Returned by _find when Slack rate-limited the history read.
RATE_LIMITED = "ratelimited"
# Well under the core's 5-minute lease (see journey.schedule.leases).
HTTP_TIMEOUT = 20
MIN_INTERVAL = 1.0  # seconds between two posts in one channel
# A 429 asking to wait longer than this is not waited out in the tick's thread (which
# would hold every other channel's digest up): the delivery is retried after it.
MAX_INLINE_WAIT = 2.0

# The channel or the app is gone: retrying cannot help until a person acts.
PERMANENT = frozenset(
    {
        "is_archived",
        "channel_not_found",
        "not_in_channel",
        "account_inactive",
        "token_revoked",
        "invalid_auth",
        "not_authed",
        "missing_scope",
        "team_access_not_granted",
        "ekm_access_denied",
        "restricted_action",
        "user_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "app_uninstalled",
        "no_installation",
    }
)
# Chart uploads refused for want of permission: expected on installs without files:write.
NO_UPLOAD = frozenset(
    {"missing_scope", "not_allowed", "not_allowed_token_type", "no_permission", "restricted_action"}
)
# Our message was refused as too big or malformed: post it again as plain text.
BAD_BLOCKS = frozenset({"invalid_blocks", "msg_blocks_too_long", "invalid_blocks_format"})

TokenLookup = Callable[[str], "str | None"]
NO_INSTALL = (
    "journey is not installed in this workspace any more (or its access was revoked): "
    "an admin needs to reinstall the app."
)


def static_token(token: str) -> TokenLookup:
    """Single-workspace mode: SLACK_BOT_TOKEN for every delivery."""
    return lambda _workspace_id: token


def async_token_lookup(
    find: Callable[[str], Awaitable[str | None]],
    loop: asyncio.AbstractEventLoop,
    timeout: float = 60,
) -> TokenLookup:
    """OAuth mode: run an async lookup (the installation store, with token rotation)
    on the bot's event loop from the scheduler's worker thread."""

    def lookup(workspace_id: str) -> str | None:
        future = asyncio.run_coroutine_threadsafe(find(workspace_id), loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise

    return lookup


def authorize_lookup(authorize: Any) -> Callable[[str], Awaitable[str | None]]:
    """The bot token of a workspace through bot.install.authorize.DatabaseAuthorize, which reads
    the encrypted installation and refreshes a rotating token under the database lock."""

    async def find(workspace_id: str) -> str | None:
        result = await authorize.authorize(enterprise_id=None, team_id=workspace_id)
        return None if result is None else result.bot_token

    return find


class Pacer:
    """At most one post per `interval` seconds per (workspace, channel), across threads."""

    def __init__(
        self,
        interval: float = MIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        self._next: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def wait(self, workspace_id: str, channel_id: str) -> float:
        """Reserve the channel's next slot and sleep until it; returns the seconds slept."""
        key = (workspace_id, channel_id)
        with self._lock:
            now = self.clock()
            at = max(now, self._next.get(key, now))
            self._next[key] = at + self.interval
        wait = at - now
        if wait > 0:
            self.sleep(wait)
        return wait

    def posted(self, workspace_id: str, channel_id: str) -> None:
        """Count the interval from when Slack answered: the post reached Slack after
        the slot was reserved, so the next one must not follow it more closely."""
        key = (workspace_id, channel_id)
        with self._lock:
            self._next[key] = max(self._next.get(key, 0.0), self.clock() + self.interval)


def message_for(delivery: Delivery) -> Message:
    if delivery.kind == "digest" and delivery.digest is not None:
        return digest_message(delivery.digest, late=delivery.late)
    if delivery.kind == "alert" and delivery.alert is not None:
        return alert_message(delivery.alert, late=delivery.late)
    if delivery.kind == "pause_notice" and delivery.notice is not None:
        return in_dm(pause_notice_message(delivery.notice))
    if delivery.kind == "giveup_notice" and delivery.notice is not None:
        return in_dm(giveup_notice_message(delivery.notice, delivery.scheduled_at))
    raise ValueError(f"nothing to post in a {delivery.kind} delivery")


def chart_alt_text(digest: Digest) -> str:
    """What the funnel chart shows, in words, for screen readers (Slack's alt_txt)."""
    funnel = digest.funnel
    if funnel is None:
        return "Funnel chart"
    stages = ", ".join(f"{s.stage.replace('_', ' ')} {s.reached:,}" for s in funnel.stages)
    return clip(f"Funnel of {funnel.period.label}: {stages}.", 1000)


def _error(exc: SlackApiError) -> str:
    return str(exc.response.get("error") or "unknown_error")


class SlackDelivery:
    """The DeliveryPort: call it with a Delivery, get a DeliveryResult."""

    def __init__(
        self,
        tokens: TokenLookup,
        *,
        base_url: str = WebClient.BASE_URL,
        pacer: Pacer | None = None,
        timeout: int = HTTP_TIMEOUT,
        rate_limit_retries: int = 2,
    ) -> None:
        self.tokens = tokens
        self.base_url = base_url
        self.pacer = pacer or Pacer()
        self.timeout = timeout
        self.rate_limit_retries = rate_limit_retries

    def client(self, token: str, rate_limit_retries: int | None = None) -> WebClient:
        """A client with slack_sdk's retry handlers; `rate_limit_retries=0` for calls whose
        Retry-After is too long to wait for in the scheduler's thread (history: 60 s)."""
        retries = self.rate_limit_retries if rate_limit_retries is None else rate_limit_retries
        return WebClient(
            token=token,
            base_url=self.base_url,
            timeout=self.timeout,
            retry_handlers=[
                LoggedConnectionErrorRetryHandler(max_retry_count=1),
                LoggedRateLimitErrorRetryHandler(max_retry_count=retries, max_wait=MAX_INLINE_WAIT),
                LoggedServerErrorRetryHandler(max_retry_count=1),
            ],
        )

    def __call__(self, delivery: Delivery) -> DeliveryResult:
        try:
            token = self.tokens(delivery.workspace_id)
        except Exception as exc:
            log.warning("no token for %s: %s", delivery.workspace_id, type(exc).__name__)
            return DeliveryResult.retryable(f"could not read the workspace's token: {exc}", False)
        if not token:
            return DeliveryResult.permanent(NO_INSTALL)
        client = self.client(token)
        try:
            result = self._deliver(client, delivery, self.client(token, rate_limit_retries=0))
        except SlackApiError as exc:
            result = self._failed(exc, delivery)
        except Exception as exc:  # timeouts, connection errors: the post may have landed
            log.warning("delivery %s failed: %s", delivery.idempotency_key, type(exc).__name__)
            return DeliveryResult.retryable(f"could not reach Slack ({type(exc).__name__})")
        if result.status == "permanent" and delivery.kind == "alert" and delivery.set_by:
            self._tell_alert_stopped(client, delivery, result.reason or "")
        return result

    def _tell_alert_stopped(self, client: WebClient, delivery: Delivery, reason: str) -> None:
        """DM whoever pointed the alert at its channel that the rule is now off (the core
        turns it off on a permanent result). Best effort: the rule's reason stays in
        `/journey alerts` and the App Home whatever happens here."""
        kind = delivery.alert.kind if delivery.alert is not None else "alert"
        message = in_dm(alert_stopped_message(kind, delivery.channel_id, reason))
        try:
            dm = client.conversations_open(users=delivery.set_by)["channel"]["id"]
            client.chat_postMessage(channel=dm, **message.payload())
        except Exception as exc:
            log.warning(
                "could not tell %s that alert %s stopped: %s",
                delivery.set_by,
                delivery.idempotency_key,
                exc,
            )

    def _shared_refusal(self, client: WebClient, channel: str) -> str | None:
        """SHARED_CHANNEL_PAUSE when conversations.info says someone outside the workspace
        reads `channel`; None when it may be posted to. Raises SlackApiError when Slack
        refuses the look-up (mapped like a refused post: never posted past)."""
        info = client.conversations_info(channel=channel)
        return SHARED_CHANNEL_PAUSE if shared_outside(info.get("channel") or {}) else None

    # ---- the steps ------------------------------------------------------------

    def _deliver(
        self, client: WebClient, delivery: Delivery, history: WebClient | None = None
    ) -> DeliveryResult:
        if delivery.posted_ref:
            # An earlier attempt posted and recorded the ts before it failed: our own
            # database knows, no need to ask Slack.
            log.info("%s was already posted (ts %s)", delivery.idempotency_key, delivery.posted_ref)
            return DeliveryResult.ok(delivery.posted_ref)
        channel = delivery.channel_id
        if delivery.kind in NOTICES:
            channel = client.conversations_open(users=delivery.channel_id)["channel"]["id"]
        elif (refusal := self._shared_refusal(client, channel)) is not None:
            log.warning(
                "%s not posted: %s is shared outside the workspace",
                delivery.idempotency_key,
                channel,
            )
            return DeliveryResult.permanent(refusal)
        if delivery.may_have_been_sent and channel.startswith("D"):
            # A direct message: reading its history needs im:history, which journey does
            # not ask for. An unconfirmed notice or DM digest is posted again (at-least-once).
            log.info("%s may be in DM %s already; posting again", delivery.idempotency_key, channel)
        elif delivery.may_have_been_sent:
            found = self._find(history or client, channel, delivery)
            if found == RATE_LIMITED:
                # Nothing posted; the "may have been sent" mark stays, so the next attempt
                # (minutes later, past Slack's one-a-minute window) checks again.
                return DeliveryResult.retryable(
                    "Slack allows reading a channel's history once a minute: checking for an "
                    "earlier post again later",
                )
            if found is not None:
                log.info("%s was already posted (ts %s)", delivery.idempotency_key, found)
                return DeliveryResult.ok(found)
        payload = message_for(delivery).payload()
        try:
            ts = self._post(client, delivery, channel, payload)
        except SlackApiError as exc:
            error = _error(exc)
            if error == "not_in_channel" and self._join(client, channel):
                ts = self._post(client, delivery, channel, payload)
            elif error in BAD_BLOCKS:
                log.error(
                    "Slack refused the blocks of %s (%s); posting text only",
                    delivery.idempotency_key,
                    error,
                )
                payload = {"text": payload["text"]}
                ts = self._post(client, delivery, channel, payload)
            else:
                raise
        if delivery.kind == "digest" and ts:
            self._attach_chart(client, delivery, channel, ts, payload)
        return DeliveryResult.ok(ts)

    def _post(
        self, client: WebClient, delivery: Delivery, channel: str, payload: dict[str, Any]
    ) -> str:
        self.pacer.wait(delivery.workspace_id, channel)
        try:
            response = client.chat_postMessage(
                channel=channel,
                unfurl_links=False,
                unfurl_media=False,
                metadata={
                    "event_type": EVENT_TYPE,
                    "event_payload": {"key": delivery.idempotency_key, "kind": delivery.kind},
                },
                **payload,
            )
        finally:
            self.pacer.posted(delivery.workspace_id, channel)
        ts = str(response.get("ts") or "")
        if ts and delivery.on_posted is not None:
            try:
                delivery.on_posted(ts)  # before the chart or anything else can fail
            except Exception as exc:  # the post stands; a retry falls back on the history
                log.warning("could not record %s's ts: %s", delivery.idempotency_key, exc)
        return ts

    def _attach_chart(
        self,
        client: WebClient,
        delivery: Delivery,
        channel: str,
        thread_ts: str,
        posted: dict[str, Any],
    ) -> bool:
        """Upload the digest's funnel chart into its thread; True if it was posted.

        Shared into the digest's own channel and thread (`channel` + `thread_ts`), so
        everyone who sees the digest sees the chart; no block references the file.
        Never raises: whatever happens here, the digest text is posted and the
        delivery is ok, so the core will not retry it (and post the text again). A
        failed upload adds one line to the digest saying the chart could not be attached.
        """
        digest = delivery.digest
        if digest is None or digest.funnel is None or digest.funnel.entered <= 0:
            return False
        try:
            from journey.render.charts import funnel_chart

            png = funnel_chart(digest.funnel)
        except Exception as exc:  # matplotlib missing or a rendering bug: text only
            log.warning("no chart for %s: %s", delivery.idempotency_key, type(exc).__name__)
            return False
        self.pacer.wait(delivery.workspace_id, channel)
        try:
            client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                content=png,
                filename="funnel.png",
                title=f"Funnel · {digest.period.label}",
                alt_txt=chart_alt_text(digest),
                request_file_info=False,
            )
        except SlackApiError as exc:
            error = _error(exc)
            if error in NO_UPLOAD:
                log.info("digest chart not uploaded in %s (%s): text only", channel, error)
                line = (
                    "The chart could not be attached: journey needs the `files:write` "
                    "permission (an admin can add it under OAuth & Permissions and reinstall)."
                )
            else:
                log.warning("digest chart upload failed in %s: %s", channel, error)
                line = f"The chart could not be attached ({error})."
        except Exception as exc:  # SlackRequestError, timeouts, connection errors
            log.warning("digest chart upload failed in %s: %s", channel, type(exc).__name__)
            line = "The chart could not be attached: Slack could not be reached."
        else:
            return True
        finally:
            self.pacer.posted(delivery.workspace_id, channel)
        self._add_line(client, channel, thread_ts, posted, line)
        return False

    def _add_line(
        self, client: WebClient, channel: str, ts: str, posted: dict[str, Any], line: str
    ) -> None:
        """Edit our posted message to end with `line` (best effort, logged on failure).

        `posted` is the message as we sent it, already escaped; `line` goes through the
        same mrkdwn builders as every other text (it may quote Slack's error)."""
        line_block = context(line).to_dict()
        blocks = [*(posted.get("blocks") or [])[: MAX_BLOCKS - 1], line_block]
        try:
            if posted.get("blocks"):
                client.chat_update(channel=channel, ts=ts, text=posted["text"], blocks=blocks)
            else:
                text = md("{}\n{}", Mrkdwn(posted["text"]), line)
                client.chat_update(channel=channel, ts=ts, text=str(text))
        except Exception as exc:
            log.warning("could not add a line to %s in %s: %s", ts, channel, type(exc).__name__)

    def _find(self, client: WebClient, channel: str, delivery: Delivery) -> str | None:
        """The ts of our message tagged with the delivery's key in the channel, None when
        it is not there (or the history cannot be read: then post, at-least-once), or
        RATE_LIMITED.

        One page of at most 15 messages (Slack's cap outside the Marketplace), from a
        minute before the first attempt began posting. Our message is recognised by its `metadata`
        (event_type and the key), which only include_all_metadata returns.
        """
        key = delivery.idempotency_key
        window: dict[str, str] = {}
        if delivery.posting_since is not None:
            start = delivery.posting_since - HISTORY_WINDOW_BEFORE
            window = {"oldest": f"{start.timestamp():.6f}"}
        try:
            response = client.conversations_history(
                channel=channel, limit=HISTORY_LIMIT, include_all_metadata=True, **window
            )
        except SlackApiError as exc:
            error = _error(exc)
            if error == "ratelimited" or getattr(exc.response, "status_code", 200) == 429:
                log.info("history of %s rate-limited; checking for %s later", channel, key)
                return RATE_LIMITED
            log.warning(
                "could not read the history of %s to check for %s (%s); posting again "
                "(at-least-once)",
                channel,
                key,
                error,
            )
            return None
        for message in response.get("messages") or []:
            meta = message.get("metadata") or {}
            if (
                meta.get("event_type") == EVENT_TYPE
                and (meta.get("event_payload") or {}).get("key") == key
            ):
                return str(message.get("ts") or "") or "found"
        if response.get("has_more"):
            log.warning(
                "%s not among the first %s messages of %s in its window; posting again "
                "(at-least-once)",
                key,
                HISTORY_LIMIT,
                channel,
            )
        return None

    def _join(self, client: WebClient, channel: str) -> bool:
        """Join a public channel once; False for private channels or without channels:join."""
        try:
            client.conversations_join(channel=channel)
        except SlackApiError as exc:
            log.info("could not join %s to post: %s", channel, _error(exc))
            return False
        log.info("joined %s to post a digest or alert", channel)
        return True

    def _failed(self, exc: SlackApiError, delivery: Delivery) -> DeliveryResult:
        error = _error(exc)
        status = getattr(exc.response, "status_code", 200)
        if error in PERMANENT:
            reason = clip(explain(exc), 290)
            log.warning("delivery %s failed for good: %s", delivery.idempotency_key, error)
            return DeliveryResult.permanent(reason)
        # Slack answered with an error: nothing was posted by this call.
        if status == 429 or error == "ratelimited":
            wait = _retry_after(exc)
            log.warning(
                "delivery %s rate limited by Slack (Retry-After %ss): other channels go on",
                delivery.idempotency_key,
                wait if wait is not None else "?",
            )
            return DeliveryResult.retryable("rate limited by Slack", posted=False, retry_after=wait)
        return DeliveryResult.retryable(f"Slack answered {error} (HTTP {status})", posted=False)


def _retry_after(exc: SlackApiError) -> float | None:
    """The seconds a 429 asked to wait, when it said."""
    headers = getattr(exc.response, "headers", None) or {}
    raw = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    try:
        return float(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


class PauseTeller:
    """Tells a workspace that a scheduled sync paused one of its sources (called from the
    sync loop's thread): a direct message to who stored the credential, else a post in
    the alerts channel (joined first if it is public and journey is not in it yet,
    channels:join). A failure is logged, never raised: the source's row still says
    what happened, for `/journey sources`."""

    def __init__(self, tokens: TokenLookup, *, base_url: str = WebClient.BASE_URL) -> None:
        self.delivery = SlackDelivery(tokens, base_url=base_url)

    def __call__(self, notice: PausedSource) -> bool:
        from bot.blocks.connect import LABELS
        from bot.blocks.sync import source_paused_message

        if notice.user_id is None and notice.channel_id is None:
            log.warning("source %s paused; nobody to tell in Slack", notice.name)
            return False
        message = source_paused_message(
            notice.name, LABELS.get(notice.kind, notice.kind), notice.reason
        )
        try:
            token = self.delivery.tokens(notice.workspace_id)
            if not token:
                return False
            client = self.delivery.client(token)
            channel = notice.channel_id
            if notice.user_id is not None:
                channel = client.conversations_open(users=notice.user_id)["channel"]["id"]
                message = in_dm(message)
            try:
                client.chat_postMessage(channel=channel, **message.payload())
            except SlackApiError as exc:
                # Slack never adds the bot to a channel: join a public alerts channel once,
                # as a digest or alert delivery does.
                if _error(exc) != "not_in_channel" or not self.delivery._join(client, channel):
                    raise
                client.chat_postMessage(channel=channel, **message.payload())
            return True
        except Exception as exc:
            log.warning("could not tell %s about paused source: %s", notice.workspace_id, exc)
            return False
