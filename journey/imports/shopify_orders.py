"""Shopify: Orders > Export > "Plain CSV file".

Header (Shopify's order export as public code reads it: AaronLain/tenderloin_v1
orders/orders.go maps `Name`, `Created at`, `Paid at`, `Total`, `Lineitem sku`; the
full header below is quoted verbatim by a Go store's Shopify test fixture and a
Rust point-of-sale's Shopify parser, found with the code search corpus; the
line-item layout is described in /work/shared/notes/store-apis.md):

    Name,Email,Financial Status,Paid at,Fulfillment Status,Fulfilled at,Accepts Marketing,
    Currency,Subtotal,Shipping,Taxes,Total,Discount Code,Discount Amount,Shipping Method,
    Created at,Lineitem quantity,Lineitem name,Lineitem price,Lineitem compare at price,
    Lineitem sku,...,Billing Name,...,Shipping Phone,Notes,Note Attributes,Cancelled at,
    Payment Method,Payment Reference,Refunded Amount,Vendor,Outstanding Balance,Employee,
    Location,Device ID,Id,Tags,Risk Level,Source,Lineitem discount,Tax 1 Name,Tax 1 Value,...

One line per line item: the order's `Name` and `Email` repeat, its own columns
(Financial Status, Total, Refunded Amount, Cancelled at...) are on the first line
only. Times are written `2026-05-01 10:00:00 +0200`. Test orders are paid
through Shopify's test gateway, whose Payment Method is `bogus`.
"""

import re

from journey.imports.format import Outcome, VendorFormat

FORMAT = VendorFormat(
    name="shopify_orders",
    title="Shopify orders export",
    records="orders",
    signature=("Name", "Email", "Financial Status", "Paid at", "Total", "Lineitem quantity"),
    fields={
        "order_id": ("Name",),
        "customer_email": ("Email",),
        "customer_name": ("Billing Name",),
        "ordered_at": ("Created at",),
        "amount": ("Total",),
        "refund_amount": ("Refunded Amount",),
        "cancelled_at": ("Cancelled at",),
        "status": ("Financial Status",),
        "currency": ("Currency",),
        "test": ("Payment Method",),
        "phone": ("Phone", "Billing Phone", "Shipping Phone"),
    },
    statuses={
        "paid": Outcome.PAID,
        "partially_refunded": Outcome.PAID,
        "refunded": Outcome.REFUNDED,
        "partially_paid": Outcome.PAID,
        "pending": Outcome.NOT_PURCHASE,
        "authorized": Outcome.NOT_PURCHASE,
        "voided": Outcome.NOT_PURCHASE,
        "expired": Outcome.NOT_PURCHASE,
        "unpaid": Outcome.NOT_PURCHASE,
    },
    line_items=True,
    tests={"test": frozenset({"bogus", "(for testing) bogus gateway"})},
    known={
        "Paid at": "the order is dated by Created at (Paid at is when payment cleared)",
        "Fulfilled at": "fulfilment, not a journey step",
        "Fulfillment Status": "fulfilment, not a journey step",
        "Subtotal": "part of Total",
        "Shipping": "part of Total",
        "Taxes": "part of Total",
        "Discount Amount": "already taken off Total",
        "Duties": "part of Total",
        "Outstanding Balance": "an unpaid remainder; the order counts at its Total",
        "Lineitem price": "a line item's price; the order counts at its Total",
        "Lineitem compare at price": "a list price, not a sale",
        "Lineitem discount": "already taken off Total",
        "Lineitem fulfillment status": "fulfilment, not a journey step",
        "Next Payment Due At": "a payment-terms due date, not a journey step",
        "Payment Terms Name": "payment terms, not a journey step",
        "Risk Level": "fraud analysis, not a status",
    },
    known_patterns=((re.compile(r"Tax \d+ Value"), "part of Total"),),
    export_help="Shopify admin > Orders > Export > All orders > Plain CSV file",
)
