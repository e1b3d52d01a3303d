"""Vendor exports, as the vendors' export buttons write them, imported with no flags.

Each fixture under tests/data/imports/ carries the vendor's real header (cited
in the format's module, journey/imports/<vendor>.py) and the mess real exports
have: a byte-order mark, blank lines, quoted commas and line breaks, line items,
refunds, voided/pending/failed rows, test orders, guests without email.

The expected buyers, repeat buyers, orders, revenue and stages are computed
here from the file with the csv module, following the vendor's documented
meaning of its columns, never copied from journey's output.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session

from journey import state
from journey.errors import JourneyError
from journey.imports import import_csv
from journey.models.types import from_epoch, to_epoch
from journey.stages import DEFAULT_STAGES
from journey.workspaces import ensure_workspace

DATA = Path(__file__).parent / "data" / "imports"
WS = "shop"


def rows_of(name: str) -> list[dict[str, str]]:
    """The file's data rows, read independently of journey (BOM and blank lines dropped)."""
    with (DATA / name).open(encoding="utf-8-sig", newline="") as handle:
        return [r for r in csv.DictReader(handle) if any(v.strip() for v in r.values())]


def cents(value: str) -> int:
    text = value.replace("$", "").replace(",", "").strip()
    return int(Decimal(text or "0") * 100)


def store(session: Session, ws: str = WS) -> dict[str, int]:
    """What journey holds: buyers, repeat buyers, orders, net revenue."""
    row = session.execute(
        text(
            "SELECT COUNT(*) FILTER (WHERE purchase_days > 0), "
            "COUNT(*) FILTER (WHERE purchase_days > 1), COALESCE(SUM(revenue_cents), 0) "
            "FROM customer_journey WHERE workspace_id = :ws"
        ),
        {"ws": ws},
    ).one()
    orders = session.execute(
        text("SELECT COUNT(*) FROM journey_event WHERE workspace_id = :ws AND kind = 'order'"),
        {"ws": ws},
    ).scalar_one()
    return {"buyers": row[0], "repeat": row[1], "revenue": row[2], "orders": orders}


def expected(purchases: dict[str, list[tuple[str, int]]]) -> dict[str, int]:
    """Buyers and repeat buyers (a second purchase on another day) from (day, net) lists."""
    return {
        "buyers": len(purchases),
        "repeat": sum(1 for p in purchases.values() if len({day for day, _ in p}) > 1),
        "revenue": sum(net for p in purchases.values() for _, net in p),
        "orders": sum(len(p) for p in purchases.values()),
    }


@pytest.fixture
def ws(session: Session) -> Session:
    ensure_workspace(session, WS)
    return session


# --- Shopify orders --------------------------------------------------------------


def test_shopify_orders_export_groups_line_items_and_reads_statuses(ws, tmp_path):
    rows = rows_of("shopify_orders_export.csv")
    firsts: dict[str, dict[str, str]] = {}
    for row in rows:  # the order's own columns are on its first line
        firsts.setdefault(row["Name"], row)
    purchases: dict[str, list[tuple[str, int]]] = {}
    not_purchases = 0
    for name, row in firsts.items():
        status = row["Financial Status"]
        if row["Payment Method"] == "bogus" or status in ("pending", "voided", "authorized"):
            not_purchases += 1
            continue
        total = cents(row["Total"])
        refunded = cents(row["Refunded Amount"]) or (total if status == "refunded" else 0)
        who = row["Email"].lower() or f"guest {name}"
        day = str(datetime.strptime(row["Created at"], "%Y-%m-%d %H:%M:%S %z").date())
        purchases.setdefault(who, []).append((day, total - refunded))
    assert len(rows) > len(firsts) and not_purchases >= 3  # the fixture has line items

    result = import_csv(ws, WS, DATA / "shopify_orders_export.csv")
    assert result.ok and result.format_title == "Shopify orders export"
    assert result.kind == "orders" and result.rows == len(firsts)
    assert store(ws) == expected(purchases)
    assert result.tally.statuses["test"] == 1
    # A re-import of the same file changes nothing.
    again = import_csv(ws, WS, DATA / "shopify_orders_export.csv")
    assert again.inserted == 0 and again.updated == 0 and store(ws) == expected(purchases)


def test_shopify_guest_without_email_is_a_buyer_but_never_a_repeat(ws):
    import_csv(ws, WS, DATA / "shopify_orders_export.csv")
    guests = ws.execute(
        text(
            "SELECT cj.purchase_days FROM customer c JOIN customer_journey cj "
            "ON cj.customer_id = c.id WHERE c.workspace_id = :ws AND c.external_id LIKE 'guest:%'"
        ),
        {"ws": WS},
    ).all()
    blank = [r for r in rows_of("shopify_orders_export.csv") if not r["Email"] and r["Total"]]
    assert [g[0] for g in guests] == [1] * len(blank)


def test_shopify_order_lines_apart_are_refused(ws, tmp_path):
    lines = (DATA / "shopify_orders_export.csv").read_text(encoding="utf-8-sig").splitlines()
    header, first, second = lines[0], lines[1], lines[2]
    assert first.split(",")[0] == second.split(",")[0]  # two lines of one order
    other = next(line for line in lines[3:] if line and not line.startswith(first.split(",")[0]))
    path = tmp_path / "apart.csv"
    path.write_text("\n".join([header, first, other, second]) + "\n")
    result = import_csv(ws, WS, path)
    assert not result.written
    assert "line items must be on consecutive lines" in result.errors[0].reason


# --- Stripe payments: never customers again --------------------------------------


def test_stripe_payments_export_is_payments_not_customers(ws):
    rows = rows_of("stripe_unified_payments.csv")
    purchases: dict[str, list[tuple[str, int]]] = {}
    for row in rows:
        if row["Status"] != "Paid" and row["Status"] != "Refunded":
            continue
        if row["Captured"] == "false":
            continue  # authorised, never captured
        who = row["Customer ID"] or row["Customer Email"].lower() or row["id"]
        net = cents(row["Amount"]) - cents(row["Amount Refunded"])
        purchases.setdefault(who, []).append((row["Created date (UTC)"][:10], net))

    result = import_csv(ws, WS, DATA / "stripe_unified_payments.csv")
    assert result.ok and result.format_title == "Stripe payments export"
    assert result.kind == "orders"
    assert store(ws) == expected(purchases)
    assert expected(purchases)["orders"] > 0
    # The columns that made the silent failure are all read or named.
    placed = {c for c, _ in result.known_columns} | set(result.ignored_columns)
    assert not {"Created date (UTC)", "Amount", "Amount Refunded", "Status", "Captured"} & placed


def test_a_payments_file_without_a_known_layout_stops_naming_its_columns(ws, tmp_path):
    path = tmp_path / "payments.csv"
    # A payments layout no format knows (the columns of a trimmed Stripe export).
    path.write_text("Charge,Created date (UTC),Amount,Customer Email\nch_1,2026-06-01,10,a@b.c\n")
    with pytest.raises(JourneyError) as caught:
        import_csv(ws, WS, path)
    message = str(caught.value)
    assert "'Created date (UTC)'" in message and "'Amount'" in message and "--map" in message
    assert ws.execute(text("SELECT COUNT(*) FROM customer")).scalar_one() == 0


def test_map_reads_an_unknown_layout_and_is_remembered(ws, tmp_path):
    path = tmp_path / "payments.csv"
    path.write_text(
        "Charge,Created date (UTC),Amount,Customer Email,Note\n"
        "ch_1,2026-06-01 10:00,10.00,a@b.c,first\n"
        "ch_2,2026-06-20 10:00,5.00,a@b.c,second\n"
    )
    mapping = {"Charge": "order_id", "Created date (UTC)": "ordered_at", "Amount": "amount"}
    result = import_csv(ws, WS, path, mapping=mapping)
    assert result.kind == "orders" and result.inserted == 2
    assert store(ws) == {"buyers": 1, "repeat": 1, "revenue": 1500, "orders": 2}
    # The next export of the same layout needs no --map.
    again = import_csv(ws, WS, path)
    assert again.kind == "orders" and again.unchanged == 2


# --- HubSpot contacts: never without a journey -------------------------------------


def _reached(session: Session) -> dict[str, str]:
    """Each customer's furthest stage in the default journey."""
    columns = ", ".join(f"cj.reached_{i}" for i in range(len(DEFAULT_STAGES)))
    rows = session.execute(
        text(
            f"SELECT c.external_id, {columns} FROM customer c JOIN customer_journey cj "
            "ON cj.customer_id = c.id WHERE c.workspace_id = :ws"
        ),
        {"ws": WS},
    ).all()
    furthest = {}
    for row in rows:
        reached = [DEFAULT_STAGES[i] for i, at in enumerate(row[1:]) if at is not None]
        furthest[row[0]] = reached[-1] if reached else "none"
    return furthest


def test_hubspot_contacts_get_their_lifecycle_stages(ws):
    rows = rows_of("hubspot_contacts_export.csv")
    # HubSpot's meaning of its built-in stages (journey.stages), furthest reached.
    stage = {
        "Subscriber": "awareness",
        "Lead": "awareness",
        "Marketing Qualified Lead": "consideration",
        "Sales Qualified Lead": "consideration",
        "Opportunity": "decision",
        "Customer": "purchase",
        "Evangelist": "advocacy",
    }
    order = {s: i for i, s in enumerate(DEFAULT_STAGES)}
    want = {}
    for row in rows:
        reached = [stage[row["Lifecycle Stage"]]] + [
            stage[label]
            for label in stage
            if row.get(f"Became a {label} Date") or row.get(f"Became an {label} Date")
        ]
        want[row["Record ID"]] = max(reached, key=order.__getitem__)

    result = import_csv(ws, WS, DATA / "hubspot_contacts_export.csv")
    assert result.ok and result.format_title == "HubSpot contacts export"
    assert _reached(ws) == want
    channels = dict(
        ws.execute(
            text("SELECT external_id, channel FROM customer WHERE workspace_id = :ws"), {"ws": WS}
        ).all()
    )
    assert channels == {r["Record ID"]: r["Original Traffic Source"] for r in rows}
    created = ws.execute(
        text("SELECT COUNT(*) FROM customer WHERE workspace_id = :ws AND first_seen IS NOT NULL"),
        {"ws": WS},
    ).scalar_one()
    assert created == sum(1 for r in rows if r["Create Date"])


def test_hubspot_custom_stage_column_stops_until_mapped(ws, tmp_path):
    source = (DATA / "hubspot_contacts_export.csv").read_text(encoding="utf-8-sig")
    header, *body = source.splitlines()
    path = tmp_path / "hubspot.csv"
    path.write_text("\n".join([header + ",Became a Patient Date"] + [b + "," for b in body]))
    with pytest.raises(JourneyError, match="'Became a Patient Date'"):
        import_csv(ws, WS, path)
    result = import_csv(ws, WS, path, mapping={"Became a Patient Date": "purchase"})
    assert result.ok


# --- Square transactions ------------------------------------------------------------


def test_square_transactions_with_us_dates_zones_refund_rows_and_dollars(ws):
    rows = rows_of("square_transactions.csv")
    purchases: dict[str, list[tuple[str, int]]] = {}
    refunds: dict[str, int] = {}
    for row in rows:
        if row["Transaction Status"] not in ("Complete", ""):
            continue
        if row["Event Type"] == "Refund":
            refunds[row["Transaction ID"]] = -cents(row["Net Sales"].replace("-", ""))
            continue
        who = row["Customer ID"] or f"guest {row['Transaction ID']}"
        net = cents(row["Net Sales"]) - cents(row["Partial Refunds"].replace("-", ""))
        purchases.setdefault(who, []).append((row["Date"], net))
    result = import_csv(ws, WS, DATA / "square_transactions.csv")
    assert result.ok and result.format_title == "Square transactions export"
    want = expected(purchases)
    want["revenue"] += sum(refunds.values())
    assert store(ws) == want
    # 9:15:02 AM Pacific Time on 06/08/2026 is 16:15:02 UTC.
    first = ws.execute(
        text("SELECT MIN(occurred_at) FROM journey_event WHERE workspace_id = :ws"), {"ws": WS}
    ).scalar_one()
    assert first == to_epoch(datetime(2026, 6, 8, 16, 15, 2, tzinfo=UTC))


# --- WooCommerce Analytics orders -----------------------------------------------------


def test_woocommerce_orders_with_dates_in_words_and_net_sales(ws):
    rows = rows_of("woocommerce_analytics_orders.csv")
    purchases: dict[str, list[tuple[str, int]]] = {}
    for row in rows:
        if row["Status"] not in ("Completed", "Processing", "Refunded", "Cancelled"):
            continue  # on hold, failed, pending payment: not purchases
        # Refunded and cancelled orders are purchases taken back in full.
        net = cents(row["Net sales"]) if row["Status"] in ("Completed", "Processing") else 0
        day = str(datetime.strptime(row["Date"], "%B %d, %Y").date())
        purchases.setdefault(row["Customer"].lower(), []).append((day, net))
    result = import_csv(ws, WS, DATA / "woocommerce_analytics_orders.csv")
    assert result.ok and result.format_title == "WooCommerce Analytics orders download"
    assert store(ws) == expected(purchases)
    channels = {
        c
        for (c,) in ws.execute(
            text("SELECT DISTINCT channel FROM journey_event WHERE workspace_id = :ws"), {"ws": WS}
        ).all()
    }
    assert "Organic: Google" in channels


def test_woocommerce_advanced_order_export_groups_product_rows_and_reads_statuses(ws):
    """AlgolPlus's plugin with its default fields: products repeat as rows (the order's
    own columns on its first row, or repeated), only Processing and Completed orders are
    purchases (pending, failed, on hold, cancelled and refunded are not), a partial refund
    comes off a completed order, and a phone order without email is a guest."""
    name = "woocommerce_advanced_order_export.csv"
    rows = rows_of(name)
    firsts: dict[str, dict[str, str]] = {}
    for row in rows:
        firsts.setdefault(row["Order Number"], row)
    purchases: dict[str, list[tuple[str, int]]] = {}
    skipped = 0
    for number, row in firsts.items():
        status = row["Order Status"].lower().removeprefix("wc-")
        if status not in ("completed", "processing"):
            skipped += 1
            continue
        net = cents(row["Order Total Amount"]) - cents(row["Order Refund Amount"])
        who = row["Email (Billing)"].lower() or f"guest {number}"
        day = str(datetime.strptime(row["Order Date"], "%Y-%m-%d %H:%M").date())
        purchases.setdefault(who, []).append((day, net))
    assert len(rows) > len(firsts) and skipped == 5  # product rows; five kinds not bought

    result = import_csv(ws, WS, DATA / name)
    assert result.ok and result.format_title == "WooCommerce Advanced Order Export"
    assert result.kind == "orders" and result.rows == len(firsts)
    assert store(ws) == expected(purchases)
    assert store(ws)["repeat"] == 2  # Ann (two days) and Bob (his address in other case)
    again = import_csv(ws, WS, DATA / name)
    assert again.inserted == 0 and again.updated == 0 and store(ws) == expected(purchases)


# --- Mailchimp and the customer exports -------------------------------------------------


def test_mailchimp_subscribers_reach_consideration_at_their_opt_in(ws):
    rows = rows_of("mailchimp_subscribed_members.csv")
    result = import_csv(ws, WS, DATA / "mailchimp_subscribed_members.csv")
    assert result.ok and result.format_title == "Mailchimp audience export"
    reached = _reached(ws)
    assert reached == {r["Email Address"].lower(): "consideration" for r in rows}
    when = dict(
        ws.execute(
            text(
                "SELECT c.external_id, e.occurred_at FROM journey_event e JOIN customer c "
                "ON c.id = e.customer_id WHERE e.workspace_id = :ws AND e.kind = 'subscribe'"
            ),
            {"ws": WS},
        ).all()
    )
    for row in rows:
        moment = row["CONFIRM_TIME"] or row["OPTIN_TIME"]
        stored = when[row["Email Address"].lower()]
        assert stored == to_epoch(datetime.fromisoformat(moment).replace(tzinfo=UTC))


@pytest.mark.parametrize(
    ("name", "title", "key"),
    [
        ("shopify_customers_export.csv", "Shopify customers export", "Customer ID"),
        ("stripe_customers_export.csv", "Stripe customers export", "id"),
        ("square_customers_export.csv", "Square customers export", "Square Customer ID"),
    ],
)
def test_customer_exports_are_customers_with_their_totals_named(ws, name, title, key):
    rows = rows_of(name)
    result = import_csv(ws, WS, DATA / name)
    assert result.ok and result.format_title == title and result.kind == "customers"
    ids = {
        r[0]
        for r in ws.execute(
            text("SELECT external_id FROM customer WHERE workspace_id = :ws"), {"ws": WS}
        ).all()
    }
    assert ids == {r[key] for r in rows}
    # Lifetime totals are named as not imported, never silently dropped or read as orders.
    assert any("lifetime" in why for _, why in result.known_columns)
    assert store(ws)["orders"] == 0


def test_customers_then_orders_of_one_vendor_are_the_same_people(ws):
    import_csv(ws, WS, DATA / "square_customers_export.csv")
    import_csv(ws, WS, DATA / "square_transactions.csv")
    names = dict(
        ws.execute(
            text(
                "SELECT c.external_id, c.name FROM customer c JOIN customer_journey cj "
                "ON cj.customer_id = c.id WHERE c.workspace_id = :ws AND cj.purchase_days > 0"
            ),
            {"ws": WS},
        ).all()
    )
    assert names["CUS1"] == "Ann Lee"  # the transactions' customer is the directory's


# --- dates, money and currencies -----------------------------------------------------------


def test_day_first_is_decided_by_the_whole_file(ws, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_id,customer_id,ordered_at,amount\n1,c1,03/04/2026,10.00\n2,c1,25/04/2026,5.00\n"
    )
    result = import_csv(ws, WS, path)
    assert result.ok
    days = {
        str(from_epoch(d).date())
        for (d,) in ws.execute(
            text("SELECT occurred_at FROM journey_event WHERE workspace_id = :ws"), {"ws": WS}
        ).all()
    }
    assert days == {"2026-04-03", "2026-04-25"}


def test_ambiguous_numeric_dates_are_refused_with_the_flag_that_settles_them(ws, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("order_id,customer_id,ordered_at,amount\n1,c1,03/04/2026,10.00\n")
    with pytest.raises(JourneyError, match="--date-format"):
        import_csv(ws, WS, path)
    assert import_csv(ws, WS, path, date_format="%m/%d/%Y").ok


def test_decimal_comma_and_currency_refusal(ws, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(
        "order_id;customer_id;ordered_at;amount\n"
        "1;c1;2026-04-03;1.234,50 €\n"
        "2;c2;2026-04-04;12,00 €\n"
    )
    with pytest.raises(
        JourneyError, match=r"amounts are in EUR .* but the workspace counts in USD"
    ):
        import_csv(ws, WS, path)
    assert ws.execute(text("SELECT COUNT(*) FROM journey_event")).scalar_one() == 0
    result = import_csv(ws, WS, path, currencies={"EUR": Decimal("1")})
    assert result.ok
    assert store(ws)["revenue"] == 123450 + 1200


def test_dry_run_writes_nothing_and_counts_what_the_file_holds(session, tmp_path):
    result = import_csv(session, WS, DATA / "shopify_orders_export.csv", dry_run=True)
    assert result.dry_run and not result.written
    assert result.tally.kinds["order"] > 0 and result.tally.first_at is not None
    assert session.execute(text("SELECT COUNT(*) FROM journey_event")).scalar_one() == 0


# --- imports that share the database (issue 18) --------------------------------------------


class Crash(Exception):
    pass


def test_an_interrupted_import_resumes_after_its_last_committed_batch(ws):
    path = DATA / "shopify_orders_export.csv"
    commits = []

    def crash_on_third() -> None:
        if len(commits) == 2:
            raise Crash
        ws.commit()
        commits.append(1)

    with pytest.raises(Crash):
        import_csv(ws, WS, path, commit=crash_on_third, batch=2)
    ws.rollback()
    partial = store(ws)["orders"]
    assert 0 < partial < 8  # two batches of events were committed before the crash

    result = import_csv(ws, WS, path, commit=ws.commit, batch=2)
    assert result.resumed_after > 1 and result.ok
    # The same totals as a clean import of the file (computed in the Shopify test above).
    clean = store(ws)
    ws.execute(text("DELETE FROM journey_event"))
    ws.execute(text("DELETE FROM customer_journey"))
    ws.execute(text("DELETE FROM customer"))
    ws.execute(text("DELETE FROM sync_cursor"))
    ws.commit()
    import_csv(ws, WS, path, commit=ws.commit)
    assert store(ws) == clean


def test_a_large_import_relinks_in_slices_and_refreshes_in_steps(ws, monkeypatch):
    """Above _RELINK_WHOLE records the end-of-import refresh relinks the touched
    records _STEP at a time, committing between steps: the same state as one pass."""
    path = DATA / "shopify_orders_export.csv"
    import_csv(ws, WS, path, commit=ws.commit)
    whole = store(ws)
    for table in ("journey_event", "customer_journey", "customer", "sync_cursor"):
        ws.execute(text(f"DELETE FROM {table}"))
    ws.commit()
    monkeypatch.setattr(state, "_RELINK_WHOLE", 0)
    monkeypatch.setattr(state, "_STEP", 2)
    commits = []
    import_csv(ws, WS, path, commit=lambda: commits.append(ws.commit()))
    assert store(ws) == whole
    assert len(commits) >= 4


def test_the_same_file_again_is_a_read_that_writes_nothing(ws):
    path = DATA / "stripe_unified_payments.csv"
    first = import_csv(ws, WS, path, commit=ws.commit)
    again = import_csv(ws, WS, path, commit=ws.commit)
    assert again.already_imported and again.inserted == 0 and again.updated == 0
    assert again.unchanged == first.inserted


def test_each_batch_is_its_own_short_transaction(ws):
    commits = []
    import_csv(
        ws,
        WS,
        DATA / "shopify_orders_export.csv",
        commit=lambda: commits.append(ws.commit()),
        batch=3,
    )
    assert len(commits) >= 4  # several batches, then the final commit


# --- a clinic's bookings: Acuity Scheduling -------------------------------------------------


def test_acuity_appointments_bookings_visits_no_shows_and_cancellations(ws):
    rows = rows_of("acuity_appointments_export.csv")
    now = datetime.now(UTC)
    purchases: dict[str, list[tuple[str, int]]] = {}
    for row in rows:
        start = datetime.strptime(row["Start Time"], "%B %d, %Y %I:%M %p").replace(tzinfo=UTC)
        if row["Canceled"] == "yes" or row["Label"] == "No-Show" or start > now:
            continue  # a cancellation, a no-show, a booking still to come
        who = row["Email"].lower() or f"{row['First Name']} {row['Last Name']}".lower()
        purchases.setdefault(who, []).append((str(start.date()), cents(row["Appointment Price"])))

    result = import_csv(ws, WS, DATA / "acuity_appointments_export.csv")
    assert result.ok and result.format_title == "Acuity Scheduling appointments export"
    assert store(ws) == expected(purchases)
    kinds = dict(
        ws.execute(
            text("SELECT kind, COUNT(*) FROM journey_event WHERE workspace_id = :ws GROUP BY kind"),
            {"ws": WS},
        ).all()
    )
    assert kinds["booking"] == len(rows)
    assert kinds["cancellation"] == sum(1 for r in rows if r["Canceled"] == "yes")
    assert result.tally.statuses["no-show"] == sum(1 for r in rows if r["Label"] == "No-Show")
    # Everyone who booked reached the decision stage, at least.
    assert all(stage != "none" for stage in _reached(ws).values())


def test_the_same_file_read_another_way_is_imported_again(ws, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("order_id,customer_id,ordered_at,amount\n1,c1,2026-04-03 10:00,10.00\n")
    import_csv(ws, WS, path, commit=ws.commit)
    again = import_csv(ws, WS, path, commit=ws.commit, timezone="America/New_York")
    assert not again.already_imported and again.updated == 1
    moved = ws.execute(
        text("SELECT occurred_at FROM journey_event WHERE workspace_id = :ws"), {"ws": WS}
    ).scalar_one()
    assert moved == to_epoch(datetime(2026, 4, 3, 14, 0, tzinfo=UTC))


def test_no_write_lock_is_held_through_the_check_pass(ws, tmp_path):
    """The caller's pending writes are committed before the file is read, so the
    check pass (minutes for a large file) holds no transaction open."""
    ws.execute(text("UPDATE workspace SET name = 'Paws' WHERE id = :ws"), {"ws": WS})
    states = []

    def commit() -> None:
        events = ws.execute(text("SELECT COUNT(*) FROM journey_event")).scalar_one()
        states.append(events)
        ws.commit()

    import_csv(ws, WS, DATA / "stripe_unified_payments.csv", commit=commit)
    # The first commit came before any row was written: it ended the caller's update.
    assert states[0] == 0 and states[-1] > 0 and len(states) >= 2
    assert (
        ws.execute(text("SELECT name FROM workspace WHERE id = :ws"), {"ws": WS}).scalar_one()
        == "Paws"
    )
