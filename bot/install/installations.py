"""Slack installations in journey's own database (used OAuth states: bot/install/oauth_state.py).

slack_sdk ships SQL stores, but they keep bot tokens in plain text, and its
file stores live on one machine's disk. These keep everything in the shared
database (SQLite locally, PostgreSQL when several replicas run), with tokens
encrypted by journey.secrets.Cipher, and without in-process caches: every
replica reads the row, so a token refreshed or revoked by one is seen by all at
once.

The database engine is synchronous (the core library's); each call runs on a
worker thread via asyncio.to_thread so Bolt's event loop never blocks on I/O.
A file-based SQLite URL is required for SQLite (an in-memory database is per
thread).

The app needs bot tokens only. User tokens of an installation (if user scopes
were ever requested) are not stored.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Connection, Engine, Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session
from sqlmodel import select as select_model

from bot.blocks.mrkdwn import Mrkdwn, md, mrkdwn
from journey.db import session_scope
from journey.errors import JourneyError
from journey.models.installation import SlackInstallation, SlackOAuthState
from journey.models.schedule import ALERT_KINDS, AlertRule, DigestSubscription
from journey.models.workspace import Workspace
from journey.schedule.alerts import ensure_default_rules, route_default_rules
from journey.secret_rows import installation_identity
from journey.secrets import Cipher
from journey.uninstall import Resumed, resume_workspace

Clock = Callable[[], datetime]
T = TypeVar("T")

INSTALLATIONS: Table = SlackInstallation.__table__  # type: ignore[attr-defined]
STATES: Table = SlackOAuthState.__table__  # type: ignore[attr-defined]

# Threads per store for the lock path (see DatabaseInstallationStore.__init__).
LOCK_THREADS = 8
# How long a waiter may queue for a row another replica is refreshing (PostgreSQL).
# The refresher holds it for one HTTP call, which the client bounds well below this.
LOCK_TIMEOUT_SECONDS = 30


def utcnow() -> datetime:
    return datetime.now(UTC)


def installation_key(
    enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
) -> str | None:
    """The row id: the enterprise id for org-wide installs, the team id otherwise."""
    if is_enterprise_install or not team_id:
        return enterprise_id or None
    return team_id


def _candidate_keys(
    enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
) -> list[str]:
    """Keys to try, best first.

    A workspace request (is_enterprise_install false or unknown) prefers the
    workspace's own install and falls back to an org-wide install of its
    enterprise; calls that do not say (deletes, revocations) resolve the same way.
    """
    if is_enterprise_install:
        return [enterprise_id] if enterprise_id else []
    return [key for key in (team_id, enterprise_id) if key]


class StaleInstallation(JourneyError):
    """The row changed under a compare-and-swap (someone wrote without the lock)."""


@dataclass(frozen=True)
class StoredInstallation:
    """A decrypted installation row. Tokens are kept out of repr so logs stay clean."""

    key: str
    enterprise_id: str | None
    enterprise_name: str | None
    team_id: str | None
    team_name: str | None
    is_enterprise_install: bool
    app_id: str | None
    bot_id: str | None
    bot_user_id: str | None
    bot_scopes: list[str]
    bot_token: str | None = field(repr=False)
    bot_refresh_token: str | None = field(repr=False)
    bot_token_expires_at: datetime | None
    installer_user_id: str | None
    installed_at: datetime
    updated_at: datetime
    is_active: bool
    token_version: int

    @property
    def usable(self) -> bool:
        """Active and holding a bot token."""
        return self.is_active and self.bot_token is not None

    def expires_within(self, window: timedelta, now: datetime) -> bool:
        """True when token rotation is on and the token expires before now + window."""
        if self.bot_refresh_token is None or self.bot_token_expires_at is None:
            return False
        return self.bot_token_expires_at <= now + window

    def to_bot(self) -> Bot:
        return Bot(
            app_id=self.app_id,
            enterprise_id=self.enterprise_id,
            enterprise_name=self.enterprise_name,
            team_id=self.team_id,
            team_name=self.team_name,
            bot_token=self.bot_token or "",
            bot_id=self.bot_id or "",
            bot_user_id=self.bot_user_id or "",
            bot_scopes=self.bot_scopes,
            bot_refresh_token=self.bot_refresh_token,
            bot_token_expires_at=_epoch(self.bot_token_expires_at),
            is_enterprise_install=self.is_enterprise_install,
            installed_at=self.installed_at.timestamp(),
        )

    def to_installation(self) -> Installation:
        return Installation(
            app_id=self.app_id,
            enterprise_id=self.enterprise_id,
            enterprise_name=self.enterprise_name,
            team_id=self.team_id,
            team_name=self.team_name,
            bot_token=self.bot_token,
            bot_id=self.bot_id,
            bot_user_id=self.bot_user_id,
            bot_scopes=self.bot_scopes,
            bot_refresh_token=self.bot_refresh_token,
            bot_token_expires_at=_epoch(self.bot_token_expires_at),
            user_id=self.installer_user_id or "",
            is_enterprise_install=self.is_enterprise_install,
            token_type="bot",
            installed_at=self.installed_at.timestamp(),
        )


def _seal(cipher: Cipher, token: str | None, key: str, column: str) -> bytes | None:
    """A token encrypted and bound to its installation row and column (journey.secret_rows)."""
    if not token:
        return None
    return cipher.encrypt(token, bound_to=installation_identity(key, column))


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def _insert_for(conn: Connection) -> Callable[[Table], Any]:
    # Both dialects spell upsert as INSERT ... ON CONFLICT DO UPDATE.
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


class DatabaseInstallationStore(AsyncInstallationStore):
    """slack_sdk's AsyncInstallationStore over journey's database, tokens encrypted.

    One row per workspace (or org, for org-wide installs); reinstalling
    overwrites it. Deleting the bot (Slack's `tokens_revoked`) keeps the row but
    marks it inactive and drops the ciphertext; uninstalling deletes the row.
    """

    def __init__(
        self,
        engine: Engine,
        cipher: Cipher,
        *,
        clock: Clock = utcnow,
        logger: logging.Logger | None = None,
    ) -> None:
        self.engine = engine
        self.cipher = cipher
        self.clock = clock
        self._logger = logger or logging.getLogger(__name__)
        # The lock path runs on its own threads: a lock holder must always get a
        # thread to write and commit, even when the shared to_thread pool is full
        # of callers waiting (on SQLite, for the very write lock it holds).
        self._lock_threads = ThreadPoolExecutor(
            max_workers=LOCK_THREADS, thread_name_prefix="journey-token-lock"
        )
        self._process_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    # ---- slack_sdk interface -------------------------------------------------

    async def async_save(self, installation: Installation) -> None:
        """Store (or replace) the installation's bot token, encrypted."""
        if installation.user_token is not None:
            self._logger.info("not storing the user token of an installation (bot tokens only)")
        if installation.bot_token is None:
            self._logger.warning(
                "installation for %s has no bot token; nothing stored",
                installation_key(
                    installation.enterprise_id,
                    installation.team_id,
                    installation.is_enterprise_install,
                ),
            )
            return
        await self._save(installation.to_bot(), installer_user_id=installation.user_id)

    async def async_save_bot(self, bot: Bot) -> None:
        await self._save(bot, installer_user_id=None)

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        found = await self.find(enterprise_id, team_id, is_enterprise_install)
        return found.to_bot() if found is not None and found.usable else None

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        """The installation; with `user_id`, only if that user installed it.

        Only the latest installer's row is kept, and no user tokens, so asking
        for any other user's installation finds nothing (as the interface expects).
        """
        found = await self.find(enterprise_id, team_id, is_enterprise_install)
        if found is None or not found.usable:
            return None
        if user_id is not None and user_id != found.installer_user_id:
            return None
        return found.to_installation()

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        """The bot token was revoked: keep the row, inactive and without ciphertext."""
        await self._deactivate(enterprise_id, team_id)

    async def async_delete_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
    ) -> None:
        """Delete the installation. With `user_id` (a user's tokens were revoked)
        there is nothing to delete: user tokens are never stored."""
        if user_id is not None:
            return
        await asyncio.to_thread(self._delete_sync, enterprise_id, team_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        """The app was uninstalled: forget the installation entirely."""
        await asyncio.to_thread(self._delete_sync, enterprise_id, team_id)

    # ---- journey additions ---------------------------------------------------

    async def mark_inactive(self, team_id: str | None, *, enterprise_id: str | None = None) -> None:
        """Stop using a workspace's token (Slack said it was revoked or invalid).

        The ciphertext is dropped too: a revoked token is worth nothing, and
        reinstalling the app stores a new one and reactivates the row.
        """
        await self._deactivate(enterprise_id, team_id)

    async def bot_user_of(self, team_id: str) -> str | None:
        """The bot user id of the team's installation (tokens_revoked names bot tokens by
        it), or None when there is none."""
        found = await self.find(None, team_id)
        return found.bot_user_id if found is not None else None

    async def find(
        self,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> StoredInstallation | None:
        """The decrypted row, active or not (None if never installed)."""
        keys = _candidate_keys(enterprise_id, team_id, is_enterprise_install)
        if not keys:
            return None
        return await asyncio.to_thread(self._find_sync, keys)

    @asynccontextmanager
    async def refresh_lock(self, key: str) -> AsyncIterator[RefreshLock]:
        """Hold the installation row exclusively for one token refresh.

        Across replicas the database does it. PostgreSQL: a transaction with
        `SELECT ... FOR UPDATE` on the row (other refreshers queue on the row;
        plain reads are not blocked). SQLite: `BEGIN IMMEDIATE`, the database's
        write lock (readers carry on under WAL). The row is read after the lock
        is granted, so a waiter sees what the previous holder committed. Commits
        when the block ends normally, rolls back otherwise.

        Within this process an asyncio lock queues callers first (per row on
        PostgreSQL, one for the whole file on SQLite, matching what the database
        locks), so concurrent requests do not each park a thread on the database.
        """
        async with self._process_lock(key):
            conn, row = await self._owning(lambda: self._lock_sync(key))
            try:
                yield RefreshLock(self, conn, self._stored(row) if row is not None else None)
            except BaseException:
                await self._on_lock_thread(_finish, conn, commit=False)
                raise
            await self._on_lock_thread(_finish, conn, commit=True)

    def _process_lock(self, key: str) -> asyncio.Lock:
        name = "*" if self.engine.dialect.name == "sqlite" else key
        lock = self._process_locks.get(name)
        if lock is None:
            lock = asyncio.Lock()
            self._process_locks[name] = lock
        return lock

    async def _on_lock_thread(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._lock_threads, partial(fn, *args, **kwargs))

    async def _owning(
        self, acquire: Callable[[], tuple[Connection, Mapping[str, Any] | None]]
    ) -> tuple[Connection, Mapping[str, Any] | None]:
        """Run `acquire` on a lock thread; if the caller is cancelled meanwhile, the
        thread still finishes, and the connection (and lock) it got is released
        rather than held until garbage collection."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._lock_threads, acquire)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:

            def release(done: asyncio.Future[tuple[Connection, Any]]) -> None:
                if not done.cancelled() and done.exception() is None:
                    loop.run_in_executor(self._lock_threads, partial(_finish, done.result()[0]))

            future.add_done_callback(release)
            raise

    # ---- synchronous parts (run on worker threads) ---------------------------

    async def _save(self, bot: Bot, *, installer_user_id: str | None) -> None:
        key = installation_key(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        if key is None:
            raise JourneyError("Cannot store an installation without a team or enterprise id.")
        now = self.clock()
        values: dict[str, Any] = {
            "id": key,
            "enterprise_id": bot.enterprise_id,
            "enterprise_name": bot.enterprise_name,
            "team_id": bot.team_id,
            "team_name": bot.team_name,
            "is_enterprise_install": bool(bot.is_enterprise_install),
            "app_id": bot.app_id,
            "bot_id": bot.bot_id,
            "bot_user_id": bot.bot_user_id,
            "bot_scopes": ",".join(bot.bot_scopes or []),
            "bot_token": _seal(self.cipher, bot.bot_token, key, "bot_token"),
            "bot_refresh_token": _seal(
                self.cipher, bot.bot_refresh_token, key, "bot_refresh_token"
            ),
            "bot_token_expires_at": bot.bot_token_expires_at,
            "installed_at": datetime.fromtimestamp(bot.installed_at, UTC),
            "updated_at": now,
            "is_active": True,
            "token_version": 1,
        }
        if installer_user_id:
            values["installer_user_id"] = installer_user_id
        await asyncio.to_thread(self._upsert_sync, values)

    def _upsert_sync(self, values: Mapping[str, Any]) -> None:
        with self.engine.begin() as conn:
            stmt = _insert_for(conn)(INSTALLATIONS).values(**values)
            changes = {
                name: stmt.excluded[name] for name in values if name not in ("id", "token_version")
            }
            changes["token_version"] = INSTALLATIONS.c.token_version + 1
            conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=changes))

    def _find_sync(self, keys: list[str]) -> StoredInstallation | None:
        with self.engine.connect() as conn:
            rows = conn.execute(select(INSTALLATIONS).where(INSTALLATIONS.c.id.in_(keys))).all()
        by_key = {row.id: row._mapping for row in rows}
        for key in keys:
            if key in by_key:
                return self._stored(by_key[key])
        return None

    def _resolve_sync(self, conn: Connection, keys: list[str]) -> str | None:
        found = set(
            conn.execute(select(INSTALLATIONS.c.id).where(INSTALLATIONS.c.id.in_(keys))).scalars()
        )
        return next((key for key in keys if key in found), None)

    def _delete_sync(self, enterprise_id: str | None, team_id: str | None) -> None:
        keys = _candidate_keys(enterprise_id, team_id, None)
        if not keys:
            return
        with self.engine.begin() as conn:
            key = self._resolve_sync(conn, keys)
            if key is not None:
                conn.execute(delete(INSTALLATIONS).where(INSTALLATIONS.c.id == key))

    async def _deactivate(self, enterprise_id: str | None, team_id: str | None) -> None:
        keys = _candidate_keys(enterprise_id, team_id, None)
        if keys:
            await asyncio.to_thread(self._deactivate_sync, keys)

    def _deactivate_sync(self, keys: list[str]) -> None:
        with self.engine.begin() as conn:
            key = self._resolve_sync(conn, keys)
            if key is None:
                return
            conn.execute(_deactivate_stmt(key, self.clock()))
        self._logger.warning("installation %s marked inactive (token revoked)", key)

    def _lock_sync(self, key: str) -> tuple[Connection, Mapping[str, Any] | None]:
        conn = self.engine.connect()
        try:
            query = select(INSTALLATIONS).where(INSTALLATIONS.c.id == key)
            if conn.dialect.name == "sqlite":
                # pysqlite would otherwise open its own deferred transaction; take
                # control of BEGIN so the write lock is held before the row is read.
                conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'")
                query = query.with_for_update()
            row = conn.execute(query).first()
            return conn, (row._mapping if row is not None else None)
        except BaseException:
            _finish(conn, commit=False)
            raise

    def _stored(self, row: Mapping[str, Any]) -> StoredInstallation:
        def plain(column: str) -> str | None:
            value = row[column]
            if value is None:
                return None
            identity = installation_identity(row["id"], column)
            return self.cipher.decrypt(bytes(value), bound_to=identity)

        scopes = row["bot_scopes"] or ""
        return StoredInstallation(
            key=row["id"],
            enterprise_id=row["enterprise_id"],
            enterprise_name=row["enterprise_name"],
            team_id=row["team_id"],
            team_name=row["team_name"],
            is_enterprise_install=bool(row["is_enterprise_install"]),
            app_id=row["app_id"],
            bot_id=row["bot_id"],
            bot_user_id=row["bot_user_id"],
            bot_scopes=[s for s in scopes.split(",") if s],
            bot_token=plain("bot_token"),
            bot_refresh_token=plain("bot_refresh_token"),
            bot_token_expires_at=row["bot_token_expires_at"],
            installer_user_id=row["installer_user_id"],
            installed_at=row["installed_at"],
            updated_at=row["updated_at"],
            is_active=bool(row["is_active"]),
            token_version=row["token_version"],
        )


def _deactivate_stmt(key: str, now: datetime) -> Any:
    return (
        update(INSTALLATIONS)
        .where(INSTALLATIONS.c.id == key)
        .values(
            is_active=False,
            bot_token=None,
            bot_refresh_token=None,
            bot_token_expires_at=None,
            token_version=INSTALLATIONS.c.token_version + 1,
            updated_at=now,
        )
    )


class RefreshLock:
    """The installation row as read under the lock, and the writes allowed under it."""

    def __init__(
        self, store: DatabaseInstallationStore, conn: Connection, current: StoredInstallation | None
    ) -> None:
        self._store = store
        self._conn = conn
        self.current = current

    async def replace_tokens(
        self, *, bot_token: str, bot_refresh_token: str | None, expires_at: datetime
    ) -> StoredInstallation:
        """Save a refreshed pair (encrypted) and bump the version, compare-and-swap."""
        current = self.current
        if current is None:
            raise StaleInstallation("The installation was deleted during a token refresh.")
        cipher = self._store.cipher
        now = self._store.clock()
        stmt = (
            update(INSTALLATIONS)
            .where(
                INSTALLATIONS.c.id == current.key,
                INSTALLATIONS.c.token_version == current.token_version,
            )
            .values(
                bot_token=_seal(cipher, bot_token, current.key, "bot_token"),
                bot_refresh_token=_seal(
                    cipher, bot_refresh_token, current.key, "bot_refresh_token"
                ),
                bot_token_expires_at=expires_at,
                token_version=INSTALLATIONS.c.token_version + 1,
                updated_at=now,
            )
        )
        result = await self._store._on_lock_thread(self._conn.execute, stmt)
        if result.rowcount != 1:
            raise StaleInstallation(
                f"Installation {current.key} changed during a token refresh "
                f"(expected version {current.token_version})."
            )
        self.current = replace(
            current,
            bot_token=bot_token,
            bot_refresh_token=bot_refresh_token,
            bot_token_expires_at=expires_at,
            token_version=current.token_version + 1,
            updated_at=now,
        )
        return self.current

    async def deactivate(self) -> None:
        """Mark the locked installation inactive (its refresh token is dead)."""
        if self.current is None:
            return
        await self._store._on_lock_thread(
            self._conn.execute, _deactivate_stmt(self.current.key, self._store.clock())
        )
        self.current = replace(
            self.current,
            is_active=False,
            bot_token=None,
            bot_refresh_token=None,
            bot_token_expires_at=None,
            token_version=self.current.token_version + 1,
        )


def _finish(conn: Connection, *, commit: bool = False) -> None:
    """End the locked transaction and give the connection back to the pool."""
    try:
        if conn.dialect.name == "sqlite":
            # We issued BEGIN ourselves, so we end it ourselves; after a failed
            # BEGIN there is nothing to roll back.
            if commit:
                conn.exec_driver_sql("COMMIT")
            elif conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
                conn.exec_driver_sql("ROLLBACK")
        elif commit:
            conn.commit()
        else:
            conn.rollback()
    finally:
        conn.close()


# ---- default alerts on install ---------------------------------------------------


INSTALL_DM_TEXT = (
    "Thanks for installing journey. Its alerts (repeat purchases, funnel steps, valuable "
    "customers not coming back) come to this conversation until someone runs "
    "`/journey alerts channel` in the channel that should get them; a channel that starts "
    "a digest (`/journey digest weekly`) is told how. `/journey alerts` lists them. "
    "You can type `/journey help` right here for everything else."
)


def first_digest_channel(session: Session, workspace_id: str) -> str | None:
    """The channel of the workspace's oldest running digest: where the team already
    reads its numbers, so the best home for alerts the app routes on its own."""
    return session.exec(
        select_model(DigestSubscription.channel_id)
        .where(
            DigestSubscription.workspace_id == workspace_id,
            DigestSubscription.status == "active",
        )
        .order_by(DigestSubscription.created_at, DigestSubscription.id)  # type: ignore[arg-type]
        .limit(1)
    ).first()


def install_default_alerts(
    engine: Engine,
    workspace_id: str,
    *,
    direct_channel: str | None = None,
    now: datetime | None = None,
) -> str | None:
    """Create the workspace's default alert rules and give them a destination.

    The destination, in order: the first channel with a running digest (a
    reinstall, or digests set up before), else `direct_channel` (a direct
    message with the installer), else none yet: then the first `/journey digest`
    subscription gives them its channel (bot/commands/schedule_settings.py). Rules someone already
    pointed somewhere keep their channel. Returns the destination given to the
    rules that had none (None if none).

    Only for a workspace that exists (data loaded or a source connected): rules
    belong to a workspace row, and creating an empty one here would turn the
    bot's "no data yet, here is how to load some" answer into empty reports.
    A workspace installed before it has data gets its rules at the first
    `/journey digest` or `/journey alerts`.
    """
    with session_scope(engine) as session:
        if session.get(Workspace, workspace_id) is None:
            return None
        channel = first_digest_channel(session, workspace_id) or direct_channel
        if channel is None:
            ensure_default_rules(session, workspace_id, now=now)
        else:
            route_default_rules(session, workspace_id, channel, now=now)
        return channel


def needs_direct_channel(engine: Engine, workspace_id: str) -> bool:
    """Whether install_default_alerts would fall back to the installer's direct message:
    the workspace exists, has no digest channel, and some rule (or none at all) has no
    destination."""
    with session_scope(engine) as session:
        if session.get(Workspace, workspace_id) is None:
            return False
        if first_digest_channel(session, workspace_id) is not None:
            return False
        channels = session.exec(
            select_model(AlertRule.channel_id).where(AlertRule.workspace_id == workspace_id)
        ).all()
        return len(channels) < len(ALERT_KINDS) or any(c is None for c in channels)


async def _told(call: Awaitable[T], failed: str, workspace_id: str) -> T | None:
    """Await one Slack call that tells an installer something; Slack's refusal is logged
    ('could not <failed>: error', workspace id in place of %s) and gives None, because an
    install never fails for want of a message."""
    try:
        return await call
    except SlackApiError as exc:
        logging.getLogger(__name__).warning(
            "could not " + failed + ": %s", workspace_id, exc.response.get("error")
        )
        return None


async def default_alerts_on_install(
    engine: Engine, installation: Installation, client: AsyncWebClient
) -> str | None:
    """The install hook: default alert rules with a destination that works at once.

    The installer's direct message is opened (and told where alerts go) only when no
    digest channel exists to take them. Failing to open it leaves the rules waiting
    for the first digest channel; the install itself never fails because of it.
    """
    workspace_id = installation.team_id or installation.enterprise_id
    if not workspace_id:
        return None
    direct: str | None = None
    token = installation.bot_token
    if (
        token
        and installation.user_id
        and await asyncio.to_thread(needs_direct_channel, engine, workspace_id)
    ):
        opened = await _told(
            client.conversations_open(token=token, users=installation.user_id),
            "open a direct message with the installer of %s",
            workspace_id,
        )
        if opened is not None:
            direct = str((opened.get("channel") or {}).get("id") or "") or None
    channel = await asyncio.to_thread(
        install_default_alerts, engine, workspace_id, direct_channel=direct
    )
    if direct is not None and channel == direct:
        await _told(
            client.chat_postMessage(token=token, channel=direct, text=str(mrkdwn(INSTALL_DM_TEXT))),
            "tell the installer of %s where alerts go",
            workspace_id,
        )
    return channel


# ---- reinstall after an uninstall ------------------------------------------------


def resume_after_reinstall(engine: Engine, workspace_id: str) -> Resumed:
    with session_scope(engine) as session:
        return resume_workspace(session, workspace_id, utcnow())


def welcome_back_text(resumed: Resumed) -> Mrkdwn:
    """What the installer is told when a reinstall finds the workspace's data kept."""
    text = md(
        "Welcome back: your data was kept, and {what} started again.",
        what=(
            f"{resumed.digests} digest{'s' if resumed.digests != 1 else ''} and "
            f"{resumed.alerts} alert{'s' if resumed.alerts != 1 else ''}"
        ),
    )
    if resumed.need_keys:
        text = md(
            "{text} Removing journey deleted the keys of {names}: connect "
            "{them} again with `/journey connect` to sync {them} again.",
            text=text,
            names=md(", ").join(resumed.need_keys),
            them="it" if len(resumed.need_keys) == 1 else "them",
        )
    return text


async def resume_on_install(
    engine: Engine, installation: Installation, client: AsyncWebClient
) -> Resumed | None:
    """The install hook for a reinstall within the grace period: resume what the uninstall
    stopped, and tell the installer which sources need their keys again."""
    workspace_id = installation.team_id or installation.enterprise_id
    if not workspace_id:
        return None
    resumed = await asyncio.to_thread(resume_after_reinstall, engine, workspace_id)
    if not resumed.was_uninstalled:
        return resumed
    token = installation.bot_token
    if token and installation.user_id:
        failed = "tell the installer of %s what the reinstall resumed"
        opened = await _told(
            client.conversations_open(token=token, users=installation.user_id),
            failed,
            workspace_id,
        )
        if opened is not None:
            channel = str((opened.get("channel") or {}).get("id") or "")
            await _told(
                client.chat_postMessage(
                    token=token, channel=channel, text=str(welcome_back_text(resumed))
                ),
                failed,
                workspace_id,
            )
    return resumed
