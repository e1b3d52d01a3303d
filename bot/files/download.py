"""A file someone sent the bot, looked up with files.info and downloaded with the bot token.

What Slack does that this is written for:

- The `file_shared` event (and a modal's file_input) carries the file's id and little
  else; files.info (scope files:read) gives its name, size and `url_private_download`,
  and answers `file_not_found` for a file the bot cannot see (kept private, or shared
  only where the bot is not) and `file_deleted` once its uploader deleted it
  (https://api.slack.com/methods/files.info).
- `url_private_download` needs `Authorization: Bearer <token with files:read>`
  (medium.com/slack-developer-blog/important-changes-to-files-in-the-web-api). Without
  it Slack does not answer 401: it answers its sign-in page as HTML with status 200
  (gist.github.com/ErikKalkoken/f3ab28617d5099531ded865d111dbac1). A download that is
  HTML, or a redirect away from the file, is therefore a refusal, never the file.

How: the bearer goes only to Slack's file host (`files.` + the API host, or the API's own
host when SLACK_API_URL points at a test server), redirects are not followed (httpx
would follow them, and a token must not travel to wherever a redirect points), the body
is streamed to a 0600 file in chunks and cut off past the size limit, and neither the
URL (it names the file and workspace) nor the token is ever logged or shown: log lines
carry the file id only.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack_errors import explain
from journey.errors import JourneyError

log = logging.getLogger("journey.bot")
CHUNK = 64 * 1024
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# What an export is: journey reads CSV (comma, semicolon or tab separated).
CSV_TYPES = frozenset({"csv", "tsv", "text"})
CSV_SUFFIXES = (".csv", ".tsv", ".txt")


class FileRefused(JourneyError):
    """The file cannot be used, in words for the person who sent it."""


@dataclass(frozen=True)
class SlackFile:
    """What files.info says about a file (https://api.slack.com/types/file)."""

    id: str
    name: str
    size: int
    user: str
    filetype: str
    ims: tuple[str, ...] = ()
    url: str = field(default="", repr=False)  # url_private_download: never logged

    @classmethod
    def from_api(cls, file: dict[str, Any]) -> SlackFile:
        return cls(
            id=str(file.get("id") or ""),
            name=str(file.get("name") or file.get("title") or "file"),
            size=int(file.get("size") or 0),
            user=str(file.get("user") or ""),
            filetype=str(file.get("filetype") or ""),
            ims=tuple(str(c) for c in file.get("ims") or ()),
            url=str(file.get("url_private_download") or file.get("url_private") or ""),
        )

    @property
    def looks_like_csv(self) -> bool:
        return self.filetype in CSV_TYPES or self.name.lower().endswith(CSV_SUFFIXES)


async def file_info(client: AsyncWebClient, file_id: str) -> SlackFile:
    """files.info, or FileRefused saying why in words."""
    try:
        answer = await client.files_info(file=file_id)
    except SlackApiError as exc:
        error = exc.response.get("error")
        log.warning("files.info failed for file %s: %s", file_id, error)
        if error == "file_not_found":
            raise FileRefused(
                "I can't see that file: Slack lets journey read only files shared with it. "
                "Drop the file into this direct message with journey."
            ) from None
        if error == "file_deleted":
            raise FileRefused(
                "That file was deleted from Slack, so there is nothing to import. Drop it "
                "into this direct message again."
            ) from None
        if error == "missing_scope":
            raise FileRefused(
                "journey can't read files yet: its Slack app lacks the `files:read` "
                "permission. Ask a workspace admin to reinstall journey with the current "
                "manifest (it adds files:read)."
            ) from None
        raise FileRefused(f"I couldn't look the file up in Slack. {explain(exc)}") from None
    return SlackFile.from_api(answer.get("file") or {})


def trusted_file_url(url: str, api_url: str) -> bool:
    """Whether the bot token may be sent to `url`: Slack's file host for this API (the
    API host with `files.` before it), or the API's own host and scheme (a test server)."""
    target, api = urlsplit(url), urlsplit(api_url)
    if not target.hostname or not api.hostname:
        return False
    if (target.scheme, target.netloc) == (api.scheme, api.netloc):
        return True
    return target.scheme == "https" and target.hostname == f"files.{api.hostname}"


def download(
    file: SlackFile,
    token: str,
    dest: Path,
    *,
    max_bytes: int,
    api_url: str,
    transport: httpx.BaseTransport | None = None,
) -> str:
    """Stream `file` into `dest` (created 0600, never overwritten); its SHA-256 hex.
    FileRefused in words when Slack does not hand out the file or it is too big."""
    if not file.url or not trusted_file_url(file.url, api_url):
        log.warning("file %s: its download address is not Slack's file host; not fetched", file.id)
        raise FileRefused(
            "Slack gave an address for this file that is not its file server, so journey "
            "did not send its token there. Try dropping the file again."
        )
    digest = hashlib.sha256()
    written = 0
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            httpx.Client(timeout=TIMEOUT, follow_redirects=False, transport=transport) as http,
            http.stream("GET", file.url, headers=_bearer(token)) as answer,
        ):
            _check_answer(file, answer)
            for chunk in answer.iter_bytes(CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise FileRefused(too_big(file.name, written, max_bytes, while_reading=True))
                digest.update(chunk)
                out.write(chunk)
    except httpx.HTTPError as exc:
        dest.unlink(missing_ok=True)
        log.warning("file %s: download failed (%s)", file.id, type(exc).__name__)
        raise FileRefused(
            "I couldn't download the file from Slack (the connection failed). Try again in "
            "a minute."
        ) from None
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    log.info("file %s: downloaded %d bytes", file.id, written)
    return digest.hexdigest()


def _bearer(token: str) -> dict[str, str]:
    """The Authorization header; none without a token (Slack then shows its sign-in page)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def _check_answer(file: SlackFile, answer: httpx.Response) -> None:
    status = answer.status_code
    content_type = answer.headers.get("content-type", "").lower()
    if status == 404:
        raise FileRefused(
            "Slack no longer has that file (it was deleted). Drop it into this direct "
            "message again."
        )
    if status in (301, 302, 303, 307, 308) or content_type.startswith("text/html"):
        # Slack's sign-in page, or a redirect to it: the token was not good for this file.
        log.warning("file %s: Slack answered the download with its sign-in page", file.id)
        raise FileRefused(
            "Slack answered with its sign-in page instead of the file: journey's token "
            "can't read it (the app needs the `files:read` permission, and the file must "
            "be shared with journey). Ask a workspace admin to reinstall journey with the "
            "current manifest, then drop the file again."
        )
    if status != 200:
        log.warning("file %s: download answered HTTP %d", file.id, status)
        raise FileRefused(
            f"Slack did not hand out the file (HTTP {status}). Try again in a minute."
        )


def too_big(name: str, size: int, limit: int, *, while_reading: bool = False) -> str:
    what = "more than" if while_reading else ""
    size_words = f"{what} {_mb(size)}".strip()
    return (
        f"{name} is {size_words}, over the {_mb(limit)} journey imports from Slack "
        "(JOURNEY_IMPORT_MAX_MB). Split the export by date range, or ask your journey "
        "operator to import it on the server with `journey import`."
    )


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"
