"""One person per human across a workspace's sources.

A small business keeps leads in one tool and sales in another; counted per source
record, the same woman is a lead who never bought (CRM) and a buyer nobody acquired
(shop), and every channel's conversion comes out wrong. So records are joined into
people, and the journey state (journey/state.py) keeps one row per person: every report
counts and names people.

The rules, deterministic and explained (nothing probabilistic):

- Records join on the normalised email: trimmed and case-folded (`+tags` and dots are
  kept unless the workspace's settings say otherwise: journey/matching.py). A record
  without an email whose source id is an address (a file keyed by email) matches on it.
- When the workspace turns it on, records also join on the phone number in E.164.
- Only records of different sources join: one source's own records are different
  customers by its own account, as before people existed.
- A shared address is not joined blindly: when one source holds two or more records with
  that email (a family address behind several Stripe customers with different names, an
  `info@` used by the staff), or more than `MAX_RECORDS` records share it, every record
  stays a person of its own and `conflicts()` lists the address with the reason, until
  someone decides with a manual link.
- Manual decisions (`decide_link`, `decide_unlink`; the CLI's `journey people link A B`
  and `journey people unlink RECORD`) beat the rules and stay through every later sync and
  re-import: they are rows of their own (`person_decision`), applied after the rules each
  time a record is relinked.

A person's id is the smallest record id among its records, so a record alone keeps its own
id and a workspace with one source counts exactly as before. Each record keeps why it is
where it is (`link_rule`: "email", "phone", "manual", "conflict" or None when alone;
`link_value`: the email or number matched), which `journey people show` prints.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import bindparam, text
from sqlmodel import Session

from journey.errors import JourneyError, NotFound
from journey.matching import MatchRules
from journey.matching import email_key as _email_key
from journey.reports import PeopleCount

MAX_RECORDS = 25
_CHUNK = 500
# Past this many changed records, relink writes them through a temporary table and one
# joined UPDATE (COPY on PostgreSQL) instead of a statement per record: building people for
# 1M records wrote 1M single-row UPDATEs, most of the build's time (bench/people.py).
_BULK = 5000
# The columns relink keeps per record, in the order of an update's values after the id.
_LINK_COLUMNS = ("person_id", "email_key", "link_rule", "link_value", "phone_key")


def email_key(email: str | None) -> str | None:
    """The email trimmed and case-folded (the default rule), None when not an address;
    a workspace's own rule is `MatchRules.of(...).email_key`."""
    return _email_key(email)


def _name_key(name: str | None) -> str:
    return " ".join((name or "").casefold().split())


class Record(NamedTuple):
    """A record as relink sees it (a tuple: a million of them are made for a full build)."""

    id: int
    source_id: int
    name: str | None
    email_key: str | None
    person_id: int | None
    stored: tuple[str | None, ...]  # email_key, link_rule, link_value, phone_key
    phone_key: str | None = None


class _Union:
    """Union-find over record ids; a record never joined is its own root and costs one
    dict look-up (a full build asks about every record)."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, a: int) -> int:
        parent = self.parent
        root = a
        while (up := parent.get(root, root)) != root:
            root = up
        while a != root:
            parent[a], a = root, parent[a]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    items = sorted(set(ids))
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _records(
    session: Session,
    workspace_id: str,
    where: str,
    params: dict[str, Any],
    listed: str = "",
    rules: MatchRules | None = None,
    fresh: bool = False,
) -> list[Record]:
    """Records matching `where`, keyed by `rules`; `listed` names the parameter that holds
    a list. A stored phone key is kept unless `fresh` (records whose data just changed):
    reading a number costs ~0.1 ms, a million of them minutes, and stored keys are made
    with the workspace's rules (a change of rules clears them: `clear_phone_keys`)."""
    rules = rules or MatchRules()
    table = "customer"
    if where == "1 = 1" and session.get_bind().dialect.name == "sqlite":
        # The whole workspace: read the table in order. Without statistics SQLite walks an
        # index on workspace_id and fetches each row out of order (1.5x the CPU at 1M).
        table = "customer NOT INDEXED"
    query = text(
        "SELECT id, source_id, name, COALESCE(email, external_id), person_id, email_key, "
        "link_rule, link_value, phone_key, phone "
        f"FROM {table} WHERE workspace_id = :ws AND {where}"
    )
    if listed:
        query = query.bindparams(bindparam(listed, expanding=True))
    rows = session.execute(query, {"ws": workspace_id, **params}).all()
    return [
        Record(
            int(r[0]),
            int(r[1]),
            r[2],
            rules.email_key(r[3]),
            r[4],
            (r[5], r[6], r[7], r[8]),
            (r[8] if r[8] and not fresh and rules.match_phone else rules.phone_key(r[9])),
        )
        for r in rows
    ]


def clear_phone_keys(session: Session, workspace_id: str) -> None:
    """Forget the stored phone keys, so the next build reads every number again (after
    the phone rule or the workspace's country changed)."""
    session.execute(
        text("UPDATE customer SET phone_key = NULL WHERE workspace_id = :ws"), {"ws": workspace_id}
    )


def _decisions(session: Session, workspace_id: str) -> tuple[set[int], list[tuple[int, int]]]:
    rows = session.execute(
        text(
            "SELECT customer_id, kind, other_id FROM person_decision "
            "WHERE workspace_id = :ws ORDER BY decided_at, id"
        ),
        {"ws": workspace_id},
    ).all()
    unlinked: set[int] = set()
    links: list[tuple[int, int]] = []
    for customer_id, kind, other_id in rows:
        if kind == "unlink":
            unlinked.add(int(customer_id))
            links = [(a, b) for a, b in links if int(customer_id) not in (a, b)]
        elif kind == "link" and other_id is not None:
            unlinked.discard(int(customer_id))
            unlinked.discard(int(other_id))
            links.append((int(customer_id), int(other_id)))
    return unlinked, links


def _scope(
    session: Session, workspace_id: str, customer_ids: Collection[int] | None, rules: MatchRules
) -> list[Record]:
    """The records whose person may change when these records changed: them, everyone who
    shares a person with them, everyone with one of their emails or phone numbers, and so
    on until nothing new is found (with two rules a record's email partner may be joined
    to a third record by phone; manual partners share its person)."""
    if customer_ids is None:
        return _records(session, workspace_id, "1 = 1", {}, rules=rules)
    seen: dict[int, Record] = {}

    def fetch(where: str, values: Iterable[Any], name: str, fresh: bool = False) -> list[Record]:
        found = []
        items = sorted(set(values))
        for i in range(0, len(items), _CHUNK):
            part = items[i : i + _CHUNK]
            for r in _records(session, workspace_id, where, {name: part}, name, rules, fresh):
                if r.id not in seen:
                    seen[r.id] = r
                    found.append(r)
        return found

    new = fetch("id IN :ids", customer_ids, "ids", fresh=True)
    # The ids themselves too: a deleted record may have stood for a person whose other
    # records still point at it.
    persons_done: set[int] = set()
    keys_done: dict[str, set[str]] = {"email_key": set(), "phone_key": set()}
    persons = set(customer_ids)
    while True:
        persons |= {r.person_id for r in new if r.person_id is not None}
        persons -= persons_done
        persons_done |= persons
        new = fetch("person_id IN :pids", persons, "pids")
        persons = set()
        for column, done in keys_done.items():
            keys = {k for r in seen.values() if (k := getattr(r, column))} - done
            done |= keys
            new += fetch(f"{column} IN :keys", keys, "keys")
        if not new:
            return list(seen.values())


def _shared(records: list[Record]) -> str | None:
    """Why records from several sources sharing one email are not one person, or None."""
    if len(records) > MAX_RECORDS:
        return f"{len(records)} records share it"
    by_source: dict[int, list[Record]] = {}
    for r in records:
        by_source.setdefault(r.source_id, []).append(r)
    crowded = [group for group in by_source.values() if len(group) > 1]
    if not crowded:
        return None
    names = {_name_key(r.name) for group in crowded for r in group if _name_key(r.name)}
    if len(names) > 1:
        return "one source has several records with different names behind it"
    return "one source has several records behind it, so which one is the same person is unclear"


def _join_on(
    rule: str,
    records: list[Record],
    key_of: Callable[[Record], str | None],
    union: _Union,
    unlinked: set[int],
    joined: dict[int, tuple[str, str]],
    conflicted: dict[int, tuple[str, str]],
) -> None:
    """Join the records of different sources that share a key (an email, a number),
    leaving a shared key apart; the first rule that joins or holds a record names it."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        if key := key_of(r):
            groups.setdefault(key, []).append(r)
    for key, group in groups.items():
        if len(group) < 2:
            continue
        sources = {r.source_id for r in group}
        if len(sources) < 2:
            continue  # one source's own records: it says they are different customers
        # Only a source with several records behind the key, or too many records, can
        # make it shared: most groups are one record per source, decided without _shared.
        if (len(sources) < len(group) or len(group) > MAX_RECORDS) and _shared(group):
            for r in group:
                conflicted.setdefault(r.id, ("conflict", key))
            continue
        members = [r for r in group if r.id not in unlinked]
        for r in members[1:]:
            union.union(members[0].id, r.id)
        if len(members) > 1:
            for r in members:
                joined.setdefault(r.id, (rule, key))


def relink(
    session: Session, workspace_id: str, customer_ids: Collection[int] | None = None
) -> set[int]:
    """Recompute which person the records around these ones (all, when None) belong to.

    Returns the people whose journey state may have changed, so the caller refreshes
    them: those these records belonged to before and belong to now, and any person a
    record left or joined (a record that moved leaves its old person and joins a new
    one); every person for a full build.
    """
    rules = MatchRules.of(session, workspace_id)
    records = _scope(session, workspace_id, customer_ids, rules)
    if not records:
        return set()
    by_id = {r.id: r for r in records}
    unlinked, links = _decisions(session, workspace_id)
    union = _Union()
    joined: dict[int, tuple[str, str]] = {}
    conflicted: dict[int, tuple[str, str]] = {}
    # Email first, so a record both rules join says "same email".
    _join_on("email", records, lambda r: r.email_key, union, unlinked, joined, conflicted)
    _join_on("phone", records, lambda r: r.phone_key, union, unlinked, joined, conflicted)
    # A record in neither stays alone: (None, None).
    rule: dict[int, tuple[str | None, str | None]] = {**conflicted, **joined}
    for a, b in links:
        if a in by_id and b in by_id:
            union.union(a, b)
            rule[a] = rule[b] = ("manual", None)
    for u in unlinked:
        if u in by_id:
            rule[u] = ("manual", "unlinked")
    persons = [union.find(r.id) for r in records]
    size = Counter(persons)
    changed: set[int] = set()
    updates: list[tuple[Any, ...]] = []  # id, then _LINK_COLUMNS
    alone = (None, None)
    for r, person in zip(records, persons, strict=True):
        why, value = rule.get(r.id, alone)
        if why in ("email", "phone", "manual") and value != "unlinked" and size[person] == 1:
            why, value = None, None  # alone after all: its partners were unlinked
        if r.person_id != person:
            updates.append((r.id, person, r.email_key, why, value, r.phone_key))
            changed.add(person)
            if r.person_id is not None:
                changed.add(r.person_id)
        elif r.stored != (r.email_key, why, value, r.phone_key):
            updates.append((r.id, person, r.email_key, why, value, r.phone_key))
    _write(session, updates)
    if customer_ids is None:
        return changed | set(persons)
    # Only the people these records were and are part of, and those a record left or
    # joined: the others in scope (sharing an address, say) kept the same records.
    named = set(customer_ids)
    return (
        changed
        | (named - by_id.keys())  # deleted: the state row of a record gone with its person
        | {
            p
            for r, person in zip(records, persons, strict=True)
            if r.id in named
            for p in (r.person_id, person)
            if p
        }
    )


def _write(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Store each record's new person and why (rows of id, then _LINK_COLUMNS): a
    statement per record for a sync's few, a temporary table and one joined UPDATE when a
    build changes many."""
    if not rows:
        return
    columns = list(_LINK_COLUMNS)
    if len(rows) < _BULK:
        assignments = ", ".join(f"{c} = :{c}" for c in columns)
        session.execute(
            text(f"UPDATE customer SET {assignments} WHERE id = :id"),
            [dict(zip(["id", *columns], row, strict=True)) for row in rows],
        )
        return
    dialect = session.get_bind().dialect.name
    big = "BIGINT" if dialect == "postgresql" else "INTEGER"
    session.execute(text("DROP TABLE IF EXISTS people_relink"))
    session.execute(
        text(
            f"CREATE TEMPORARY TABLE people_relink (id {big} PRIMARY KEY, person_id {big}, "
            + ", ".join(f"{c} VARCHAR(320)" for c in columns[1:])
            + ")"
        )
    )
    raw = session.connection().connection.driver_connection
    assert raw is not None
    names = ", ".join(["id", *columns])
    if dialect == "postgresql":
        with raw.cursor() as cur, cur.copy(f"COPY people_relink ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        session.execute(text("ANALYZE people_relink"))
    else:
        marks = ", ".join("?" * (len(columns) + 1))
        raw.executemany(f"INSERT INTO people_relink ({names}) VALUES ({marks})", rows)
    session.execute(
        text(
            "UPDATE customer SET "
            + ", ".join(f"{c} = people_relink.{c}" for c in columns)
            + " FROM people_relink WHERE customer.id = people_relink.id"
        )
    )
    session.execute(text("DROP TABLE people_relink"))


def build_people(session: Session, workspace_id: str) -> set[int]:
    """Join every record of the workspace into people (the upgrade and a full rebuild)."""
    persons = relink(session, workspace_id, None)
    session.execute(
        text("UPDATE workspace SET people_built = :t WHERE id = :ws"),
        {"t": True, "ws": workspace_id},
    )
    return persons


def _record_id(session: Session, workspace_id: str, ref: str) -> int:
    """A record by its id (`#123` or `123`), its email, or `source:external_id`."""
    ref = ref.strip()
    if ref.lstrip("#").isdigit():
        row = session.execute(
            text("SELECT id FROM customer WHERE workspace_id = :ws AND id = :id"),
            {"ws": workspace_id, "id": int(ref.lstrip("#"))},
        ).first()
        if row:
            return int(row[0])
    key = MatchRules.of(session, workspace_id).email_key(ref)
    if key:
        rows = session.execute(
            text("SELECT id FROM customer WHERE workspace_id = :ws AND email_key = :k ORDER BY id"),
            {"ws": workspace_id, "k": key},
        ).all()
        if len(rows) == 1:
            return int(rows[0][0])
        if len(rows) > 1:
            ids = ", ".join(f"#{r[0]}" for r in rows)
            raise JourneyError(
                f"{len(rows)} records have the email {ref}: name one by its id ({ids}); "
                "`journey people show EMAIL` lists them."
            )
    source, sep, external = ref.partition(":")
    if sep:
        row = session.execute(
            text(
                "SELECT c.id FROM customer c JOIN source s ON s.id = c.source_id "
                "WHERE c.workspace_id = :ws AND s.name = :s AND c.external_id = :e"
            ),
            {"ws": workspace_id, "s": source, "e": external},
        ).first()
        if row:
            return int(row[0])
    raise NotFound(
        f"No record {ref!r} in this workspace: use a record id (#123), an email, or "
        "SOURCE:EXTERNAL_ID (journey people show lists a person's records)."
    )


def _decide(
    session: Session,
    workspace_id: str,
    customer_id: int,
    kind: str,
    other: int | None,
    by: str | None,
) -> None:
    session.execute(
        text(
            "INSERT INTO person_decision (workspace_id, customer_id, kind, other_id, "
            "decided_by, decided_at) VALUES (:ws, :c, :k, :o, :b, :t)"
        ),
        {
            "ws": workspace_id,
            "c": customer_id,
            "k": kind,
            "o": other,
            "b": by,
            "t": int(time.time()),
        },
    )


def decide_link(
    session: Session, workspace_id: str, a: str, b: str, by: str | None = None
) -> set[int]:
    """Records `a` and `b` are one person, whatever the rules say; returns persons to refresh."""
    ida, idb = _record_id(session, workspace_id, a), _record_id(session, workspace_id, b)
    if ida == idb:
        raise JourneyError("That is the same record twice: name two different records.")
    _decide(session, workspace_id, ida, "link", idb, by)
    return relink(session, workspace_id, [ida, idb])


def decide_unlink(session: Session, workspace_id: str, ref: str, by: str | None = None) -> set[int]:
    """This record is a person of its own from now on; no record or event is lost."""
    cid = _record_id(session, workspace_id, ref)
    _decide(session, workspace_id, cid, "unlink", None, by)
    return relink(session, workspace_id, [cid])


@dataclass(frozen=True)
class PersonRecord:
    id: int
    source: str
    external_id: str
    name: str | None
    email: str | None
    rule: str | None
    value: str | None


@dataclass(frozen=True)
class Person:
    id: int
    records: list[PersonRecord]


def show(session: Session, workspace_id: str, ref: str) -> Person:
    """The person a record (an email, or a phone number `+33...` when the workspace joins
    on them) belongs to, with every record and why it is there."""
    rules = MatchRules.of(session, workspace_id)
    by_phone = ref.strip().startswith("+") and rules.match_phone
    cid = _record_id(session, workspace_id, ref) if not (email_key(ref) or by_phone) else None
    if cid is None:
        column, key = "email_key", rules.email_key(ref)
        if by_phone:
            column, key = "phone_key", rules.phone_key(ref)
        row = session.execute(
            text(f"SELECT MIN(person_id) FROM customer WHERE workspace_id = :ws AND {column} = :k"),
            {"ws": workspace_id, "k": key},
        ).first()
        if not row or row[0] is None:
            what = "phone number" if by_phone else "email"
            raise NotFound(f"No record with the {what} {ref} in this workspace.")
        person = int(row[0])
    else:
        person = int(
            session.execute(
                text("SELECT person_id FROM customer WHERE id = :id"), {"id": cid}
            ).scalar_one()
        )
    rows = session.execute(
        text(
            "SELECT c.id, s.name, c.external_id, c.name, c.email, c.link_rule, c.link_value "
            "FROM customer c JOIN source s ON s.id = c.source_id "
            "WHERE c.workspace_id = :ws AND c.person_id = :p ORDER BY s.name, c.id"
        ),
        {"ws": workspace_id, "p": person},
    ).all()
    return Person(person, [PersonRecord(int(r[0]), *r[1:]) for r in rows])


def find_person(session: Session, workspace_id: str, who: str) -> Person:
    """The person a customer's email, record id (#123), SOURCE:ID or name names (case does
    not matter); a name several people share is an error listing them."""
    text_ = who.strip()
    if not text_:
        raise JourneyError("Name the customer by email, name or record id (#123).")
    try:
        return show(session, workspace_id, text_)
    except NotFound:
        pass
    rows = session.execute(
        text(
            "SELECT DISTINCT person_id FROM customer WHERE workspace_id = :ws "
            "AND LOWER(name) = :n ORDER BY person_id LIMIT 6"
        ),
        {"ws": workspace_id, "n": text_.lower()},
    ).all()
    if not rows:
        raise NotFound(
            f"No customer {text_!r} here: use their email, their name as the lists show it, "
            "or a record id (#123)."
        )
    if len(rows) > 1:
        ids = ", ".join(f"#{r[0]}" for r in rows[:5])
        raise JourneyError(
            f"Several people are called {text_!r} ({ids}): use the email or the record id."
        )
    return show(session, workspace_id, f"#{rows[0][0]}")


@dataclass(frozen=True)
class Conflict:
    email: str  # the shared value: an email, or a phone number in E.164 (`kind` "phone")
    records: int
    reason: str
    kind: str = "email"


def conflicts(session: Session, workspace_id: str) -> list[Conflict]:
    """Shared addresses left apart by the rules, with why, until someone decides."""
    rows = session.execute(
        text(
            "SELECT link_value, COUNT(*) FROM customer WHERE workspace_id = :ws "
            "AND link_rule = 'conflict' GROUP BY link_value ORDER BY COUNT(*) DESC, link_value"
        ),
        {"ws": workspace_id},
    ).all()
    out = []
    for key, count in rows:
        kind = "email" if "@" in str(key) else "phone"
        group = _records(session, workspace_id, f"{kind}_key = :k", {"k": key})
        reason = _shared(group) or "decided by hand since"
        out.append(Conflict(str(key), int(count), reason, kind))
    return out


def sources_of(
    session: Session, workspace_id: str, person_ids: Collection[int]
) -> dict[int, tuple[str, ...]]:
    """The names of the sources each person's records come from, sorted, so a list of
    customers can say "crm + shop"; empty when records come from a single source (every
    person would say the same)."""
    several = session.execute(
        text(
            "SELECT COUNT(*) FROM source s WHERE s.workspace_id = :ws AND EXISTS ("
            "SELECT 1 FROM customer c WHERE c.workspace_id = :ws AND c.source_id = s.id)"
        ),
        {"ws": workspace_id},
    ).scalar_one()
    if int(several) < 2 or not person_ids:
        return {}
    query = text(
        "SELECT DISTINCT c.person_id, s.name FROM customer c JOIN source s ON s.id = c.source_id "
        "WHERE c.workspace_id = :ws AND c.person_id IN :ids"
    ).bindparams(bindparam("ids", expanding=True))
    found: dict[int, list[str]] = {}
    for chunk in _chunks(person_ids):
        for person, name in session.execute(query, {"ws": workspace_id, "ids": chunk}):
            found.setdefault(int(person), []).append(str(name))
    return {p: tuple(sorted(names)) for p, names in found.items()}


def count(session: Session, workspace_id: str) -> PeopleCount:
    """How many records from how many sources are how many people.

    One pass without DISTINCT: a person is the record that stands for itself (person_id =
    id, journey/people.py), and a source counts when it has a record (an index probe).
    COUNT(DISTINCT ...) sorted every record for each funnel: 0.5 s of CPU at 1M records,
    twice what the rest of a 30-day funnel costs (bench/people.py)."""
    row = session.execute(
        text(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN person_id = id THEN 1 ELSE 0 END), 0), "
            "(SELECT COUNT(*) FROM source s WHERE s.workspace_id = :ws AND EXISTS ("
            "  SELECT 1 FROM customer x WHERE x.workspace_id = :ws AND x.source_id = s.id)) "
            "FROM customer WHERE workspace_id = :ws"
        ),
        {"ws": workspace_id},
    ).one()
    return PeopleCount(int(row[0]), int(row[2]), int(row[1]))
