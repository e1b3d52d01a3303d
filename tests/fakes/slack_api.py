"""A fake Slack Web API served over real HTTP on 127.0.0.1, for the bot's tests.

Why a real server and not mocks: the bot talks to Slack through slack_sdk's WebClient
and AsyncWebClient, Bolt's `respond()` and slack_sdk's OAuth/token-rotation helpers.
Their behaviour on errors (429 + Retry-After, retry handlers, `files_upload_v2`'s
three-step upload to an absolute URL, HTTP Basic auth on `oauth.v2.access`) only shows
when the real clients run against something that answers like Slack. bolt-python's own
test server answers `{"ok": true}` to everything; this one checks what Slack checks
(scopes, with installations getting manifest.yml's unless told otherwise; channel
membership, never granted by itself; Block Kit limits; image blocks only of files
shared where the message goes; conversations.history at the limits of an app
distributed outside the Marketplace; response-URL use counts; single-use refresh
tokens) and records every call so tests can assert on what was sent, and so
tests/test_slack_scopes.py can check every method the suite called against the manifest.

Point a client at it with `WebClient(token, base_url=fake.api_url)` (or
`fake.web_client()`), give payloads `fake.response_url(name)` as their `response_url`,
and use the `fake_slack` pytest fixture (import it into a conftest).

Conventions follow Slack: API errors are HTTP 200 with `{"ok": false, "error": ...}`;
rate limits are HTTP 429 with `Retry-After` and `{"ok": false, "error": "ratelimited"}`;
every API response made with a known token carries `X-OAuth-Scopes`.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
import yaml
from slack_sdk import WebClient
from slack_sdk.web.async_client import AsyncWebClient

DEFAULT_TEAM_ID = "T0JOURNEY"
DEFAULT_TEAM_NAME = "Journey Test"
DEFAULT_BOT_TOKEN = "xoxb-1111-2222-fakejourneybot"
DEFAULT_BOT_USER_ID = "U0JBOT"
DEFAULT_BOT_ID = "B0JBOT"
DEFAULT_APP_ID = "A0JOURNEY"
DEFAULT_CLIENT_ID = "1111.2222"
DEFAULT_CLIENT_SECRET = "fake-client-secret"
#: The app manifest the bot ships with; installations in the fake get its bot scopes unless
#: a test says otherwise, so a call the manifest does not cover fails here as in Slack.
MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"


def manifest() -> dict[str, Any]:
    """manifest.yml, parsed (the same file people paste into Slack's app settings)."""
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


def manifest_scopes() -> tuple[str, ...]:
    """The bot scopes manifest.yml asks for (`oauth_config.scopes.bot`)."""
    return tuple(manifest()["oauth_config"]["scopes"]["bot"])


#: What the journey bot asks for at install time; tokens get these unless told otherwise.
DEFAULT_BOT_SCOPES: tuple[str, ...] = manifest_scopes()

# Limits Slack enforces (see /work/shared/notes/slack.md). Module constants so tests can
# build payloads right at (or one past) the edge.
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000
MAX_ID = 255  # block_id, action_id, callback_id, external_id
MAX_ALT_TEXT = 2000
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_OPTIONS = 100
MAX_MODAL_TITLE = 24
MAX_PRIVATE_METADATA = 3000
MAX_TEXT = 40_000  # chat text beyond this is truncated, not rejected
#: Serialized (compact JSON) size of `blocks` past which Slack answers msg_blocks_too_long,
#: even when each block is within its own limits.
BLOCKS_JSON_LIMIT = 12_000
RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_LIFETIME = 30 * 60
TRIGGER_LIFETIME = 3.0  # seconds a trigger_id can open a modal
TOKEN_LIFETIME = 43_200  # 12 h, what Slack gives rotating tokens

#: Pseudo-method names under which non-API traffic is recorded and can be faulted.
UPLOAD = "upload"
RESPONSE_URL = "response_url"
#: GETs of a file's `url_private` / `url_private_download`.
FILE_DOWNLOAD = "file_download"
#: What files.slack.com answers a download without a valid bearer token of the file's
#: workspace carrying `files:read`: not a 401 but Slack's sign-in page, HTTP 200, as HTML
#: (https://gist.github.com/ErikKalkoken/f3ab28617d5099531ded865d111dbac1, comments: "If
#: you try to access a file without the right permissions / token then you get a HTML
#: asking you to login"). A client that only checks the status saves this page as the file.
LOGIN_PAGE = (
    '<!DOCTYPE html><html lang="en-US"><head><meta charset="utf-8">'
    "<title>Slack</title></head><body><h1>Sign in to your workspace</h1>"
    '<form action="/signin" method="post"><input name="domain"></form></body></html>'
)
#: Block Kit's file_input: "a 10MB file size limit", 1 to 10 files
#: (https://docs.slack.dev/reference/block-kit/block-elements/file-input-element/).
FILE_INPUT_MAX_BYTES = 10 * 1024 * 1024

#: Scopes each method needs with a bot token; any one of a tuple's scopes is enough (Slack's
#: `needed` lists them comma-separated); an empty tuple means the method needs none. Every
#: method the fake serves is listed, so the scope test (tests/test_slack_scopes.py) knows
#: each one. From each method's page, https://docs.slack.dev/reference/methods/<method>,
#: "Scopes > Bot token" (checked December 2026):
REQUIRED_SCOPES: dict[str, tuple[str, ...]] = {
    "api.test": (),  # no token at all
    "auth.test": (),  # "no scope required"
    "auth.revoke": (),  # no scope required
    "apps.uninstall": (),  # client_id + client_secret, no scope
    "oauth.v2.access": (),  # client credentials, no token
    "apps.connections.open": ("connections:write",),  # app-level (xapp-) token only
    "chat.postMessage": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.delete": ("chat:write",),
    "views.open": (),  # views.*: "no scope required" (a trigger_id or interactivity pointer)
    "views.update": (),
    "views.publish": (),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
    "users.info": ("users:read",),
    "usergroups.users.list": ("usergroups:read",),
    "conversations.info": ("channels:read", "groups:read", "im:read", "mpim:read"),
    "conversations.join": ("channels:join",),
    # Opening a DM with a bot token: im:write (mpim:write for a group DM; channels:manage
    # and groups:write only matter for user tokens creating channels).
    "conversations.open": ("im:write", "mpim:write"),
    # The history scope of the conversation's type, checked per channel in the handler
    # (channels:history for C..., groups:history for private, im:history for D...).
    "conversations.history": ("channels:history", "groups:history", "im:history", "mpim:history"),
    # https://api.slack.com/methods/files.info: bot token scope files:read; "Bot user
    # tokens may use this method to access information about files appearing in the
    # channels they belong to".
    "files.info": ("files:read",),
}

#: Session-wide record of the Web API methods called through any FakeSlack:
#: (method, the one scope that call needed or "") -> the test ids (pytest's
#: PYTEST_CURRENT_TEST) that made it. For methods taking one of several scopes the
#: handler notes the one the conversation's type needs. tests/test_slack_scopes.py checks
#: each against REQUIRED_SCOPES and manifest.yml at the end of the session.
METHODS_CALLED: dict[tuple[str, str], set[str]] = {}
#: Per conversation type, the history scope conversations.history needs
#: (https://docs.slack.dev/reference/methods/conversations.history, "Required scopes":
#: "Relevant *:history scope").
HISTORY_SCOPE = {"public": "channels:history", "private": "groups:history", "im": "im:history"}

# conversations.history for apps distributed commercially outside the Slack Marketplace,
# installed since 29 May 2025 (https://docs.slack.dev/reference/methods/conversations.history:
# "rate limited to 1 request per minute. The maximum and default values for the limit
# parameter have both been reduced to 15 objects"; also conversations.replies). Internal
# and Marketplace apps keep Tier 3 and limit up to 999.
NON_MARKETPLACE_HISTORY_LIMIT = 15
NON_MARKETPLACE_HISTORY_INTERVAL = 60.0

KNOWN_BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)
_SELECT_TYPES = frozenset(
    {"static_select", "multi_static_select", "radio_buttons", "checkboxes", "overflow"}
)


# --------------------------------------------------------------------------- records


@dataclass
class Call:
    """One request the fake received, as the client sent it.

    `params` merges query string, form, multipart and JSON body (JSON values keep their
    types; `token` is moved to `token`). `status`/`response` are what the fake answered
    (filled in once the answer is known).
    """

    method: str
    params: dict[str, Any]
    token: str | None
    headers: dict[str, str]
    time: float
    status: int = 0
    response: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """Whether the fake answered ok (HTTP 200 and, for API calls, `"ok": true`)."""
        return self.status == 200 and bool(self.response and self.response.get("ok"))

    @property
    def error(self) -> str | None:
        """The Slack error code answered, if any."""
        return None if self.response is None else self.response.get("error")


@dataclass
class TokenInfo:
    """A token the fake accepts and what it stands for."""

    token: str
    team_id: str
    scopes: list[str]
    user_id: str
    bot_id: str | None
    team_name: str = DEFAULT_TEAM_NAME
    app_id: str = DEFAULT_APP_ID
    revoked: bool = False
    expires_at: float | None = None


@dataclass
class FakeUser:
    """A user as users.info describes it: a member, admin or owner, a guest, someone of
    another team (Slack Connect), a deleted account.

    Shapes from Slack's docs: the user object (https://api.slack.com/types/user: `team_id`,
    `deleted`, `is_admin`, `is_owner`, `is_primary_owner`, `is_restricted` = a guest,
    with `is_ultra_restricted` = a single-channel guest), users.info
    (https://docs.slack.dev/reference/methods/users.info: "When looking up a user
    belonging to a foreign workspace party to a shared channel, you'll find an
    is_stranger boolean attribute") and @slack/web-api's UsersInfoResponse type for
    `enterprise_user` (`id`, `enterprise_id`, `enterprise_name`, `is_admin`, `is_owner`,
    `teams`) on Enterprise Grid. A deleted user keeps its id and flags with
    `deleted: true`.
    """

    id: str
    team_id: str = DEFAULT_TEAM_ID
    name: str = ""
    real_name: str = ""
    is_admin: bool = False
    is_owner: bool = False
    is_primary_owner: bool = False
    is_bot: bool = False
    deleted: bool = False
    tz: str = "Europe/London"
    tz_label: str = "Greenwich Mean Time"
    tz_offset: int = 0
    locale: str = "en-GB"
    is_restricted: bool = False
    is_ultra_restricted: bool = False
    enterprise_id: str | None = None

    def to_api(
        self, include_locale: bool = False, viewer_team: str | None = None
    ) -> dict[str, Any]:
        """The `user` object of a users.info answer, as seen from `viewer_team` (the team of
        the token asking): a user of another team, not in the same Enterprise Grid org,
        is a stranger to it."""
        name = self.name or self.id.lower()
        real = self.real_name or name.title()
        user: dict[str, Any] = {
            "id": self.id,
            "team_id": self.team_id,
            "name": name,
            "deleted": self.deleted,
            "color": "9f69e7",
            "real_name": real,
            "tz": self.tz,
            "tz_label": self.tz_label,
            "tz_offset": self.tz_offset,
            "profile": {
                "real_name": real,
                "real_name_normalized": real,
                "display_name": name,
                "display_name_normalized": name,
                "team": self.team_id,
            },
            "is_admin": self.is_admin,
            "is_owner": self.is_owner,
            "is_primary_owner": self.is_primary_owner,
            "is_restricted": self.is_restricted or self.is_ultra_restricted,
            "is_ultra_restricted": self.is_ultra_restricted,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
        }
        if self.enterprise_id is not None:
            user["enterprise_user"] = {
                "id": self.id,
                "enterprise_id": self.enterprise_id,
                "enterprise_name": self.enterprise_id,
                "is_admin": self.is_admin,
                "is_owner": self.is_owner,
                "is_primary_owner": self.is_primary_owner,
                "teams": [self.team_id],
            }
        if viewer_team is not None and self.team_id != viewer_team and self.enterprise_id is None:
            user["is_stranger"] = True
        if include_locale:
            user["locale"] = self.locale
        return user


@dataclass
class FakeChannel:
    """A conversation and the bot's relation to it (membership, archival)."""

    id: str
    name: str = ""
    is_member: bool = True
    is_archived: bool = False
    is_private: bool = False
    is_im: bool = False
    deleted: bool = False
    im_user: str | None = None
    is_shared: bool = False
    is_ext_shared: bool = False
    is_org_shared: bool = False
    #: Team ids invited to share the channel (Slack Connect) that have not joined yet.
    pending_shared: list[str] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        """The `channel` object of a conversations.info answer, as Slack's conversation type
        documents it (https://api.slack.com/types/conversation): `is_ext_shared` = part of a
        shared channel with a remote organization (Slack Connect), and then `is_shared` is
        true too; `is_shared` = shared with another workspace; `is_org_shared` = shared
        between workspaces of one Enterprise Grid org; `is_pending_ext_shared` with
        `pending_shared` = invited to be shared with another organization, not yet joined.
        The example there carries all four booleans on every channel."""
        if self.is_im:
            return {
                "id": self.id,
                "created": 1_700_000_000,
                "is_im": True,
                "is_org_shared": False,
                "user": self.im_user,
                "is_archived": False,
            }
        name = self.name or self.id.lower()
        return {
            "id": self.id,
            "name": name,
            "name_normalized": name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "is_archived": self.is_archived,
            "is_general": False,
            "is_shared": self.is_shared or self.is_ext_shared or self.is_org_shared,
            "is_ext_shared": self.is_ext_shared,
            "is_org_shared": self.is_org_shared,
            "is_pending_ext_shared": bool(self.pending_shared),
            "pending_shared": list(self.pending_shared),
            "pending_connected_team_ids": list(self.pending_shared),
            "is_member": self.is_member,
            "created": 1_700_000_000,
            "creator": "U0CREATOR",
            "unlinked": 0,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }


@dataclass
class Message:
    """A message the bot posted (or an ephemeral one, with `ephemeral_user` set)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_ts: str | None
    team_id: str
    bot_id: str | None
    user: str
    params: dict[str, Any]
    truncated: bool = False
    original_length: int = 0
    ephemeral_user: str | None = None
    deleted: bool = False
    updates: int = 0
    files: list[str] = field(default_factory=list)
    revisions: list[str] = field(default_factory=list)  # the text before each chat.update

    def to_api(self) -> dict[str, Any]:
        """The `message` object chat.postMessage/chat.update answer with."""
        out: dict[str, Any] = {
            "type": "message",
            "text": self.text,
            "user": self.user,
            "bot_id": self.bot_id,
            "team": self.team_id,
            "ts": self.ts,
        }
        if self.blocks is not None:
            out["blocks"] = self.blocks
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        return out

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The message `metadata` ({event_type, event_payload}) it was posted with."""
        raw = self.params.get("metadata")
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                return None
        return raw if isinstance(raw, dict) else None


@dataclass
class FakeFile:
    """A file going through files.getUploadURLExternal → upload → completeUploadExternal."""

    id: str
    filename: str
    length: int
    team_id: str
    user: str
    alt_txt: str | None = None
    snippet_type: str | None = None
    data: bytes | None = None
    title: str | None = None
    completed: bool = False
    channels: list[str] = field(default_factory=list)
    initial_comment: str | None = None
    thread_ts: str | None = None
    mimetype: str = ""
    filetype: str = ""
    # Uploaded by a person through a file_input element of this app's modal: the app may
    # read it although it is shared in no conversation.
    via_file_input: bool = False
    deleted: bool = False

    def to_api(
        self, base_url: str, channels: dict[str, FakeChannel] | None = None
    ) -> dict[str, Any]:
        """The file object (https://api.slack.com/types/file) of files.info and
        completeUploadExternal: where it is shared split into `channels` (public),
        `groups` (private) and `ims` (direct messages); `url_private_download` is
        `url_private` with `/download/` before the name."""
        known = channels or {}
        ims = [c for c in self.channels if c.startswith("D")]
        groups = [
            c for c in self.channels if c.startswith("G") or (c in known and known[c].is_private)
        ]
        public = [c for c in self.channels if c not in ims and c not in groups]
        base = f"{base_url}/files-pri/{self.team_id}-{self.id}"
        return {
            "id": self.id,
            "created": 1_700_000_000,
            "timestamp": 1_700_000_000,
            "name": self.filename,
            "title": self.title or self.filename,
            "mimetype": self.mimetype,
            "filetype": self.filetype,
            "user": self.user,
            "user_team": self.team_id,
            "size": len(self.data) if self.data is not None else self.length,
            "mode": "hosted",
            "is_external": False,
            "is_public": bool(public),
            "url_private": f"{base}/{quote(self.filename)}",
            "url_private_download": f"{base}/download/{quote(self.filename)}",
            "permalink": f"{base_url}/files/{self.user}/{self.id}/{quote(self.filename)}",
            "channels": public,
            "groups": groups,
            "ims": ims,
        }


@dataclass
class ResponsePost:
    """A post to a response URL that Slack accepted (what the user would see)."""

    name: str
    payload: dict[str, Any]
    time: float

    @property
    def text(self) -> str | None:
        return self.payload.get("text")

    @property
    def blocks(self) -> list[dict[str, Any]] | None:
        blocks = self.payload.get("blocks")
        return json.loads(blocks) if isinstance(blocks, str) else blocks

    @property
    def response_type(self) -> str:
        """`ephemeral` unless the post asked for `in_channel` (Slack's default)."""
        return self.payload.get("response_type") or "ephemeral"

    @property
    def replace_original(self) -> bool:
        return _truthy(self.payload.get("replace_original"))

    @property
    def delete_original(self) -> bool:
        return _truthy(self.payload.get("delete_original"))


@dataclass
class _ResponseUrl:
    created: float
    channel: str | None = None
    uses: int = 0
    expired: bool = False


@dataclass
class _OAuthCode:
    team_id: str
    team_name: str
    user_id: str
    scopes: list[str]
    redirect_uri: str | None
    used: bool = False


@dataclass
class _RefreshGrant:
    team_id: str
    team_name: str
    scopes: list[str]
    user_id: str
    bot_id: str | None
    used: bool = False


@dataclass
class _Fault:
    kind: str  # "error" | "ratelimit" | "status" | "drop"
    remaining: int
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    retry_after: int = 1
    status: int = 500


@dataclass
class _Delay:
    seconds: float
    remaining: int | None


@dataclass
class _Reply:
    status: int
    body: dict[str, Any] | str
    headers: dict[str, str] = field(default_factory=dict)


class _ApiError(Exception):
    """Raised inside handlers to answer `{"ok": false, "error": ..., **extra}`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


# ------------------------------------------------------------------------ validation


class _BlockChecker:
    """Collects Block Kit violations as Slack words them (`... [json-pointer:/blocks/0]`)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def err(self, message: str, pointer: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    def max_len(self, value: Any, limit: int, pointer: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.err(f"must be less than {limit + 1} characters", pointer)

    def items(self, seq: Any, limit: int, pointer: str, *, minimum: int = 0) -> list[Any]:
        if not isinstance(seq, list):
            self.err("must provide an array", pointer)
            return []
        if len(seq) > limit:
            self.err(f"must be less than {limit + 1} items", pointer)
        if len(seq) < minimum:
            self.err(f"must provide at least {minimum} items", pointer)
        return seq

    def text_obj(self, obj: Any, pointer: str, limit: int, *, plain_only: bool = False) -> None:
        if not isinstance(obj, dict):
            self.err("must provide an object", pointer)
            return
        kind = obj.get("type")
        if kind not in ("plain_text", "mrkdwn"):
            self.err("must be a valid enum value", f"{pointer}/type")
        elif plain_only and kind != "plain_text":
            self.err("must be a valid enum value (plain_text)", f"{pointer}/type")
        text = obj.get("text")
        if not isinstance(text, str):
            self.err("must provide a string", f"{pointer}/text")
            return
        if not text:
            self.err("must be more than 0 characters", f"{pointer}/text")
        self.max_len(text, limit, f"{pointer}/text")

    def element(self, el: Any, pointer: str) -> None:
        if not isinstance(el, dict) or not isinstance(el.get("type"), str):
            self.err("must provide an object with a type", pointer)
            return
        kind = el["type"]
        self.max_len(el.get("action_id"), MAX_ID, f"{pointer}/action_id")
        if kind == "button":
            if "text" not in el:
                self.err("missing required field: text", pointer)
            else:
                self.text_obj(el["text"], f"{pointer}/text", MAX_BUTTON_TEXT, plain_only=True)
            self.max_len(el.get("value"), MAX_BUTTON_VALUE, f"{pointer}/value")
            self.max_len(el.get("url"), MAX_URL, f"{pointer}/url")
            if "style" in el and el["style"] not in ("primary", "danger"):
                self.err("must be a valid enum value", f"{pointer}/style")
        elif kind == "image":
            self.max_len(el.get("alt_text"), MAX_ALT_TEXT, f"{pointer}/alt_text")
            if "alt_text" not in el:
                self.err("missing required field: alt_text", pointer)
        elif kind == "file_input":
            # https://docs.slack.dev/reference/block-kit/block-elements/file-input-element/:
            # max_files "Minimum of 1, maximum of 10"; filetypes an array of extensions;
            # only "inside the input block".
            if "max_files" in el and not (
                isinstance(el["max_files"], int) and 1 <= el["max_files"] <= 10
            ):
                self.err("must be between 1 and 10", f"{pointer}/max_files")
            if "filetypes" in el and not isinstance(el["filetypes"], list):
                self.err("must provide an array", f"{pointer}/filetypes")
            if "/element" not in pointer:
                self.err("file_input is only allowed in an input block", pointer)
        elif kind in _SELECT_TYPES:
            options = el.get("options")
            if options is not None:
                limit = 5 if kind == "overflow" else MAX_OPTIONS
                for i, opt in enumerate(self.items(options, limit, f"{pointer}/options")):
                    op = f"{pointer}/options/{i}"
                    if not isinstance(opt, dict):
                        self.err("must provide an object", op)
                        continue
                    self.text_obj(opt.get("text"), f"{op}/text", MAX_OPTION_TEXT)
                    self.max_len(opt.get("value"), MAX_OPTION_VALUE, f"{op}/value")

    def block(self, block: Any, pointer: str, seen_ids: set[str]) -> None:
        if not isinstance(block, dict):
            self.err("must provide an object", pointer)
            return
        kind = block.get("type")
        if kind not in KNOWN_BLOCK_TYPES:
            self.err(f"unsupported type: {kind}", f"{pointer}/type")
            return
        block_id = block.get("block_id")
        if block_id is not None:
            self.max_len(block_id, MAX_ID, f"{pointer}/block_id")
            if block_id in seen_ids:
                self.err(f"duplicate block_id: {block_id}", f"{pointer}/block_id")
            seen_ids.add(block_id)
        if kind == "section":
            if "text" not in block and "fields" not in block:
                self.err("must provide either text or fields", pointer)
            if "text" in block:
                self.text_obj(block["text"], f"{pointer}/text", MAX_SECTION_TEXT)
            if "fields" in block:
                fields = self.items(block["fields"], MAX_SECTION_FIELDS, f"{pointer}/fields")
                for i, f in enumerate(fields):
                    self.text_obj(f, f"{pointer}/fields/{i}", MAX_FIELD_TEXT)
            if "accessory" in block:
                self.element(block["accessory"], f"{pointer}/accessory")
        elif kind == "header":
            if "text" not in block:
                self.err("missing required field: text", pointer)
            else:
                self.text_obj(block["text"], f"{pointer}/text", MAX_HEADER_TEXT, plain_only=True)
        elif kind == "context":
            elements = self.items(
                block.get("elements"), MAX_CONTEXT_ELEMENTS, f"{pointer}/elements", minimum=1
            )
            for i, el in enumerate(elements):
                ep = f"{pointer}/elements/{i}"
                if isinstance(el, dict) and el.get("type") == "image":
                    self.element(el, ep)
                else:
                    self.text_obj(el, ep, MAX_SECTION_TEXT)
        elif kind == "actions":
            elements = self.items(
                block.get("elements"), MAX_ACTIONS_ELEMENTS, f"{pointer}/elements", minimum=1
            )
            action_ids: set[str] = set()
            for i, el in enumerate(elements):
                self.element(el, f"{pointer}/elements/{i}")
                action_id = el.get("action_id") if isinstance(el, dict) else None
                if action_id is not None:
                    if action_id in action_ids:
                        self.err(
                            f"duplicate action_id: {action_id}",
                            f"{pointer}/elements/{i}/action_id",
                        )
                    action_ids.add(action_id)
        elif kind == "image":
            if "image_url" not in block and "slack_file" not in block:
                self.err("missing required field: image_url", pointer)
            self.max_len(block.get("image_url"), MAX_URL, f"{pointer}/image_url")
            if "alt_text" not in block:
                self.err("missing required field: alt_text", pointer)
            self.max_len(block.get("alt_text"), MAX_ALT_TEXT, f"{pointer}/alt_text")
            if "title" in block:
                self.text_obj(block["title"], f"{pointer}/title", MAX_ALT_TEXT, plain_only=True)
        elif kind == "input":
            if "label" not in block:
                self.err("missing required field: label", pointer)
            else:
                self.text_obj(block["label"], f"{pointer}/label", 2000, plain_only=True)
            if "element" not in block:
                self.err("missing required field: element", pointer)
            else:
                self.element(block["element"], f"{pointer}/element")


def block_errors(blocks: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    """Every Block Kit limit `blocks` breaks, worded like Slack's `errors` list.

    Public so the bot's unit tests can check a renderer's output without a server.
    Does not apply the whole-payload size limit (see `blocks_too_long`).
    """
    checker = _BlockChecker()
    blocks = checker.items(blocks, max_blocks, "/blocks")
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        checker.block(block, f"/blocks/{i}", seen)
    return checker.errors


def blocks_json_size(blocks: Any) -> int:
    """Length of `blocks` as compact JSON: what the size limit is measured on here."""
    return len(json.dumps(blocks, separators=(",", ":"), ensure_ascii=False))


def _note_method(method: str, scope: str) -> None:
    """Add (method, scope) to METHODS_CALLED under the test running now (pytest sets
    PYTEST_CURRENT_TEST to "<nodeid> (call)" while each test runs)."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    METHODS_CALLED.setdefault((method, scope), set()).add(test)


def _slack_files(blocks: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(json-pointer, slack_file) for every image block or element that points at a file."""

    def walk(node: Any, pointer: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if isinstance(node, dict):
            if node.get("type") == "image" and isinstance(node.get("slack_file"), dict):
                yield pointer, node["slack_file"]
            for key, value in node.items():
                yield from walk(value, f"{pointer}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, f"{pointer}/{i}")

    yield from walk(blocks, "/blocks")


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


def _json_param(value: Any, error: str) -> Any:
    """A param Slack takes as JSON: a JSON string (form-encoded) or a value (JSON body)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise _ApiError(error) from None
    return value


# ---------------------------------------------------------------------------- server


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to the FakeSlack that owns the server."""

    server: _Server
    protocol_version = "HTTP/1.0"

    def do_POST(self) -> None:
        self.server.fake._serve(self)

    def do_GET(self) -> None:
        self.server.fake._serve(self)

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSlack


class FakeSlack:
    """Slack's Web API, response URLs and file-upload endpoint on a local port.

    State is configured by method (`add_token`, `add_user`, `add_channel`, `fail`, ...)
    and everything received is recorded (`calls`, `messages`, `ephemerals`, `files`,
    `responses`, `views`). All handling runs under one lock, so concurrent clients see
    a consistent, serialised Slack (which is what makes the refresh-token race
    deterministic: exactly one of two concurrent refreshes wins).
    """

    def __init__(
        self,
        *,
        team_id: str = DEFAULT_TEAM_ID,
        team_name: str = DEFAULT_TEAM_NAME,
        bot_token: str | None = DEFAULT_BOT_TOKEN,
        bot_scopes: Iterable[str] = DEFAULT_BOT_SCOPES,
        bot_user_id: str = DEFAULT_BOT_USER_ID,
        bot_id: str = DEFAULT_BOT_ID,
        app_id: str = DEFAULT_APP_ID,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        token_rotation: bool = False,
        token_lifetime: int = TOKEN_LIFETIME,
        auto_channels: bool = True,
        member_of: Iterable[str] = (),
        marketplace: bool = False,
        channel_rate_limit: bool = False,
        channel_burst: int = 3,
        blocks_json_limit: int = BLOCKS_JSON_LIMIT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Configure (not start) the fake.

        `bot_token` is registered for `team_id` with `bot_scopes` (pass None for none;
        the default is manifest.yml's bot scopes).
        `auto_channels`: channel ids never configured (C…/G…/D…) exist, and user ids
        (U…/W…) post to a DM; False makes them `channel_not_found`. As in Slack, the bot
        is not a member of a channel nobody added it to: posting there answers
        `not_in_channel` until `conversations.join` or `add_channel(..., is_member=True)`
        (https://docs.slack.dev/reference/methods/chat.postMessage, errors: not_in_channel).
        `member_of`: public channels the bot was invited to from the start.
        `marketplace`: False (the default) serves conversations.history as Slack does for
        an app distributed outside the Marketplace: 1 request per minute per workspace and
        at most 15 messages per call; True gives Tier 3 and up to 999 per call. `channel_rate_limit`: chat.postMessage allows about one
        message per second per channel after a burst of `channel_burst`, answering 429
        with `Retry-After`. `clock` drives token expiry, response-URL expiry and the
        per-channel rate limit, so tests can move time without sleeping.
        """
        self.team_id = team_id
        self.team_name = team_name
        self.bot_token = bot_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_rotation = token_rotation
        self.token_lifetime = token_lifetime
        self.auto_channels = auto_channels
        self.marketplace = marketplace
        self.channel_rate_limit = channel_rate_limit
        self.channel_burst = channel_burst
        self.blocks_json_limit = blocks_json_limit
        self.clock = clock

        self._lock = threading.RLock()
        self._seq = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

        self.tokens: dict[str, TokenInfo] = {}
        self.users: dict[str, FakeUser] = {}
        #: usergroup id -> (team id, member user ids)
        self.usergroups: dict[str, tuple[str, list[str]]] = {}
        self.channels: dict[str, FakeChannel] = {}
        self._codes: dict[str, _OAuthCode] = {}
        self._refresh: dict[str, _RefreshGrant] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._delays: dict[str, _Delay] = {}
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._history_at: dict[str, float] = {}  # team -> last conversations.history served
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._used_triggers: set[str] = set()
        self._expired_triggers: set[str] = set()
        #: trigger id -> when (on `clock`) it was handed out with a command or a click
        self._triggers: dict[str, float] = {}
        #: Successful grant_type=refresh_token exchanges, and all attempts at one.
        self.refresh_count = 0
        self.refresh_attempts = 0
        self._init_records()

        if bot_token is not None:
            self.add_token(
                bot_token, team_id, scopes=bot_scopes, user_id=bot_user_id, bot_id=bot_id
            )
        self.add_user(bot_user_id, team_id=team_id, name="journey", is_bot=True)
        for channel_id in member_of:
            self.add_channel(channel_id)

        self._methods: dict[str, Callable[[dict[str, Any], TokenInfo | None], dict[str, Any]]]
        self._methods = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "auth.revoke": self._auth_revoke,
            "apps.uninstall": self._apps_uninstall,
            "oauth.v2.access": self._oauth_v2_access,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "views.publish": self._views_publish,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "users.info": self._users_info,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.info": self._conversations_info,
            "conversations.join": self._conversations_join,
            "conversations.open": self._conversations_open,
            "conversations.history": self._conversations_history,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "files.info": self._files_info,
            "apps.connections.open": self._apps_connections_open,
        }
        #: Where `apps.connections.open` sends Socket Mode clients (tests/fakes/socket_mode.py
        #: sets it); None answers as if Socket Mode were off for the app.
        self.socket_mode_url: str | None = None
        # Methods that take no bearer token (client credentials instead).
        self._tokenless = {"api.test", "oauth.v2.access"}

    def _init_records(self) -> None:
        self.calls: list[Call] = []
        self.messages: list[Message] = []
        self.ephemerals: list[Message] = []
        self.files: dict[str, FakeFile] = {}
        self.responses: dict[str, list[ResponsePost]] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.home_views: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeSlack:
        """Listen on a free port of 127.0.0.1 in a daemon thread."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`, without a trailing slash."""
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        """The base_url for slack_sdk clients: `{url}/api/`."""
        return f"{self.url}/api/"

    def web_client(self, token: str | None = None, **kwargs: Any) -> WebClient:
        """A WebClient aimed at the fake, with the default bot token unless told otherwise."""
        return WebClient(token=token or self.bot_token, base_url=self.api_url, **kwargs)

    def async_web_client(self, token: str | None = None, **kwargs: Any) -> AsyncWebClient:
        """An AsyncWebClient aimed at the fake."""
        return AsyncWebClient(token=token or self.bot_token, base_url=self.api_url, **kwargs)

    # ----------------------------------------------------------------- configuration

    def add_token(
        self,
        token: str,
        team_id: str | None = None,
        scopes: Iterable[str] = DEFAULT_BOT_SCOPES,
        user_id: str | None = None,
        bot_id: str | None = None,
        *,
        team_name: str | None = None,
        expires_in: float | None = None,
    ) -> TokenInfo:
        """Accept `token` for `team_id` with `scopes`.

        A token with `bot_id` is a bot token (auth.test reports the bot); without one it
        is a user token. `expires_in` seconds from now it answers `token_expired`.
        """
        team_id = team_id or self.team_id
        info = TokenInfo(
            token=token,
            team_id=team_id,
            scopes=list(scopes),
            user_id=user_id or (self.bot_user_id if bot_id is not None else "U0INSTALLER"),
            bot_id=bot_id,
            team_name=team_name or (self.team_name if team_id == self.team_id else team_id),
            app_id=self.app_id,
            expires_at=None if expires_in is None else self.clock() + expires_in,
        )
        with self._lock:
            self.tokens[token] = info
        return info

    def revoke(self, token: str) -> None:
        """Make `token` answer `token_revoked` from now on."""
        with self._lock:
            self.tokens[token].revoked = True

    def expire(self, token: str) -> None:
        """Make `token` answer `token_expired` from now on (as after 12 h with rotation)."""
        with self._lock:
            self.tokens[token].expires_at = self.clock() - 1

    def add_user(
        self,
        user_id: str,
        *,
        team_id: str | None = None,
        name: str = "",
        real_name: str = "",
        is_admin: bool = False,
        is_owner: bool = False,
        is_primary_owner: bool = False,
        is_bot: bool = False,
        deleted: bool = False,
        tz: str = "Europe/London",
        tz_label: str = "Greenwich Mean Time",
        tz_offset: int = 0,
        locale: str = "en-GB",
        is_restricted: bool = False,
        is_ultra_restricted: bool = False,
        enterprise_id: str | None = None,
    ) -> FakeUser:
        """Make users.info know `user_id` (unknown users answer `user_not_found`).

        `is_restricted`: a multi-channel guest; `is_ultra_restricted`: a single-channel
        guest (Slack sets both). A `team_id` other than the fake's is a Slack Connect user
        of another organization (users.info then adds `is_stranger: true`), unless
        `enterprise_id` puts both in one Enterprise Grid org."""
        user = FakeUser(
            id=user_id,
            team_id=team_id or self.team_id,
            name=name,
            real_name=real_name,
            is_admin=is_admin,
            is_owner=is_owner,
            is_primary_owner=is_primary_owner,
            is_bot=is_bot,
            deleted=deleted,
            tz=tz,
            tz_label=tz_label,
            tz_offset=tz_offset,
            locale=locale,
            is_restricted=is_restricted,
            is_ultra_restricted=is_ultra_restricted,
            enterprise_id=enterprise_id,
        )
        with self._lock:
            self.users[user_id] = user
        return user

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str = "",
        is_member: bool = True,
        is_archived: bool = False,
        is_private: bool = False,
        is_shared: bool = False,
        is_ext_shared: bool = False,
        is_org_shared: bool = False,
        pending_shared: Iterable[str] = (),
    ) -> FakeChannel:
        """Configure a channel. Posting where the bot is not a member answers
        `not_in_channel` (private: `channel_not_found`); archived answers `is_archived`.
        `is_ext_shared`: shared with another organization (Slack Connect); `is_shared`:
        with another workspace of the same org; `is_org_shared`: across an Enterprise Grid
        org; `pending_shared`: team ids invited through Slack Connect, not joined yet
        (`is_pending_ext_shared`). conversations.info reports them (FakeChannel.to_api)."""
        channel = FakeChannel(
            id=channel_id,
            name=name or channel_id.lower(),
            is_member=is_member,
            is_archived=is_archived,
            is_private=is_private,
            is_shared=is_shared,
            is_ext_shared=is_ext_shared,
            is_org_shared=is_org_shared,
            pending_shared=list(pending_shared),
        )
        with self._lock:
            self.channels[channel_id] = channel
        return channel

    def delete_channel(self, channel_id: str) -> None:
        """Make `channel_id` answer `channel_not_found`, even with auto_channels."""
        with self._lock:
            channel = self.channels.get(channel_id) or FakeChannel(id=channel_id)
            channel.deleted = True
            self.channels[channel_id] = channel

    # ------------------------------------------------------------------- faults

    def fail(self, method: str, error: str, times: int = 1, **extra: Any) -> None:
        """The next `times` calls to `method` answer `{"ok": false, "error": error, **extra}`.

        Faults on one method queue up in the order they were added. `method` may be
        `UPLOAD` (upload POSTs) or `RESPONSE_URL` (response-URL posts) too.
        """
        self._add_fault(method, _Fault("error", times, error=error, extra=extra))

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """The next `times` calls to `method` answer HTTP 429, `Retry-After: retry_after`."""
        self._add_fault(method, _Fault("ratelimit", times, retry_after=retry_after))

    def drop(self, method: str, times: int = 1) -> None:
        """The next `times` calls to `method` get no answer: the connection is closed
        (a network failure: the client raises a connection error, not a Slack error)."""
        self._add_fault(method, _Fault("drop", times))

    def server_error(self, method: str, status: int = 500, times: int = 1) -> None:
        """The next `times` calls to `method` answer HTTP `status` (500, 503, ...)."""
        self._add_fault(method, _Fault("status", times, status=status))

    def delay(self, method: str, seconds: float, times: int | None = None) -> None:
        """Hold answers to `method` for `seconds` (every call, or the next `times`);
        `seconds=0` clears. For timeout and acknowledge-in-time tests."""
        with self._lock:
            if seconds <= 0:
                self._delays.pop(method, None)
            else:
                self._delays[method] = _Delay(seconds, times)

    def clear_faults(self) -> None:
        """Drop every pending fault and delay."""
        with self._lock:
            self._faults.clear()
            self._delays.clear()

    def _add_fault(self, method: str, fault: _Fault) -> None:
        with self._lock:
            self._faults.setdefault(method, deque()).append(fault)

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.popleft()
        return fault

    def _take_delay(self, method: str) -> float:
        with self._lock:
            delay = self._delays.get(method)
            if delay is None:
                return 0.0
            if delay.remaining is not None:
                delay.remaining -= 1
                if delay.remaining <= 0:
                    del self._delays[method]
            return delay.seconds

    # ----------------------------------------------------------------- inspection

    # ------------------------------------------------------------- files people share

    def user_upload(
        self,
        user: str,
        filename: str,
        data: bytes,
        *,
        channel: str | None = None,
        via_file_input: bool = False,
        team_id: str | None = None,
        mimetype: str = "text/csv",
        filetype: str = "csv",
    ) -> FakeFile:
        """A person uploads a file: into `channel` (their DM with the bot is `D` + their
        id without the `U`), through a file_input of this app's modal, or (neither) kept
        private, which no bot token can see. Returns the file; `file_shared_event` makes
        the event Slack then sends."""
        team = team_id or self.team_id
        with self._lock:
            file_id = f"F{next(self._seq):010d}"
            file = FakeFile(
                id=file_id,
                filename=filename,
                length=len(data),
                team_id=team,
                user=user,
                data=data,
                title=filename,
                completed=True,
                mimetype=mimetype,
                filetype=filetype,
                via_file_input=via_file_input,
            )
            if channel is not None:
                if channel.startswith("D") and channel not in self.channels:
                    self.channels[channel] = FakeChannel(
                        id=channel, is_member=True, is_im=True, im_user="U" + channel[1:]
                    )
                file.channels = [channel]
            self.files[file_id] = file
        return file

    def file_shared_event(self, file: FakeFile, channel: str | None = None) -> dict[str, Any]:
        """The `file_shared` event for `file` in `channel`
        (https://docs.slack.dev/reference/events/file_shared: `channel_id`, `file_id`,
        `user_id`, `file: {id}` and `event_ts`; nothing else about the file: "To obtain
        additional information about the file, use the files.info API method")."""
        return {
            "type": "file_shared",
            "channel_id": channel or (file.channels[0] if file.channels else ""),
            "file_id": file.id,
            "user_id": file.user,
            "file": {"id": file.id},
            "event_ts": f"{self.clock():.6f}",
        }

    def file_input_value(self, file: FakeFile) -> dict[str, Any]:
        """A file_input's value in a view_submission's `state.values` (bolt-js
        src/types/view/index.ts, ViewStateValue: `files?: UploadedFile[]; // type:
        "file_input"`), each file as the file object."""
        return {"type": "file_input", "files": [file.to_api(self.url, self.channels)]}

    def delete_file(self, file_id: str) -> None:
        """The uploader deleted the file: files.info answers `file_deleted`, its URLs 404."""
        with self._lock:
            self.files[file_id].deleted = True

    def _visible(self, file: FakeFile, info: TokenInfo) -> bool:
        """Whether `info`'s token may see `file`: its own workspace's, and uploaded by the
        bot itself, through this app's file_input, or shared in a conversation the bot is
        in (files.info: "Bot user tokens may use this method to access information about
        files appearing in the channels they belong to"; file_not_found: "The file does
        not exist, or is not visible to the calling user")."""
        if file.team_id != info.team_id:
            return False
        if file.user == info.user_id or (file.via_file_input and info.bot_id is not None):
            return True
        for channel_id in file.channels:
            channel = self.channels.get(channel_id)
            if channel is not None and channel.is_member and not channel.deleted:
                return True
        return False

    def calls_to(self, method: str) -> list[Call]:
        """Every recorded call to `method`, oldest first."""
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def last(self, method: str) -> Call:
        """The most recent call to `method` (AssertionError if there was none)."""
        calls = self.calls_to(method)
        assert calls, f"no call to {method}; calls: {[c.method for c in self.calls]}"
        return calls[-1]

    def reset(self) -> None:
        """Forget what was received (calls, messages, files, responses, views) and any
        pending faults; keep configuration (tokens, users, channels, OAuth state)."""
        with self._lock:
            self._init_records()
            self._faults.clear()
            self._delays.clear()
            self._buckets.clear()
            self._response_urls.clear()

    def posted(self, channel: str | None = None, *, include_deleted: bool = False) -> list[Message]:
        """Messages posted (not ephemeral), optionally in one channel."""
        with self._lock:
            return [
                m
                for m in self.messages
                if (channel is None or m.channel == channel) and (include_deleted or not m.deleted)
            ]

    # --------------------------------------------------------------- response URLs

    def response_url(self, name: str, channel: str | None = None) -> str:
        """A response URL `{url}/response/<name>`: 5 uses within 30 minutes, like Slack's.

        `channel`: the conversation the command or button came from, where posts to it
        appear (image blocks are checked against the files shared there).
        Posts to a name never handed out are accepted too (the URL starts its life then).
        """
        with self._lock:
            url = self._response_urls.setdefault(name, _ResponseUrl(created=self.clock()))
            url.channel = channel or url.channel
        return f"{self.url}/response/{name}"

    def expire_response_url(self, name: str) -> None:
        """Make posts to response URL `name` answer 404 `expired_url`."""
        with self._lock:
            self._response_urls.setdefault(name, _ResponseUrl(created=self.clock())).expired = True

    # ------------------------------------------------------------------- OAuth

    def issue_code(
        self,
        *,
        team_id: str | None = None,
        team_name: str | None = None,
        user_id: str = "U0INSTALLER",
        scopes: Iterable[str] = DEFAULT_BOT_SCOPES,
        redirect_uri: str | None = None,
    ) -> str:
        """A single-use OAuth code, as Slack appends to the redirect URL after install."""
        code = f"{next(self._seq)}.{secrets.token_hex(8)}"
        team_id = team_id or self.team_id
        with self._lock:
            self._codes[code] = _OAuthCode(
                team_id=team_id,
                team_name=team_name or (self.team_name if team_id == self.team_id else team_id),
                user_id=user_id,
                scopes=list(scopes),
                redirect_uri=redirect_uri,
            )
        return code

    def issue_token_pair(
        self,
        *,
        team_id: str | None = None,
        scopes: Iterable[str] = DEFAULT_BOT_SCOPES,
        expires_in: float | None = None,
    ) -> tuple[str, str]:
        """A rotating bot token and its refresh token, as if installed with rotation on.

        For seeding an installation store without going through the OAuth flow.
        """
        team_id = team_id or self.team_id
        with self._lock:
            grant = _RefreshGrant(
                team_id=team_id,
                team_name=self.team_name if team_id == self.team_id else team_id,
                scopes=list(scopes),
                user_id=self._bot_user_for(team_id),
                bot_id=self._bot_id_for(team_id),
            )
            return self._mint_rotating(grant, expires_in)

    def _bot_user_for(self, team_id: str) -> str:
        return self.bot_user_id if team_id == self.team_id else f"U0BOT{team_id[-4:]}"

    def _bot_id_for(self, team_id: str) -> str:
        return self.bot_id if team_id == self.team_id else f"B0BOT{team_id[-4:]}"

    def _mint_rotating(self, grant: _RefreshGrant, expires_in: float | None) -> tuple[str, str]:
        n = next(self._seq)
        access = f"xoxe.xoxb-1-{n}-{secrets.token_hex(12)}"
        refresh = f"xoxe-1-{n}-{secrets.token_hex(16)}"
        self.add_token(
            access,
            grant.team_id,
            scopes=grant.scopes,
            user_id=grant.user_id,
            bot_id=grant.bot_id,
            team_name=grant.team_name,
            expires_in=self.token_lifetime if expires_in is None else expires_in,
        )
        self._refresh[refresh] = _RefreshGrant(
            team_id=grant.team_id,
            team_name=grant.team_name,
            scopes=list(grant.scopes),
            user_id=grant.user_id,
            bot_id=grant.bot_id,
        )
        return access, refresh

    # ------------------------------------------------------------------ dispatch

    def _serve(self, req: _Handler) -> None:
        path = urlsplit(req.path).path
        if path.startswith("/api/"):
            self._serve_api(req, path.removeprefix("/api/"))
        elif path.startswith("/upload/"):
            self._serve_upload(req, path.removeprefix("/upload/"))
        elif path.startswith("/response/"):
            self._serve_response(req, path.removeprefix("/response/"))
        elif path.startswith("/files-pri/") and req.command == "GET":
            self._serve_file(req, path.removeprefix("/files-pri/"))
        else:
            self._send(req, _Reply(404, {"ok": False, "error": "not_found"}))

    def _read_body(self, req: _Handler) -> bytes:
        if req.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(req.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    req.rfile.readline()
                    break
                chunks.append(req.rfile.read(size))
                req.rfile.readline()
            return b"".join(chunks)
        length = int(req.headers.get("Content-Length") or 0)
        return req.rfile.read(length) if length else b""

    def _parse(self, req: _Handler, body: bytes) -> dict[str, Any]:
        params: dict[str, Any] = {
            k: v[-1] for k, v in parse_qs(urlsplit(req.path).query, keep_blank_values=True).items()
        }
        content_type = req.headers.get("Content-Type", "")
        kind = content_type.split(";")[0].strip().lower()
        if kind == "application/json":
            data = json.loads(body or b"{}")
            if not isinstance(data, dict):
                raise ValueError("JSON body is not an object")
            params.update(data)
        elif kind == "multipart/form-data":
            message = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
            )
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True) or b""
                if isinstance(name, str):
                    is_file = part.get_filename() is not None
                    params[name] = payload if is_file else payload.decode()
        elif body:
            form = parse_qs(body.decode(), keep_blank_values=True)
            params.update({k: v[-1] for k, v in form.items()})
        return params

    def _record(
        self, method: str, params: dict[str, Any], token: str | None, req: _Handler
    ) -> Call:
        call = Call(method, params, token, dict(req.headers.items()), self.clock())
        with self._lock:
            self.calls.append(call)
        return call

    def _send(self, req: _Handler, reply: _Reply, call: Call | None = None) -> None:
        if reply.status == 0:  # a dropped connection: close without a byte
            req.close_connection = True
            return
        if isinstance(reply.body, dict):
            data = json.dumps(reply.body).encode()
            content_type = "application/json; charset=utf-8"
        else:
            data = reply.body.encode()
            content_type = "text/plain; charset=utf-8"
        if call is not None:
            call.status = reply.status
            call.response = reply.body if isinstance(reply.body, dict) else {"body": reply.body}
        req.send_response(reply.status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(data)))
        for key, value in reply.headers.items():
            req.send_header(key, value)
        req.end_headers()
        req.wfile.write(data)

    def _fault_reply(self, fault: _Fault, *, api: bool = True) -> _Reply:
        """The answer a fault forces. Off the Web API (uploads, response URLs) Slack
        signals errors by HTTP status: 404 for spent/expired URLs, else 400."""
        if fault.kind == "ratelimit":
            return _Reply(
                429,
                {"ok": False, "error": "ratelimited"},
                {"Retry-After": str(fault.retry_after)},
            )
        if fault.kind == "status":
            return _Reply(fault.status, {"ok": False, "error": "internal_error"})
        if fault.kind == "drop":
            return _Reply(0, {})
        status = 200 if api else 404 if fault.error in ("used_url", "expired_url") else 400
        return _Reply(status, {"ok": False, "error": fault.error, **fault.extra})

    def _serve_api(self, req: _Handler, method: str) -> None:
        body = self._read_body(req)
        try:
            params = self._parse(req, body)
        except (ValueError, UnicodeDecodeError):
            call = self._record(method, {"_raw": body.decode(errors="replace")}, None, req)
            self._send(req, _Reply(200, {"ok": False, "error": "invalid_json"}), call)
            return
        token: str | None = params.pop("token", None)
        auth = req.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ").strip()
        call = self._record(method, params, token, req)
        if seconds := self._take_delay(method):
            time.sleep(seconds)
        with self._lock:
            reply = self._answer_api(method, params, token, auth)
        self._send(req, reply, call)

    def _answer_api(
        self, method: str, params: dict[str, Any], token: str | None, auth: str
    ) -> _Reply:
        fault = self._take_fault(method)
        if fault is not None:
            return self._fault_reply(fault)
        handler = self._methods.get(method)
        if handler is None:
            return _Reply(200, {"ok": False, "error": "unknown_method"})
        if method in self._tokenless:
            _note_method(method, "")
            params = {**params, "_authorization": auth}
            info = None
            headers: dict[str, str] = {}
        else:
            info = self.tokens.get(token) if token else None
            if not token:
                return _Reply(200, {"ok": False, "error": "not_authed"})
            if info is None:
                return _Reply(200, {"ok": False, "error": "invalid_auth"})
            if info.revoked:
                return _Reply(200, {"ok": False, "error": "token_revoked"})
            if info.expires_at is not None and self.clock() >= info.expires_at:
                return _Reply(200, {"ok": False, "error": "token_expired"})
            headers = {"X-OAuth-Scopes": ",".join(info.scopes)}
            needed = REQUIRED_SCOPES.get(method, ())
            if len(needed) <= 1:
                _note_method(method, needed[0] if needed else "")
            if needed:
                headers["X-Accepted-OAuth-Scopes"] = ",".join(needed)
                if not set(needed) & set(info.scopes):
                    body = {
                        "ok": False,
                        "error": "missing_scope",
                        "needed": ",".join(needed),
                        "provided": ",".join(info.scopes),
                    }
                    return _Reply(200, body, headers)
        try:
            result = handler(params, info)
        except _RateLimited as limited:
            headers["Retry-After"] = str(limited.retry_after)
            return _Reply(429, {"ok": False, "error": "ratelimited"}, headers)
        except _ApiError as e:
            return _Reply(200, {"ok": False, "error": e.error, **e.extra}, headers)
        return _Reply(200, {"ok": True, **result}, headers)

    # ----------------------------------------------------------- message helpers

    def _ts(self) -> str:
        return f"{int(self.clock())}.{next(self._seq):06d}"

    def _channel(self, info: TokenInfo, channel_id: Any, *, posting: bool) -> FakeChannel:
        """Resolve `channel_id` (id, #name or user id) like Slack, raising its errors."""
        if not isinstance(channel_id, str) or not channel_id:
            raise _ApiError("channel_not_found")
        if channel_id[0] in "UW" and (channel_id in self.users or self.auto_channels):
            dm_id = "D" + channel_id[1:]
            channel = self.channels.get(dm_id)
            if channel is None:
                channel = FakeChannel(id=dm_id, is_im=True, im_user=channel_id)
                self.channels[dm_id] = channel
            return channel
        channel = self.channels.get(channel_id)
        if channel is None:
            name = channel_id.lstrip("#")
            channel = next((c for c in self.channels.values() if c.name == name), None)
        if channel is None:
            if not (self.auto_channels and channel_id[0] in "CGD" and channel_id.isalnum()):
                raise _ApiError("channel_not_found")
            is_im = channel_id[0] == "D"
            channel = FakeChannel(
                id=channel_id,
                name=channel_id.lower(),
                is_im=is_im,
                is_private=channel_id[0] == "G",
                # Slack never adds a bot to a channel by itself: someone invites it, or
                # it joins a public one (conversations.join, channels:join).
                is_member=is_im,
            )
            self.channels[channel_id] = channel
        if channel.deleted:
            raise _ApiError("channel_not_found")
        if channel.is_private and not channel.is_member:
            raise _ApiError("channel_not_found")
        if posting:
            if channel.is_archived:
                raise _ApiError("is_archived")
            if not channel.is_member and "chat:write.public" not in info.scopes:
                raise _ApiError("not_in_channel")
        return channel

    def _message_content(
        self, params: dict[str, Any], channel: str | None = None
    ) -> tuple[str, list[dict[str, Any]] | None, bool, int]:
        """Validate text/blocks like Slack; returns (text, blocks, truncated, length).

        `channel` is where the message goes (None: a response URL whose conversation the
        fake was not told): an image's `slack_file` must be a finished upload shared
        there, or Slack refuses the blocks ("invalid slack file"; a file uploaded without
        a channel is private to its uploader: files.completeUploadExternal's channel_id
        "If not specified the file will be private", and the slack file object "the user
        posting these blocks must have access to this file",
        https://docs.slack.dev/reference/block-kit/composition-objects/slack-file-object;
        reports: slackapi/bolt-python#1251, python-slack-sdk#1658)."""
        text = params.get("text")
        text = "" if text is None else str(text)
        blocks = params.get("blocks")
        if blocks in (None, "", "[]", []):
            blocks = None
        else:
            blocks = _json_param(blocks, "invalid_blocks_format")
            if not isinstance(blocks, list):
                raise _ApiError("invalid_blocks_format")
        attachments = params.get("attachments")
        if not text and blocks is None and attachments in (None, "", "[]", []):
            raise _ApiError("no_text")
        if blocks is not None:
            errors = block_errors(blocks, max_blocks=MAX_MESSAGE_BLOCKS)
            errors += self._file_errors(blocks, channel)
            if errors:
                raise _ApiError(
                    "invalid_blocks",
                    errors=errors,
                    response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
                )
            if blocks_json_size(blocks) > self.blocks_json_limit:
                raise _ApiError("msg_blocks_too_long")
        length = len(text)
        return text[:MAX_TEXT], blocks, length > MAX_TEXT, length

    def _file_errors(self, blocks: list[Any], channel: str | None) -> list[str]:
        errors = []
        for pointer, ref in _slack_files(blocks):
            file_id = ref.get("id")
            if file_id is None and isinstance(ref.get("url"), str):
                file_id = next(
                    (f.id for f in self.files.values() if f.id in ref["url"].split("/")), None
                )
            file = self.files.get(str(file_id))
            usable = (
                file is not None
                and file.completed
                and (file.channels if channel is None else channel in file.channels)
            )
            if not usable:
                errors.append(f"invalid slack file [json-pointer:{pointer}/slack_file]")
        return errors

    def _find_message(self, channel: str, ts: Any) -> Message:
        for m in self.messages:
            if m.channel == channel and m.ts == ts and not m.deleted:
                return m
        raise _ApiError("message_not_found")

    def _take_bucket(self, team_id: str, channel: str) -> None:
        """Token bucket: ~1 message/s/channel after a burst, like chat.postMessage."""
        now = self.clock()
        key = (team_id, channel)
        tokens, last = self._buckets.get(key, (float(self.channel_burst), now))
        tokens = min(float(self.channel_burst), tokens + (now - last))
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            raise _RateLimited(max(1, math.ceil(1 - tokens)))
        self._buckets[key] = (tokens - 1, now)

    # ------------------------------------------------------------------ methods

    def _api_test(self, params: dict[str, Any], info: TokenInfo | None) -> dict[str, Any]:
        if "error" in params:
            raise _ApiError(str(params["error"]))
        return {"args": {k: v for k, v in params.items() if not k.startswith("_")}}

    def _auth_test(self, params: dict[str, Any], info: TokenInfo | None) -> dict[str, Any]:
        assert info is not None
        domain = info.team_name.lower().replace(" ", "-")
        out: dict[str, Any] = {
            "url": f"https://{domain}.slack.com/",
            "team": info.team_name,
            "user": self.users[info.user_id].name if info.user_id in self.users else "journey",
            "team_id": info.team_id,
            "user_id": info.user_id,
            "is_enterprise_install": False,
        }
        if info.bot_id is not None:
            out["bot_id"] = info.bot_id
        if info.expires_at is not None:
            out["expires_in"] = max(0, int(info.expires_at - self.clock()))
        return out

    def _auth_revoke(self, params: dict[str, Any], info: TokenInfo | None) -> dict[str, Any]:
        assert info is not None
        if not _truthy(params.get("test")):
            info.revoked = True
        return {"revoked": True}

    def _check_client(self, params: dict[str, Any]) -> None:
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        auth = params.get("_authorization", "")
        if auth.startswith("Basic "):
            decoded = base64.b64decode(auth.removeprefix("Basic ")).decode()
            client_id, _, client_secret = decoded.partition(":")
        if client_id != self.client_id:
            raise _ApiError("invalid_client_id")
        if client_secret != self.client_secret:
            raise _ApiError("bad_client_secret")

    def _apps_connections_open(
        self, params: dict[str, Any], info: TokenInfo | None
    ) -> dict[str, Any]:
        """A Socket Mode WebSocket URL, for an app-level token (xapp-) only."""
        assert info is not None
        if not info.token.startswith("xapp-"):
            raise _ApiError("not_allowed_token_type")
        if self.socket_mode_url is None:
            raise _ApiError("not_allowed", detail="Socket Mode is not turned on for this app")
        ticket = secrets.token_hex(8)
        return {"url": f"{self.socket_mode_url}?ticket={ticket}&app_id={info.app_id}"}

    def _apps_uninstall(self, params: dict[str, Any], info: TokenInfo | None) -> dict[str, Any]:
        assert info is not None
        self._check_client(params)
        for other in self.tokens.values():
            if other.team_id == info.team_id:
                other.revoked = True
        for grant in self._refresh.values():
            if grant.team_id == info.team_id:
                grant.used = True
        return {}

    def _oauth_v2_access(self, params: dict[str, Any], info: TokenInfo | None) -> dict[str, Any]:
        self._check_client(params)
        grant_type = params.get("grant_type") or "authorization_code"
        if grant_type == "refresh_token":
            self.refresh_attempts += 1
            grant = self._refresh.get(params.get("refresh_token") or "")
            if grant is None or grant.used:
                raise _ApiError("invalid_refresh_token")
            grant.used = True
            access, refresh = self._mint_rotating(grant, None)
            self.refresh_count += 1
            return {
                "app_id": self.app_id,
                "access_token": access,
                "token_type": "bot",
                "scope": ",".join(grant.scopes),
                "bot_user_id": grant.user_id,
                "expires_in": self.token_lifetime,
                "refresh_token": refresh,
                "team": {"id": grant.team_id, "name": grant.team_name},
                "enterprise": None,
                "is_enterprise_install": False,
            }
        if grant_type != "authorization_code":
            raise _ApiError("invalid_grant_type")
        code = self._codes.get(params.get("code") or "")
        if code is None or code.used:
            raise _ApiError("invalid_code")
        if code.redirect_uri is not None and params.get("redirect_uri") != code.redirect_uri:
            raise _ApiError("bad_redirect_uri")
        code.used = True
        out: dict[str, Any] = {
            "app_id": self.app_id,
            "authed_user": {"id": code.user_id},
            "scope": ",".join(code.scopes),
            "token_type": "bot",
            "bot_user_id": self._bot_user_for(code.team_id),
            "team": {"id": code.team_id, "name": code.team_name},
            "enterprise": None,
            "is_enterprise_install": False,
        }
        grant = _RefreshGrant(
            team_id=code.team_id,
            team_name=code.team_name,
            scopes=code.scopes,
            user_id=self._bot_user_for(code.team_id),
            bot_id=self._bot_id_for(code.team_id),
        )
        if self.token_rotation:
            access, refresh = self._mint_rotating(grant, None)
            out.update(access_token=access, refresh_token=refresh, expires_in=self.token_lifetime)
        else:
            access = f"xoxb-{next(self._seq)}-{secrets.token_hex(12)}"
            self.add_token(
                access,
                code.team_id,
                scopes=code.scopes,
                user_id=grant.user_id,
                bot_id=grant.bot_id,
                team_name=code.team_name,
            )
            out["access_token"] = access
        if grant.user_id not in self.users:
            self.add_user(grant.user_id, team_id=code.team_id, name="journey", is_bot=True)
        return out

    def _chat_post_message(self, params: dict[str, Any], info: TokenInfo | None) -> dict[str, Any]:
        assert info is not None
        channel = self._channel(info, params.get("channel"), posting=True)
        text, blocks, truncated, length = self._message_content(params, channel.id)
        if self.channel_rate_limit:
            self._take_bucket(info.team_id, channel.id)
        thread_ts = params.get("thread_ts") or None
        message = Message(
            channel=channel.id,
            ts=self._ts(),
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            team_id=info.team_id,
            bot_id=info.bot_id,
            user=info.user_id,
            params=params,
            truncated=truncated,
            original_length=length,
        )
        self.messages.append(message)
        return {"channel": channel.id, "ts": message.ts, "message": message.to_api()}

    def _chat_post_ephemeral(
        self, params: dict[str, Any], info: TokenInfo | None
    ) -> dict[str, Any]:
        assert info is not None
        channel = self._channel(info, params.get("channel"), posting=True)
        user = params.get("user")
        if not user:
            raise _ApiError("user_not_found")
        text, blocks, truncated, length = self._message_content(params, channel.id)
        message = Message(
            channel=channel.id,
            ts=self._ts(),
            text=text,
            blocks=blocks,
            thread_ts=params.get("thread_ts") or None,
            team_id=info.team_id,
            bot_id=info.bot_id,
            user=info.user_id,
            params=params,
            truncated=truncated,
            original_length=length,
            ephemeral_user=str(user),
        )
        self.ephemerals.append(message)
        return {"message_ts": message.ts}

    def _chat_update(self, params: dict[str, Any], info: TokenInfo | None) -> dict[str, Any]:
        assert info is not None
        channel = self._channel(info, params.get("channel"), posting=True)
        message = self._find_message(channel.id, params.get("ts"))
        if message.team_id != info.team_id or message.user != info.user_id:
            raise _ApiError("cant_update_message")
        text, blocks, truncated, length = self._message_content(params, channel.id)
        message.revisions.append(message.text)
        message.text, message.blocks = text, blocks
        message.truncated, message.original_length = truncated, length
        message.updates += 1
        message.params = params
        return {
            "channel": channel.id,
            "ts": message.ts,
            "text": message.text,
            "message": message.to_api(),
        }

    def _chat_delete(self, params: dict[str, Any], info: TokenInfo | None) -> dict[str, Any]:
        assert info is not None
        channel = self._channel(info, params.get("channel"), posting=False)
        message = self._find_message(channel.id, params.get("ts"))
        if message.team_id != info.team_id or message.user != info.user_id:
            raise _ApiError("cant_delete_message")
        message.deleted = True
        return {"channel": channel.id, "ts": message.ts}

    # -- views

    def _view(self, params: dict[str, Any], *, kinds: tuple[str, ...]) -> dict[str, Any]:
        """Parse and check `view` like Slack; problems answer `invalid_arguments`."""
        view = _json_param(params.get("view"), "invalid_arguments")
        if not isinstance(view, dict):
            raise _ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: view"]},
            )
        checker = _BlockChecker()
        if view.get("type") not in kinds:
            checker.err("must be a valid enum value", "/view/type")
        if view.get("type") == "modal":
            if "title" not in view:
                checker.err("missing required field: title", "/view")
            else:
                checker.text_obj(view["title"], "/view/title", MAX_MODAL_TITLE, plain_only=True)
            for key in ("submit", "close"):
                if key in view:
                    checker.text_obj(view[key], f"/view/{key}", MAX_MODAL_TITLE, plain_only=True)
        checker.max_len(
            view.get("private_metadata"), MAX_PRIVATE_METADATA, "/view/private_metadata"
        )
        checker.max_len(view.get("callback_id"), MAX_ID, "/view/callback_id")
        checker.max_len(view.get("external_id"), MAX_ID, "/view/external_id")
        blocks = checker.items(view.get("blocks"), MAX_VIEW_BLOCKS, "/view/blocks")
        seen: set[str] = set()
        for i, block in enumerate(blocks):
            checker.block(block, f"/view/blocks/{i}", seen)
        if checker.errors:
            raise _ApiError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] {e}" for e in checker.errors]},
            )
        return view

    def _store_view(
        self, view: dict[str, Any], info: TokenInfo, view_id: str | None = None
    ) -> dict[str, Any]:
        view_id = view_id or f"V{next(self._seq):010d}"
        stored = {
            "id": view_id,
            "team_id": info.team_id,
            "app_id": info.app_id,
            "bot_id": info.bot_id,
            "type": view.get("type"),
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": f"{int(self.clock())}.{secrets.token_hex(4)}",
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": view_id,
            "previous_view_id": None,
        }
        self.views[view_id] = stored
        return stored

    def _views_publish(self, params: dict[str, Any], info: TokenInfo | None) -> dict[str, Any]:
        assert info is not None
        user_id = params.get("user_id")
        if not user_id:
            raise _ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: user_id"]},
            )
        view = self._view(params, kinds=("home",))
        current = self.home_views.get(str(user_id))
        if params.get("hash") and current is not None and params["hash"] != current["hash"]:
            raise _ApiError("hash_conflict")
        stored = self._store_view(view, info, current["id"] if current else None)
        self.home_views[str(user_id)] = stored
        return {"view": stored}

    def _views_open(self, params: dict[str, Any], info: TokenInfo | None) -> dict[str, Any]:
        """A trigger id opens one modal within 3 seconds of the command or click that
        carried it (https://api.slack.com/interactivity/handling#modal_responses: "trigger_id
        ... expires in 3 seconds"); later: `expired_trigger_id`; one Slack never handed out:
        `invalid_trigger_id` (errors from https://api.slack.com/methods/views.open)."""
        assert info is not None
        trigger_id = str(params.get("trigger_id") or "")
        issued = self._triggers.get(trigger_id)
        if not trigger_id or issued is None:
            raise _ApiError("invalid_trigger_id")
        if trigger_id in self._expired_triggers or self.clock() - issued > TRIGGER_LIFETIME:
            raise _ApiError("expired_trigger_id")
        if trigger_id in self._used_triggers:
            raise _ApiError("exchanged_trigger_id")
        view = self._view(params, kinds=("modal",))
        self._file_input_scope(view, info)
        self._used_triggers.add(trigger_id)
        return {"view": self._store_view(view, info)}

    def issue_trigger(self) -> str:
        """A trigger id as Slack puts in a command or click, valid for 3 s of `clock`
        (the test drivers put one in every payload they build for the fake)."""
        trigger_id = f"{next(self._seq)}.{int(self.clock())}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger_id] = self.clock()
        return trigger_id

    def expire_trigger(self, trigger_id: str) -> None:
        """Make views.open with `trigger_id` answer `expired_trigger_id` (Slack: after 3 s)."""
        with self._lock:
            self._expired_triggers.add(trigger_id)

    def _views_update(self, params: dict[str, Any], info: TokenInfo | None) -> dict[str, Any]:
        assert info is not None
        view_id, external_id = params.get("view_id"), params.get("external_id")
        current = self.views.get(str(view_id)) if view_id else None
        if current is None and external_id:
            current = next(
                (v for v in self.views.values() if v["external_id"] == external_id), None
            )
        if current is None:
            raise _ApiError("not_found")
        if params.get("hash") and params["hash"] != current["hash"]:
            raise _ApiError("hash_conflict")
        view = self._view(params, kinds=(str(current["type"]),))
        self._file_input_scope(view, info)
        return {"view": self._store_view(view, info, current["id"])}

    def _file_input_scope(self, view: dict[str, Any], info: TokenInfo) -> None:
        """ "In order to use the file_input element within your app, your app must have the
        files:read scope" (file input element page). Slack's exact refusal is not
        documented there; the fake answers missing_scope, as for a method."""
        uses = any(
            isinstance(b, dict) and (b.get("element") or {}).get("type") == "file_input"
            for b in view.get("blocks") or []
        )
        if uses and "files:read" not in info.scopes:
            raise _ApiError("missing_scope", needed="files:read", provided=",".join(info.scopes))

    # -- users, conversations

    def _users_info(self, params: dict[str, Any], info: TokenInfo | None) -> dict[str, Any]:
        user = self.users.get(str(params.get("user")))
        if user is None:
            raise _ApiError("user_not_found")
        return {
            "user": user.to_api(
                include_locale=_truthy(params.get("include_locale")),
                viewer_team=info.team_id if info is not None else None,
            )
        }

    def add_usergroup(
        self, usergroup_id: str, users: Iterable[str], *, team_id: str | None = None
    ) -> None:
        """A user group (`S…`) and its members, for usergroups.users.list."""
        with self._lock:
            self.usergroups[usergroup_id] = (team_id or self.team_id, list(users))

    def _usergroups_users_list(
        self, params: dict[str, Any], info: TokenInfo | None
    ) -> dict[str, Any]:
        """`{"ok": true, "users": ["U060R4BJ4", "W123A4BC5"]}`, or `no_such_subteam` for an
        id the token's team does not have (https://api.slack.com/methods/usergroups.users.list;
        scope usergroups:read)."""
        assert info is not None
        found = self.usergroups.get(str(params.get("usergroup") or ""))
        if found is None or found[0] != info.team_id:
            raise _ApiError("no_such_subteam")
        return {"users": list(found[1])}

    def _conversations_info(self, params: dict[str, Any], info: TokenInfo | None) -> dict[str, Any]:
        assert info is not None
        channel = self._channel(info, params.get("channel"), posting=False)
        kind = "im" if channel.is_im else "groups" if channel.is_private else "channels"
        # Slack wants the read scope of the conversation's type
        # (https://api.slack.com/methods/conversations.info: channels:read, groups:read,
        # im:read or mpim:read), as conversations.history wants its history scope.
        if f"{kind}:read" not in info.scopes:
            raise _ApiError("missing_scope", needed=f"{kind}:read", provided=",".join(info.scopes))
        _note_method("conversations.info", f"{kind}:read")
        return {"channel": channel.to_api()}

    def _conversations_join(self, params: dict[str, Any], info: TokenInfo | None) -> dict[str, Any]:
        assert info is not None
        channel = self._channel(info, params.get("channel"), posting=False)
        if channel.is_private or channel.is_im:
            raise _ApiError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise _ApiError("is_archived")
        out: dict[str, Any] = {}
        if channel.is_member:
            out["warning"] = "already_in_channel"
            out["response_metadata"] = {"warnings": ["already_in_channel"]}
        channel.is_member = True
        out["channel"] = channel.to_api()
        return out

    def _conversations_open(self, params: dict[str, Any], info: TokenInfo | None) -> dict[str, Any]:
        """A direct message with one user (the only use the bot has for it)."""
        users = [u for u in str(params.get("users") or "").split(",") if u]
        _note_method("conversations.open", "im:write" if len(users) <= 1 else "mpim:write")
        if not users:
            raise _ApiError("users_list_not_supplied")
        if users[0] not in self.users:
            raise _ApiError("user_not_found")
        channel_id = "D" + users[0].removeprefix("U")
        with self._lock:
            if channel_id not in self.channels:
                self.channels[channel_id] = FakeChannel(
                    id=channel_id, is_member=True, is_im=True, im_user=users[0]
                )
        return {"channel": {"id": channel_id}}

    def _conversations_history(
        self, params: dict[str, Any], info: TokenInfo | None
    ) -> dict[str, Any]:
        """Newest first, `limit` (default 100) at a time, with `oldest`/`latest` bounds and a
        `cursor`; `metadata` only with include_all_metadata, as Slack does. The bot must be
        a member (else not_in_channel) and hold the history scope of the conversation's
        type. Outside the Marketplace (`marketplace=False`, the default): 1 call per minute
        per workspace (429 with Retry-After) and at most 15 messages per call."""
        assert info is not None
        channel = self._channel(info, params.get("channel"), posting=False)
        kind = "im" if channel.is_im else "private" if channel.is_private else "public"
        _note_method("conversations.history", HISTORY_SCOPE[kind])
        if HISTORY_SCOPE[kind] not in info.scopes:
            raise _ApiError(
                "missing_scope", needed=HISTORY_SCOPE[kind], provided=",".join(info.scopes)
            )
        if not channel.is_member and not channel.is_im:
            raise _ApiError("not_in_channel")
        now = self.clock()
        cap = 999
        if not self.marketplace:
            cap = NON_MARKETPLACE_HISTORY_LIMIT
            last = self._history_at.get(info.team_id)
            if last is not None and now - last < NON_MARKETPLACE_HISTORY_INTERVAL:
                raise _RateLimited(math.ceil(NON_MARKETPLACE_HISTORY_INTERVAL - (now - last)))
            self._history_at[info.team_id] = now
        try:
            limit = int(params.get("limit") or cap)
        except (TypeError, ValueError):
            limit = cap
        limit = max(1, min(cap, limit))
        with_metadata = _truthy(params.get("include_all_metadata"))
        oldest, latest = float(params.get("oldest") or 0), params.get("latest")
        found = [
            m
            for m in reversed(self.messages)
            if m.channel == channel.id
            and not m.deleted
            and m.thread_ts is None
            and float(m.ts) > oldest
            and (latest is None or float(m.ts) < float(latest))
        ]
        try:
            start = int(base64.b64decode(str(params.get("cursor") or "")).decode() or 0)
        except ValueError:
            raise _ApiError("invalid_cursor") from None
        page = found[start : start + limit]
        out = []
        for m in page:
            item = m.to_api()
            if with_metadata and m.metadata is not None:
                item["metadata"] = m.metadata
            out.append(item)
        has_more = len(found) > start + limit
        answer: dict[str, Any] = {"messages": out, "has_more": has_more, "pin_count": 0}
        if has_more:
            cursor = base64.b64encode(str(start + limit).encode()).decode()
            answer["response_metadata"] = {"next_cursor": cursor}
        return answer

    # -- files

    def _files_get_upload_url(
        self, params: dict[str, Any], info: TokenInfo | None
    ) -> dict[str, Any]:
        assert info is not None
        filename, length = params.get("filename"), params.get("length")
        missing = [k for k, v in (("filename", filename), ("length", length)) if v in (None, "")]
        if missing:
            raise _ApiError(
                "invalid_arguments",
                response_metadata={
                    "messages": [f"[ERROR] missing required field: {k}" for k in missing]
                },
            )
        try:
            size = int(str(length))
        except ValueError:
            size = -1
        if size < 0:
            raise _ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] must be a non-negative integer"]},
            )
        file_id = f"F{next(self._seq):010d}"
        self.files[file_id] = FakeFile(
            id=file_id,
            filename=str(filename),
            length=size,
            team_id=info.team_id,
            user=info.user_id,
            alt_txt=params.get("alt_txt"),
            snippet_type=params.get("snippet_type"),
        )
        return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload(
        self, params: dict[str, Any], info: TokenInfo | None
    ) -> dict[str, Any]:
        assert info is not None
        entries = _json_param(params.get("files"), "invalid_arguments")
        if not isinstance(entries, list) or not entries:
            raise _ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: files"]},
            )
        files: list[FakeFile] = []
        for entry in entries:
            file = self.files.get(entry.get("id", "")) if isinstance(entry, dict) else None
            if file is None or file.team_id != info.team_id or file.data is None:
                raise _ApiError("file_not_found")
            files.append(file)
        channel_ids: list[str] = []
        if params.get("channel_id"):
            channel_ids.append(str(params["channel_id"]))
        if params.get("channels"):
            channel_ids.extend(c for c in str(params["channels"]).split(",") if c)
        channels = [self._channel(info, c, posting=True) for c in channel_ids]
        comment = params.get("initial_comment") or None
        thread_ts = params.get("thread_ts") or None
        for entry, file in zip(entries, files, strict=True):
            file.title = entry.get("title") or file.filename
            file.completed = True
            file.channels = [c.id for c in channels]
            file.initial_comment = comment
            file.thread_ts = thread_ts
        for channel in channels:
            self.messages.append(
                Message(
                    channel=channel.id,
                    ts=self._ts(),
                    text=comment or "",
                    blocks=None,
                    thread_ts=thread_ts,
                    team_id=info.team_id,
                    bot_id=info.bot_id,
                    user=info.user_id,
                    params=params,
                    original_length=len(comment or ""),
                    files=[f.id for f in files],
                )
            )
        return {"files": [f.to_api(self.url) for f in files]}

    def _files_info(self, params: dict[str, Any], info: TokenInfo | None) -> dict[str, Any]:
        """files.info (https://api.slack.com/methods/files.info): the file object and
        (empty) comments; `file_not_found` for a file the token may not see (another
        workspace's, kept private, shared only where the bot is not), `file_deleted` for
        one its uploader deleted."""
        assert info is not None
        file = self.files.get(str(params.get("file") or ""))
        if file is None or not file.completed or not self._visible(file, info):
            raise _ApiError("file_not_found")
        if file.deleted:
            raise _ApiError("file_deleted")
        return {
            "file": file.to_api(self.url, self.channels),
            "comments": [],
            "response_metadata": {"next_cursor": ""},
        }

    def _serve_file(self, req: _Handler, rest: str) -> None:
        """GET `url_private` or `url_private_download`: the bytes for a bearer token of
        the file's workspace carrying files:read that may see the file (see LOGIN_PAGE
        for what anything else gets; https://api.slack.com/types/file: url_private "requires
        an authorization header", and the 2015 change that made url_private and
        url_private_download "require an authorization header with a token that has
        either the files:read or read scopes, like: Authorization: Bearer A_VALID_TOKEN",
        medium.com/slack-developer-blog/important-changes-to-files-in-the-web-api)."""
        key = rest.split("/", 1)[0]
        team_id, _, file_id = key.rpartition("-")
        auth = req.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
        call = self._record(FILE_DOWNLOAD, {"file_id": file_id, "path": unquote(rest)}, token, req)
        if seconds := self._take_delay(FILE_DOWNLOAD):
            time.sleep(seconds)
        with self._lock:
            fault = self._take_fault(FILE_DOWNLOAD)
            file = self.files.get(file_id)
            info = self.tokens.get(token) if token else None
            authorised = (
                info is not None
                and not info.revoked
                and (info.expires_at is None or self.clock() < info.expires_at)
                and info.team_id == team_id
                and "files:read" in info.scopes
            )
            if fault is not None:
                reply = self._fault_reply(fault, api=False)
                data, content_type = None, ""
            elif not authorised or file is None or info is None or not self._visible(file, info):
                reply, data, content_type = (
                    _Reply(200, {}),
                    LOGIN_PAGE.encode(),
                    "text/html; charset=utf-8",
                )
            elif file.deleted or file.data is None:
                reply, data, content_type = _Reply(404, {}), b"File not found", "text/plain"
            else:
                reply, data = _Reply(200, {}), file.data
                content_type = file.mimetype or "application/octet-stream"
        if data is None:
            self._send(req, reply, call)
            return
        call.status = reply.status
        call.response = {"content_type": content_type, "size": len(data)}
        req.send_response(reply.status)
        req.send_header("Content-Type", content_type)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    # ------------------------------------------------- upload and response URLs

    def _serve_upload(self, req: _Handler, file_id: str) -> None:
        body = self._read_body(req)
        content_type = req.headers.get("Content-Type", "")
        if content_type.lower().startswith("multipart/form-data"):
            parsed = self._parse(req, body)
            body = next((v for v in parsed.values() if isinstance(v, bytes)), body)
        call = self._record(UPLOAD, {"file_id": file_id, "size": len(body)}, None, req)
        if seconds := self._take_delay(UPLOAD):
            time.sleep(seconds)
        with self._lock:
            fault = self._take_fault(UPLOAD)
            file = self.files.get(file_id)
            if fault is not None:
                reply = self._fault_reply(fault, api=False)
            elif file is None:
                reply = _Reply(404, "Not Found")
            else:
                file.data = body
                reply = _Reply(200, f"OK - {len(body)}")
        self._send(req, reply, call)

    def _serve_response(self, req: _Handler, name: str) -> None:
        body = self._read_body(req)
        try:
            payload = self._parse(req, body)
            if "payload" in payload and isinstance(payload["payload"], str):
                payload = json.loads(payload["payload"])
        except (ValueError, UnicodeDecodeError):
            call = self._record(RESPONSE_URL, {"_name": name}, None, req)
            self._send(req, _Reply(400, {"ok": False, "error": "invalid_payload"}), call)
            return
        call = self._record(RESPONSE_URL, {**payload, "_name": name}, None, req)
        if seconds := self._take_delay(RESPONSE_URL):
            time.sleep(seconds)
        with self._lock:
            reply = self._answer_response(name, payload)
        self._send(req, reply, call)

    def _answer_response(self, name: str, payload: dict[str, Any]) -> _Reply:
        fault = self._take_fault(RESPONSE_URL)
        if fault is not None:
            return self._fault_reply(fault, api=False)
        url = self._response_urls.setdefault(name, _ResponseUrl(created=self.clock()))
        if url.expired or self.clock() - url.created > RESPONSE_URL_LIFETIME:
            return _Reply(404, {"ok": False, "error": "expired_url"})
        if url.uses >= RESPONSE_URL_MAX_USES:
            return _Reply(404, {"ok": False, "error": "used_url"})
        if not _truthy(payload.get("delete_original")):
            try:
                text, blocks, _, _ = self._message_content(payload, url.channel)
            except _ApiError as e:
                return _Reply(400, {"ok": False, "error": e.error, **e.extra})
            payload = {**payload, "text": text}
            if blocks is not None:
                payload["blocks"] = blocks
        url.uses += 1
        self.responses.setdefault(name, []).append(ResponsePost(name, payload, self.clock()))
        return _Reply(200, {"ok": True})


class _RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A started FakeSlack with the default bot token (`DEFAULT_BOT_TOKEN`, team
    `DEFAULT_TEAM_ID`, `DEFAULT_BOT_SCOPES`); stopped after the test.

    Make it visible to tests with `from fakes.slack_api import fake_slack` in a conftest.
    Tests needing other settings build their own: `with FakeSlack(token_rotation=True)`.
    """
    with FakeSlack() as fake:
        yield fake
