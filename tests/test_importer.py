"""CSV import: every file kind, bad rows with exact lines, all-or-nothing, re-imports.

Store tests take the `session` fixture and so run on SQLite and (with
JOURNEY_TEST_DATABASE_URL) PostgreSQL; the value parsers are tested without a
database.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from journey.errors import JourneyError
from journey.imports import (
    DEFAULT_SOURCE_NAME,
    MAX_ERRORS,
    ImportResult,
    import_csv,
    parse_cents,
    parse_time,
)
from journey.imports.summary import dry_run_summary
from journey.models import Customer, Workspace
from journey.models.types import to_epoch
from journey.workspaces import ensure_workspace

SHOP = Path(__file__).parent / "data" / "shop"
WS = "shop"


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def count(session: Session, table: str, ws: str = WS) -> int:
    return int(
        session.execute(
            text(f"SELECT COUNT(*) FROM {table} WHERE workspace_id = :ws"), {"ws": ws}
        ).scalar_one()
    )


def customers(session: Session, ws: str = WS) -> dict[str, dict[str, Any]]:
    rows = session.execute(
        text("SELECT * FROM customer WHERE workspace_id = :ws"), {"ws": ws}
    ).mappings()
    return {r["external_id"]: dict(r) for r in rows}


def events(session: Session, ws: str = WS) -> dict[str, dict[str, Any]]:
    rows = session.execute(
        text(
            "SELECT e.*, c.external_id AS customer FROM journey_event e "
            "JOIN customer c ON c.id = e.customer_id WHERE e.workspace_id = :ws"
        ),
        {"ws": ws},
    ).mappings()
    return {r["external_id"]: dict(r) for r in rows}


def journeys(session: Session, ws: str = WS) -> dict[str, dict[str, Any]]:
    rows = session.execute(
        text(
            "SELECT c.external_id, cj.* FROM customer_journey cj "
            "JOIN customer c ON c.id = cj.customer_id WHERE cj.workspace_id = :ws"
        ),
        {"ws": ws},
    ).mappings()
    return {r["external_id"]: dict(r) for r in rows}


def import_shop(session: Session) -> list[ImportResult]:
    return [
        import_csv(session, WS, SHOP / f) for f in ("customers.csv", "orders.csv", "events.csv")
    ]


def reasons(result: ImportResult) -> dict[int, str]:
    return {e.line: e.reason for e in result.errors}


# --- each file kind ------------------------------------------------------------


def test_customers_file(session):
    result = import_csv(session, WS, SHOP / "customers.csv")
    assert (result.kind, result.rows, result.inserted, result.rejected) == ("customers", 3, 3, 0)
    assert result.written and result.ok and result.source_name == DEFAULT_SOURCE_NAME
    stored = customers(session)
    assert stored["c1"]["name"] == "Ann Lee"
    assert stored["c1"]["email"] == "ann@example.com"
    assert stored["c1"]["channel"] == "ads"
    assert stored["c1"]["first_seen"] == to_epoch(datetime(2026, 1, 5, tzinfo=UTC))
    # An offset is converted to UTC; a naive time is UTC.
    assert stored["c2"]["first_seen"] == to_epoch(datetime(2026, 1, 6, 9, tzinfo=UTC))
    assert stored["c3"]["first_seen"] == to_epoch(datetime(2026, 1, 7, 8, 30, tzinfo=UTC))
    # The workspace is created on the first write and the journeys are refreshed.
    assert session.get(Workspace, WS) is not None
    assert journeys(session)["c1"]["reached_0"] == to_epoch(datetime(2026, 1, 5, tzinfo=UTC))


def test_orders_become_order_refund_and_cancellation_events(session):
    import_csv(session, WS, SHOP / "customers.csv")
    result = import_csv(session, WS, SHOP / "orders.csv")
    assert (result.kind, result.rows, result.inserted, result.rejected) == ("orders", 4, 7, 0)
    stored = events(session)
    assert set(stored) == {
        "order:1001",
        "order:1002",
        "order:1002:refund",
        "order:1003",
        "order:1003:refund",
        "order:1004",
        "order:1004:cancellation",
    }
    assert stored["order:1001"]["kind"] == "order"
    assert stored["order:1001"]["amount_cents"] == 12500
    assert stored["order:1001"]["channel"] == "ads"
    # Partial refund: its own amount and time.
    assert stored["order:1002:refund"]["kind"] == "refund"
    assert stored["order:1002:refund"]["amount_cents"] == 1550
    assert stored["order:1002:refund"]["occurred_at"] == to_epoch(
        datetime(2026, 2, 12, 9, tzinfo=UTC)
    )
    # Full refund without refund_amount: the whole order, at refunded_at.
    assert stored["order:1003:refund"]["amount_cents"] == 3000
    assert stored["order:1003:refund"]["occurred_at"] == to_epoch(datetime(2026, 1, 25, tzinfo=UTC))
    # Cancellation without a date: the whole order, at the order time.
    assert stored["order:1004:cancellation"]["kind"] == "cancellation"
    assert stored["order:1004:cancellation"]["amount_cents"] == 9999
    assert stored["order:1004:cancellation"]["occurred_at"] == stored["order:1004"]["occurred_at"]
    # Refunds and cancellations reduce revenue.
    state = journeys(session)
    assert state["c1"]["revenue_cents"] == 12500 + 4000 - 1550
    assert state["c2"]["revenue_cents"] == 0
    assert state["c3"]["revenue_cents"] == 0
    assert state["c1"]["last_refund_at"] == to_epoch(datetime(2026, 2, 12, 9, tzinfo=UTC))


def test_events_file(session):
    result = import_csv(session, WS, SHOP / "events.csv")
    assert (result.kind, result.rows, result.inserted, result.rejected) == ("events", 4, 4, 0)
    stored = events(session)
    assert stored["e2"]["kind"] == "add_to_cart"
    assert stored["e2"]["customer"] == "c1"
    assert stored["e4"]["kind"] == "review"
    assert stored["e4"]["channel"] is None
    # Customers only named by events exist as stubs until customers.csv arrives.
    assert set(customers(session)) == {"c1", "c2", "c3"}
    assert customers(session)["c1"]["name"] is None


def test_events_amount_stage_column_and_kind_spelling(session, tmp_path):
    path = write(
        tmp_path,
        "stages.csv",
        "Event ID,User ID,Stage,Timestamp,Value\n"
        "a,u1,Page View,2026-03-01T10:00:00Z,\n"
        "b,u1,PURCHASE,2026-03-02T10:00:00Z,19.90\n",
    )
    result = import_csv(session, WS, path)
    assert (result.kind, result.inserted, result.rejected) == ("events", 2, 0)
    stored = events(session)
    assert stored["a"]["kind"] == "page_view"
    assert stored["b"]["kind"] == "purchase"
    assert stored["b"]["amount_cents"] == 1990
    assert journeys(session)["u1"]["revenue_cents"] == 1990


def test_events_without_event_id_get_stable_ids(session, tmp_path):
    content = (
        "customer_id,kind,occurred_at\n"
        "u1,visit,2026-03-01T10:00:00Z\n"
        "u1,signup,2026-03-01T10:05:00Z\n"
        "u1,visit,2026-03-01T10:00:00Z\n"  # an exact repeat
    )
    path = write(tmp_path, "events.csv", content)
    first = import_csv(session, WS, path)
    assert (first.rows, first.inserted, first.duplicates, first.rejected) == (3, 2, 1, 0)
    again = import_csv(session, WS, path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert count(session, "journey_event") == 2


def test_unknown_event_kind_is_rejected_with_the_known_kinds(session, tmp_path):
    path = write(
        tmp_path,
        "events.csv",
        "event_id,customer_id,kind,occurred_at\ne1,u1,visit,2026-03-01\ne2,u1,teleport,2026-03-02\n",
    )
    result = import_csv(session, WS, path)
    assert not result.written and result.rejected == 1
    reason = reasons(result)[3]
    assert "'teleport' is not a known event kind" in reason
    assert "add_to_cart" in reason and "refund" in reason and "visit" in reason
    assert count(session, "journey_event") == 0


def test_custom_stage_names_are_kinds(session, tmp_path):
    workspace = ensure_workspace(session, WS)
    workspace.stages = ["awareness", "trial", "purchase"]
    workspace.stage_map = {"demo_call": "trial"}
    session.add(workspace)
    session.flush()
    path = write(
        tmp_path,
        "events.csv",
        "event_id,customer_id,kind,occurred_at\n"
        "e1,u1,trial,2026-03-01\n"
        "e2,u1,demo_call,2026-03-02\n"
        "e3,u1,order,2026-03-03\n",
    )
    result = import_csv(session, WS, path)
    assert (result.inserted, result.rejected) == (3, 0)
    assert journeys(session)["u1"]["reached_1"] == to_epoch(datetime(2026, 3, 1, tzinfo=UTC))


# --- shared customers across files -----------------------------------------------


def test_orders_and_events_refer_to_the_customers_of_customers_csv(session):
    import_shop(session)
    stored = customers(session)
    assert set(stored) == {"c1", "c2", "c3"}  # no stubs: one source, one id space
    assert stored["c2"]["name"] == "Bob Ray"
    by_customer: dict[str, set[str]] = {}
    for external_id, event in events(session).items():
        by_customer.setdefault(event["customer"], set()).add(external_id)
    assert by_customer["c1"] == {"order:1001", "order:1002", "order:1002:refund", "e1", "e2"}
    assert count(session, "source") == 1


def test_orders_naming_customers_by_email_find_them(session, tmp_path):
    import_csv(session, WS, SHOP / "customers.csv")
    path = write(
        tmp_path,
        "orders.csv",
        "Order,Email,Order Date,Total\n"
        "A1,ann@example.com,2026-01-12,10.00\n"
        "A2,BOB@example.com,2026-01-13,11.00\n"  # stored as Bob@Example.com
        "A3,new@example.com,2026-01-14,12.00\n",
    )
    result = import_csv(session, WS, path)
    assert result.rejected == 0
    stored = events(session)
    assert stored["order:A1"]["customer"] == "c1"
    assert stored["order:A2"]["customer"] == "c2"
    assert stored["order:A3"]["customer"] == "new@example.com"  # a new stub, keyed by email
    assert len(customers(session)) == 4


def test_separate_sources_keep_ids_apart(session):
    import_csv(session, WS, SHOP / "customers.csv")
    import_csv(session, WS, SHOP / "customers.csv", source_name="other-shop")
    assert count(session, "customer") == 6
    assert count(session, "source") == 2


# --- re-import -----------------------------------------------------------------


def test_reimport_changes_nothing(session):
    import_shop(session)
    before = {t: count(session, t) for t in ("customer", "journey_event", "customer_journey")}
    state = journeys(session)
    again = import_shop(session)
    for result in again:
        assert result.inserted == 0 and result.updated == 0 and result.rejected == 0
        assert result.unchanged > 0
    assert [r.unchanged for r in again] == [3, 7, 4]
    assert {t: count(session, t) for t in before} == before
    assert journeys(session) == state


def test_reimport_with_a_new_refund_updates_the_order(session, tmp_path):
    import_csv(session, WS, SHOP / "customers.csv")
    header = "order_id,customer_id,ordered_at,amount,status\n"
    path = write(tmp_path, "orders.csv", header + "9,c1,2026-01-10,50.00,paid\n")
    import_csv(session, WS, path)
    assert journeys(session)["c1"]["revenue_cents"] == 5000
    write(tmp_path, "orders.csv", header + "9,c1,2026-01-10,50.00,refunded\n")
    result = import_csv(session, WS, path)
    assert (result.inserted, result.unchanged) == (1, 1)
    assert journeys(session)["c1"]["revenue_cents"] == 0


# --- bad rows ------------------------------------------------------------------

BAD_ORDERS = (
    "order_id,customer_id,ordered_at,amount,status,refund_amount\n"  # 1
    "1,c1,2026-01-10,10.00,paid,\n"  # 2 good
    "2,c1,2026-01-32,10.00,paid,\n"  # 3 not a date
    "\n"  # 4 blank line: not a row
    '3,c1,2026-01-11,"1,000.00",paid,\n'  # 5 good (thousands separator)
    '4,c1,2026-01-12,"12,50",paid,\n'  # 6 decimal comma in a decimal-point file
    '5,c1,2026-01-13,10.00,"paid\n'  # 7 a quoted value running over two lines...
    'still the status",\n'  # 8
    "6,,2026-01-14,abc,pending,\n"  # 9 three problems
    "7,c2,2026-01-15,10.00,partially_refunded,\n"  # 10 partial refund without amount
    "8,c2,2026-01-16,10.00,refunded,12.00\n"  # 11 refund larger than the order
    "9,c2,2026-01-17,-5.00,paid,\n"  # 12 negative
    "10,c2,2026-01-18,10.00,paid,3.00\n"  # 13 paid with a refund
    "11,c2,2026-01-18,10.00,paid,,extra\n"  # 14 too many fields
    "12,c2,2026-01-19,10.00\n"  # 15 good: missing trailing fields are empty
)


def test_bad_rows_are_reported_with_line_and_reason(session, tmp_path):
    path = write(tmp_path, "orders.csv", BAD_ORDERS)
    result = import_csv(session, WS, path)
    assert result.rows == 12 and result.rejected == 9
    bad = reasons(result)
    assert sorted(bad) == [3, 6, 7, 9, 10, 11, 12, 13, 14]
    assert "ordered_at: '2026-01-32' is not a date" in bad[3]
    assert "'12,50' uses a decimal comma, but this file's amounts use a decimal point" in bad[6]
    assert "status 'paid\\nstill the status' is not one of" in bad[7]
    assert "customer_id is empty" in bad[9]
    assert "amount: 'abc' is not an amount" in bad[9]
    assert "status 'pending' is not one of paid, refunded" in bad[9]
    assert "partially refunded order needs refund_amount above 0" in bad[10]
    assert "is more than the order" in bad[11]
    assert "negative" in bad[12]
    assert "set the status to refunded" in bad[13]
    assert "has 7 fields but the header has 6" in bad[14]
    assert all(e.file == str(path) for e in result.errors)
    assert str(result.errors[0]) == f"{path}:3: {bad[3]}"


def test_all_or_nothing_writes_nothing(session, tmp_path):
    path = write(tmp_path, "orders.csv", BAD_ORDERS)
    result = import_csv(session, WS, path)
    assert not result.written and not result.ok
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 0)
    for table in ("customer", "journey_event", "customer_journey", "source"):
        assert count(session, table) == 0
    assert session.get(Workspace, WS) is None


def test_skip_bad_writes_the_good_rows(session, tmp_path):
    path = write(tmp_path, "orders.csv", BAD_ORDERS)
    result = import_csv(session, WS, path, all_or_nothing=False)
    assert result.written and result.rejected == 9
    assert sorted(e["external_id"] for e in events(session).values()) == [
        "order:1",
        "order:12",
        "order:3",
    ]
    assert result.inserted == 3
    assert events(session)["order:3"]["amount_cents"] == 100000
    assert journeys(session)["c1"]["revenue_cents"] == 1000 + 100000


def test_duplicate_ids(session, tmp_path):
    path = write(
        tmp_path,
        "customers.csv",
        "id,name\nc1,Ann\nc2,Bob\nc1,Ann\nc2,Robert\n",
    )
    result = import_csv(session, WS, path, all_or_nothing=False)
    assert (result.rows, result.inserted, result.duplicates, result.rejected) == (4, 2, 1, 1)
    assert reasons(result) == {
        5: "id 'c2' is also on line 3, with other values (each id may appear once)"
    }
    assert customers(session)["c2"]["name"] == "Bob"  # the first one is kept


def test_customers_keyed_by_email_when_there_is_no_id(session, tmp_path):
    path = write(
        tmp_path,
        "customers.csv",
        "First Name,Last Name,E-mail,Signup Date\n"
        "Ann,Lee,Ann@Example.com,2026-01-05\n"
        ",,,\n"  # a spreadsheet's empty row
        "Bob,,,2026-01-06\n",
    )
    result = import_csv(session, WS, path, all_or_nothing=False)
    assert (result.kind, result.rows, result.inserted) == ("customers", 2, 1)
    assert reasons(result) == {4: "the row has neither an id nor an email"}
    stored = customers(session)["ann@example.com"]
    assert (stored["name"], stored["email"]) == ("Ann Lee", "Ann@Example.com")


def test_error_list_is_capped_but_all_rows_are_counted(session, tmp_path):
    rows = "".join(f"e{i},u1,visit,yesterday\n" for i in range(MAX_ERRORS + 5))
    path = write(tmp_path, "events.csv", "event_id,customer_id,kind,occurred_at\n" + rows)
    result = import_csv(session, WS, path)
    assert result.rejected == MAX_ERRORS + 5
    assert len(result.errors) == MAX_ERRORS and result.errors_truncated


# --- headers and encodings -----------------------------------------------------


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        ("ID,Full Name,Email Address,Created At,UTM Source", "customers"),
        ("Customer,Name,Email,Date,Source", "customers"),
        ("Order Number,Customer ID,Created,Total Price,Financial Status", "orders"),
        ("order,email,date,total", "orders"),
        ("Event ID,Customer,Event Type,Time,Channel", "events"),
        ("event_id,User ID,Event,Timestamp", "events"),
    ],
)
def test_header_aliases(header, kind, session, tmp_path):
    values = {
        "customers": "c1,Ann,ann@example.com,2026-01-05,ads",
        "orders": "o1,c1,2026-01-05,10.00,paid",
        "events": "e1,c1,visit,2026-01-05,ads",
    }[kind]
    fields = len(header.split(","))
    path = write(tmp_path, "file.csv", header + "\n" + ",".join(values.split(",")[:fields]) + "\n")
    result = import_csv(session, WS, path)
    assert (result.kind, result.rejected, result.inserted) == (kind, 0, 1)
    assert result.ignored_columns == []


def test_semicolon_file_and_ignored_columns(session, tmp_path):
    path = write(
        tmp_path,
        "export.csv",
        "Customer ID;Name;Email;Phone;Notes;Created At\n"
        "c1;Ann;ann@example.com;555;likes tea;2026-01-05\n",
    )
    result = import_csv(session, WS, path)
    assert (result.kind, result.inserted, result.ignored_columns) == ("customers", 1, ["Notes"])
    # The phone is kept as written (people may join on it: tests/test_people_rules.py).
    assert session.execute(text("SELECT phone FROM customer")).scalar_one() == "555"


def test_forced_kind(session, tmp_path):
    path = write(tmp_path, "people.csv", "customer_id,kind,occurred_at\nc1,vip,2026-01-05\n")
    # Read as customers, occurred_at would be dropped: the import says so instead.
    with pytest.raises(JourneyError, match=r"'occurred_at' looks like dates.*--map"):
        import_csv(session, WS, path, kind="customers")
    left_out = {"occurred_at": ""}
    assert import_csv(session, WS, path, kind="customers", mapping=left_out).inserted == 1
    with pytest.raises(JourneyError, match="an orders file needs the columns order_id"):
        import_csv(session, WS, path, kind="orders")
    with pytest.raises(JourneyError, match="Unknown file kind"):
        import_csv(session, WS, path, kind="invoices")  # type: ignore[arg-type]


def test_bom_is_ignored(session, tmp_path):
    path = write(tmp_path, "bom.csv", "\ufeffid,name\nc1,Zoë\n".encode())
    result = import_csv(session, WS, path)
    assert (result.kind, result.inserted) == ("customers", 1)
    assert customers(session)["c1"]["name"] == "Zoë"


def test_a_latin1_row_is_a_bad_row(session, tmp_path):
    path = write(tmp_path, "latin1.csv", b"id,name\nc1,Ann\nc2,Zo\xeb\nc3,Cem\n")
    result = import_csv(session, WS, path, all_or_nothing=False)
    assert result.inserted == 2
    assert "not valid UTF-8 (byte 0xEB at position 6)" in reasons(result)[3]


def test_file_problems_are_explained(session, tmp_path):
    with pytest.raises(JourneyError, match="There is no file"):
        import_csv(session, WS, tmp_path / "missing.csv")
    with pytest.raises(JourneyError, match="is a directory"):
        import_csv(session, WS, tmp_path)
    with pytest.raises(JourneyError, match="is empty"):
        import_csv(session, WS, write(tmp_path, "empty.csv", ""))
    with pytest.raises(JourneyError, match="not UTF-8 text"):
        import_csv(session, WS, write(tmp_path, "l1.csv", b"n\xe4me,id\nx,1\n"))
    with pytest.raises(JourneyError, match="UTF-16"):
        import_csv(session, WS, write(tmp_path, "u16.csv", "id,name\nc1,A\n".encode("utf-16")))
    with pytest.raises(JourneyError) as info:
        import_csv(session, WS, write(tmp_path, "what.csv", "sku,price\nA,1\n"))
    message = str(info.value)
    assert "found: sku, price" in message
    assert "customers: id (or email)" in message
    assert "orders: order_id, customer_id (or email), ordered_at, amount" in message
    assert "events: customer_id (or email), kind (or stage), occurred_at" in message


def test_unreadable_rows_keep_the_line_count(session, tmp_path):
    big = "x" * 200_000  # over the csv module's field size limit
    path = write(
        tmp_path,
        "customers.csv",
        f"id,name\nc1,Ann\nc2,{big}\nc3,Zo\x00e\nc4,Dee\n",
    )
    result = import_csv(session, WS, path, all_or_nothing=False)
    assert (result.rows, result.inserted, result.rejected) == (4, 2, 2)
    bad = reasons(result)
    assert "cannot be read as CSV (field larger than field limit" in bad[3]
    assert "NUL character" in bad[4]
    assert set(customers(session)) == {"c1", "c4"}


def test_ambiguous_header_needs_a_kind(session, tmp_path):
    path = write(
        tmp_path,
        "mixed.csv",
        "order_id,customer_id,kind,created_at,amount\no1,c1,order,2026-01-05,10.00\n",
    )
    with pytest.raises(JourneyError, match="fits both an orders and an events file"):
        import_csv(session, WS, path)
    result = import_csv(session, WS, path, kind="orders")
    assert (result.kind, result.inserted, result.ignored_columns) == ("orders", 1, ["kind"])


def test_bare_carriage_returns_are_explained(session, tmp_path):
    with pytest.raises(JourneyError, match="bare carriage return"):
        import_csv(session, WS, write(tmp_path, "mac.csv", "id,name\rc1,Ann\r"))


def test_crlf_line_endings(session, tmp_path):
    path = write(tmp_path, "win.csv", 'id,name\r\nc1,Ann\r\n\r\nc2,"Bob\r\nRay"\r\nc3,\r\n')
    result = import_csv(session, WS, path)
    assert (result.rows, result.inserted, result.rejected) == (3, 3, 0)
    assert customers(session)["c2"]["name"] == "Bob\r\nRay"


def test_header_only_file_imports_nothing(session, tmp_path):
    result = import_csv(session, WS, write(tmp_path, "h.csv", "id,name\n"))
    assert (result.rows, result.inserted, result.written) == (0, 0, False)


def test_progress_covers_both_passes(session, tmp_path):
    rows = "".join(f"e{i},u{i % 50},visit,2026-01-05T10:00:00Z\n" for i in range(2500))
    path = write(tmp_path, "events.csv", "event_id,customer_id,kind,occurred_at\n" + rows)
    calls: list[tuple[int, int, int]] = []
    result = import_csv(session, WS, path, progress=lambda *a: calls.append(a))
    size = path.stat().st_size
    assert result.inserted == 2500
    assert all(total == 2 * size for _, _, total in calls)
    done = [d for _, d, _ in calls]
    assert done == sorted(done) and done[-1] == 2 * size
    assert [r for r, _, _ in calls] == [1000, 2000, 2500, 1000, 2000, 2500]

    calls.clear()
    import_csv(session, WS, path, all_or_nothing=False, progress=lambda *a: calls.append(a))
    assert calls[-1] == (2500, size, size)


# --- values --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cents"),
    [
        ("12.50", 1250),
        ("12.5", 1250),
        ("12", 1200),
        (".99", 99),
        ("0", 0),
        ("1,234.56", 123456),
        ("1,234", 123400),
        ("$12.50", 1250),
        ("€ 12.50", 1250),
        ("12.50 EUR", 1250),
        ("USD 1,000,000.00", 100000000),
        ("12.500", 1250),
        ("-3.10", -310),
    ],
)
def test_parse_cents(value, cents):
    assert parse_cents(value) == cents


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("12,50", "decimal separator"),
        ("12.505", "more than 2 decimals"),
        ("1,23,456", "not an amount"),
        ("1e3", "not an amount"),
        ("abc", "not an amount"),
        ("$", "not an amount"),
        ("1 234", "not an amount"),
        ("99999999999999", "too large"),
    ],
)
def test_parse_cents_rejects(value, message):
    with pytest.raises(ValueError, match=message):
        parse_cents(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-31", datetime(2026, 1, 31, tzinfo=UTC)),
        ("2026-01-31 14:05", datetime(2026, 1, 31, 14, 5, tzinfo=UTC)),
        ("2026-01-31T14:05:09Z", datetime(2026, 1, 31, 14, 5, 9, tzinfo=UTC)),
        ("2026-01-31T14:05:09+01:00", datetime(2026, 1, 31, 13, 5, 9, tzinfo=UTC)),
        ("2026-01-31 14:05:09 -0500", datetime(2026, 1, 31, 19, 5, 9, tzinfo=UTC)),
        ("2026-01-31T14:05:09.250", datetime(2026, 1, 31, 14, 5, 9, 250000, tzinfo=UTC)),
    ],
)
def test_parse_time(value, expected):
    assert parse_time(value) == expected


@pytest.mark.parametrize(
    "value",
    ["31/01/2026", "01/31/2026", "2026-1-5", "20260131", "1769868000", "2026-02-30", "soon"],
)
def test_parse_time_rejects(value):
    with pytest.raises(ValueError, match="is not a date"):
        parse_time(value)


def test_a_customers_file_without_a_column_keeps_the_stored_values(session, tmp_path):
    first = tmp_path / "customers.csv"
    first.write_text("id,name,email,channel\nc1,Ann,ann@example.com,ads\n")
    import_csv(session, "ws", first)
    second = tmp_path / "customers_update.csv"
    second.write_text("id,name\nc1,Ann Smith\n")
    result = import_csv(session, "ws", second)
    assert (result.updated, result.unchanged) == (1, 0)
    row = session.exec(select(Customer).where(Customer.external_id == "c1")).one()
    assert (row.name, row.email, row.channel) == ("Ann Smith", "ann@example.com", "ads")
    again = import_csv(session, "ws", second)
    assert (again.updated, again.unchanged) == (0, 1)


# --- the dry run of journey's own layout --------------------------------------------------------
# Expected counts are computed here from the file's own cells, independently of the importer.

README = Path(__file__).parent.parent / "README.md"
CLI = (sys.executable, "-c", "from journey.cli import main; main()")  # the `journey` command
# Orders of journey's generic layout with every status, a refund and a repeated customer.
STATUS_ORDERS = (
    "order_id,email,ordered_at,amount,status,refund_amount\n"
    "A1,ana@example.com,2026-03-02,40.00,paid,\n"
    "A2,Ben@Example.com,2026-03-05,25.50,refunded,\n"
    "A3,ana@example.com,2026-04-11,60.00,partially_refunded,12.25\n"
    "A4,cy@example.com,2026-04-20,19.99,cancelled,\n"
    "A5,ben@example.com,2026-05-01,8.00,paid,\n"
    "A6,dee@example.com,2026-02-27,100.00,paid,\n"
)
GENERIC_CUSTOMERS = (
    "id,email,name,first_seen,channel\n"
    "c1,ana@example.com,Ana,2026-01-15,ads\n"
    "c2,ben@example.com,Ben,2025-12-31,\n"
    "c3,,Cy,2026-02-02,referral\n"
    "c4,dee@example.com,Dee,,\n"
)


def readme_orders() -> str:
    """The README's "your own data in five minutes" orders file, as the README shows it."""
    text = README.read_text(encoding="utf-8")
    return text.split("```csv\n", 1)[1].split("```", 1)[0]


def expected_orders(content: str) -> dict[str, str]:
    """The dry run's facts for a generic orders file, from its cells."""
    rows = list(csv.DictReader(io.StringIO(content)))
    per_customer = Counter(r["email"].strip().lower() for r in rows)
    gross = sum(Decimal(r["amount"]) for r in rows)
    back = Decimal(0)
    for r in rows:
        status = r.get("status") or "paid"
        if status in ("refunded", "cancelled"):
            back += Decimal(r["amount"])
        elif status == "partially_refunded":
            back += Decimal(r["refund_amount"])
    days = sorted(r["ordered_at"] for r in rows)
    return {
        "rows": str(len(rows)),
        "customers": f"{len(per_customer)}; buyers: {len(per_customer)}, "
        f"repeat buyers: {sum(1 for n in per_customer.values() if n > 1)}",
        "dates": f"{days[0]} to {days[-1]} (UTC)",
        "revenue (after refunds)": f"{gross - back:,.2f}",
        "orders": str(len(rows)),
    }


def expected_customers(content: str) -> dict[str, str]:
    rows = list(csv.DictReader(io.StringIO(content)))
    days = sorted(r["first_seen"] for r in rows if r["first_seen"])
    return {
        "rows": str(len(rows)),
        "customers": f"{len({r['id'] for r in rows})}; buyers: 0, repeat buyers: 0",
        "dates": f"{days[0]} to {days[-1]} (UTC)",
    }


def orders_in(events: str) -> str:
    """The order count in the `events` fact (`6 order, 2 refund, 1 cancellation`)."""
    return next(part.split()[0] for part in events.split(", ") if part.endswith(" order"))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(readme_orders(), expected_orders, id="README orders"),
        pytest.param(STATUS_ORDERS, expected_orders, id="orders with refunds"),
        pytest.param(GENERIC_CUSTOMERS, expected_customers, id="customers"),
    ],
)
def test_a_dry_run_of_journeys_own_layout_counts_what_the_file_holds(
    session, tmp_path, content, expected
):
    """The summary the CLI prints and Slack shows (one DryRunSummary) counts a generic
    file as it counts a vendor's: it once said `customers: 0; buyers: 0` and no dates."""
    path = write(tmp_path, "file.csv", content)
    want = expected(content)
    found = dry_run_summary(import_csv(session, WS, path, dry_run=True))
    facts = dict(found.facts)
    assert found.importable and found.rows == int(want["rows"])
    for label in ("rows", "customers", "dates", "revenue (after refunds)"):
        assert facts.get(label) == want.get(label), label
    if "orders" in want:
        assert orders_in(facts["events"]) == want["orders"]
    assert session.execute(text("SELECT COUNT(*) FROM journey_event")).scalar_one() == 0

    # `journey import FILE --dry-run` as a person runs it: a process of its own.
    env = {k: v for k, v in os.environ.items() if k != "JOURNEY_WORKSPACE"}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    done = subprocess.run(
        [*CLI, "import", "file.csv", "--workspace", "myshop", "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    printed = dict(
        line.strip().split(": ", 1) for line in done.stdout.splitlines()[1:] if ": " in line
    )
    for label in ("rows", "customers", "dates", "revenue (after refunds)"):
        assert printed.get(label) == want.get(label), (label, done.stdout)
    if "orders" in want:
        assert orders_in(printed["events"]) == want["orders"]
    assert "Nothing was written (dry run)." in done.stdout


def test_a_generic_orders_dry_run_counts_orders_by_status(session, tmp_path):
    path = write(tmp_path, "orders.csv", STATUS_ORDERS)
    facts = dict(dry_run_summary(import_csv(session, WS, path, dry_run=True)).facts)
    statuses = Counter(r["status"] for r in csv.DictReader(io.StringIO(STATUS_ORDERS)))
    shown = dict(reversed(part.split(" ", 1)) for part in facts["by status"].split(", "))
    assert {s.replace(" ", "_"): int(n) for s, n in shown.items()} == statuses
