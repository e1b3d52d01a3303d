"""One import per checked file across replicas: the claim in the database
(journey/imports/claims.py), on SQLite and PostgreSQL. What a person sees when the
claim is held elsewhere is tested through the fake Slack in tests/test_bot_import.py."""

from __future__ import annotations

import threading

from sqlalchemy import text

from journey.imports.claims import CLAIM, IMPORTED, IMPORTING, REMEMBER, claim, extend, finish

WS, FILE, SHA = "T0SHOP", "F0ORDERS", "ab" * 16
NOW = 1_800_000_000


def test_of_replicas_racing_for_one_file_exactly_one_wins(engine):
    barrier = threading.Barrier(6)
    won: list[str | None] = []
    lock = threading.Lock()

    def replica(n: int) -> None:
        barrier.wait()
        got = claim(engine, WS, FILE, SHA, f"host-{n}:1", now=NOW)
        with lock:
            won.append(got)

    threads = [threading.Thread(target=replica, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert won.count(None) == 1 and sorted(w for w in won if w) == [IMPORTING] * 5


def test_a_claim_lapses_is_extended_by_its_holder_and_ends_as_imported_or_gone(engine):
    assert claim(engine, WS, FILE, SHA, "a:1", now=NOW) is None
    assert claim(engine, WS, FILE, SHA, "b:1", now=NOW + 1) == IMPORTING
    # Another workspace's file of the same id and bytes is another claim.
    assert claim(engine, "T0OTHER", FILE, SHA, "b:1", now=NOW + 1) is None
    # Only the holder extends it; extended, it outlives its first expiry.
    assert not extend(engine, WS, FILE, SHA, "b:1", now=NOW + 60)
    assert extend(engine, WS, FILE, SHA, "a:1", now=NOW + 60)
    assert claim(engine, WS, FILE, SHA, "b:1", now=NOW + CLAIM + 1) == IMPORTING
    # A holder that died: the claim lapses and the next click takes it over.
    assert claim(engine, WS, FILE, SHA, "b:1", now=NOW + 60 + CLAIM) is None
    assert not extend(engine, WS, FILE, SHA, "a:1", now=NOW + 61 + CLAIM)
    # Ended by someone who no longer holds it: nothing changes.
    finish(engine, WS, FILE, SHA, "a:1", imported=False, now=NOW + 62 + CLAIM)
    assert claim(engine, WS, FILE, SHA, "c:1", now=NOW + 63 + CLAIM) == IMPORTING
    # Imported: remembered for a day, then forgotten.
    finish(engine, WS, FILE, SHA, "b:1", imported=True, now=NOW + 70 + CLAIM)
    assert claim(engine, WS, FILE, SHA, "c:1", now=NOW + 71 + CLAIM) == IMPORTED
    assert claim(engine, WS, FILE, SHA, "c:1", now=NOW + 71 + CLAIM + REMEMBER) is None
    # Failed: the row goes at once, so the file can be tried again.
    finish(engine, WS, FILE, SHA, "c:1", imported=False, now=NOW + 72 + CLAIM + REMEMBER)
    with engine.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM import_claim WHERE workspace_id = :ws"), {"ws": WS}
        ).scalar()
    assert left == 0
