"""Files checked and waiting for their *Import* or *Cancel* click, kept as 0600 copies.

Each file someone sends is downloaded once into this process's private temporary
folder and dry-run there; the message with the dry run carries the entry's random id
in its buttons. The entry is the single place that decides what a click may still do,
under one lock, so a double click or a Cancel racing an Import gets an answer in words
instead of a second import:

- ready: *Import* claims it (-> importing), *Cancel* deletes the copy (-> cancelled);
- importing: the import runs; both buttons answer that it is running;
- imported / failed / cancelled / expired: the copy is gone; a late click says which.

Copies are deleted when the import ends, on *Cancel*, KEEP_SECONDS after the dry run
(a timer, and a sweep whenever the registry is used), and with the folder when the
process exits normally; the entry itself is remembered a day longer
so a late click can say what happened. An id this process never saw (the click reached
another replica, or journey restarted) is fetched from Slack again by the process the
click reached, checked to be the same bytes (the button carries their SHA-256), and
imported; a check older than KEEP_SECONDS is not.
"""

from __future__ import annotations

import atexit
import json
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from journey.imports.service import ImportOptions

KEEP_SECONDS = 30 * 60
MAX_VALUE = 1900  # characters of a button's value (Slack's limit is 2,000)
REMEMBER_SECONDS = 24 * 3600


@dataclass
class Pending:
    id: str
    workspace: str
    user: str
    channel: str
    file_id: str
    name: str
    path: Path
    size: int
    created: float
    state: str = "ready"  # ready | importing | imported | failed | cancelled | expired
    ts: str | None = None  # the message showing the dry run, then the progress
    ended: float | None = None
    outcome: str | None = None  # the result in words, once imported or failed
    sha: str = ""  # SHA-256 of the copy that was checked
    # How the check read the file (and so how Import imports it): --skip-bad when the
    # person is offered the good rows, --map, --timezone... given in a form.
    options: ImportOptions = field(default_factory=ImportOptions)

    def button_value(self) -> dict[str, object]:
        """What the Import and Cancel buttons carry: enough for a process that never saw
        this entry (another replica, or after a restart) to fetch the same file again and
        know it is the one that was checked, when, and with which options."""
        value: dict[str, object] = {
            "i": self.id,
            "f": self.file_id,
            "s": self.sha[:32],
            "t": int(self.created),
        }
        options = self.options.compact()
        if options:
            value["o"] = options
        if len(json.dumps(value, separators=(",", ":"))) > MAX_VALUE and "m" in options:
            # Slack refuses a button value over 2,000 characters. A long column map stays
            # with this process's entry; a click reaching another process imports without
            # it, where the check's question stops the import again (never a misreading).
            value["o"] = {k: v for k, v in options.items() if k != "m"}
        return value


class PendingImports:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, Pending] = {}
        self._folder: Path | None = None
        self._atexit = False

    def folder(self) -> Path:
        """This process's private folder for downloads (0700, made on first use, deleted
        with its copies when the process exits normally)."""
        with self._lock:
            if self._folder is None or not self._folder.exists():
                self._folder = Path(tempfile.mkdtemp(prefix="journey-imports-"))
                if not self._atexit:
                    atexit.register(self.close)
                    self._atexit = True
            return self._folder

    def new_path(self) -> Path:
        return self.folder() / f"{secrets.token_hex(12)}.csv"

    def add(
        self,
        workspace: str,
        user: str,
        channel: str,
        file_id: str,
        name: str,
        path: Path,
        size: int,
        sha: str = "",
        options: ImportOptions | None = None,
    ) -> Pending:
        self.sweep()
        entry = Pending(
            secrets.token_urlsafe(12),
            workspace,
            user,
            channel,
            file_id,
            name,
            path,
            size,
            self.clock(),
            sha=sha,
            options=options or ImportOptions(),
        )
        with self._lock:
            self._entries[entry.id] = entry
        # Copies nobody imports go KEEP_SECONDS after their check even if nobody clicks or
        # sends anything meanwhile (a sweep otherwise runs only when the registry is used).
        timer = threading.Timer(KEEP_SECONDS + 1, self.sweep)
        timer.daemon = True
        timer.start()
        return entry

    def adopt(self, entry: Pending) -> bool:
        """Register an entry made for a click this process never saw the check of, already
        importing; False when that id is known here (a second click was quicker)."""
        self.sweep()
        with self._lock:
            if entry.id in self._entries:
                return False
            entry.state = "importing"
            self._entries[entry.id] = entry
            return True

    def get(self, entry_id: str) -> Pending | None:
        self.sweep()
        with self._lock:
            return self._entries.get(entry_id)

    def claim(self, entry_id: str, user: str) -> Pending | None:
        """The entry moved from ready to importing, for its own user; None otherwise
        (the caller reads `get` to say why)."""
        self.sweep()
        with self._lock:
            entry = self._entries.get(entry_id)
            if entry is None or entry.state != "ready" or entry.user != user:
                return None
            entry.state = "importing"
            return entry

    def release(self, entry: Pending) -> None:
        """importing -> ready: the import could not start (the pool was busy)."""
        with self._lock:
            if entry.state == "importing":
                entry.state = "ready"

    def cancel(self, entry_id: str, user: str) -> Pending | None:
        """ready -> cancelled, its copy deleted; None when it was not ready (or not theirs)."""
        with self._lock:
            entry = self._entries.get(entry_id)
            if entry is None or entry.state != "ready" or entry.user != user:
                return None
            entry.state, entry.ended = "cancelled", self.clock()
        entry.path.unlink(missing_ok=True)
        return entry

    def finish(self, entry: Pending, state: str, outcome: str) -> None:
        """The import ended (imported or failed): the copy goes, the words stay."""
        with self._lock:
            entry.state, entry.ended, entry.outcome = state, self.clock(), outcome
        entry.path.unlink(missing_ok=True)

    def drop(self, entry: Pending) -> None:
        """Forget an entry whose dry run never reached its person."""
        with self._lock:
            self._entries.pop(entry.id, None)
        entry.path.unlink(missing_ok=True)

    def sweep(self) -> None:
        """Delete copies older than KEEP_SECONDS that nobody imported; forget entries
        that ended more than REMEMBER_SECONDS ago."""
        now = self.clock()
        stale: list[Path] = []
        with self._lock:
            for key, entry in list(self._entries.items()):
                if entry.state == "ready" and now - entry.created > KEEP_SECONDS:
                    entry.state, entry.ended = "expired", now
                    stale.append(entry.path)
                elif entry.ended is not None and now - entry.ended > REMEMBER_SECONDS:
                    del self._entries[key]
        for path in stale:
            path.unlink(missing_ok=True)

    def close(self) -> None:
        """Delete the folder and every copy in it (tests; a process exiting)."""
        with self._lock:
            folder, self._folder = self._folder, None
            self._entries.clear()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


PENDING = PendingImports()
