"""Square: Transactions > Export > "Transactions CSV".

Header (the Square Dashboard's transactions export, quoted verbatim as the input
of public scripts that read it, e.g. a Square statement generator's comment
`Date,Time,Time Zone,Gross Sales,Discounts,Service Charges,Net Sales,Gift Card Sales,
Tax,Tip,Partial Refunds,Total Collected,Source,Card,Card Entry Methods,Cash,
Square Gift Card,Other Tender,Other Tender Type,Other Tender Note,Fees,Net Total,
Transaction ID,Payment ID,Card Brand,PAN Suffix,Device Name,Staff Name,Staff ID,
Details,Description,Event Type,Location,Dining Option,Customer ID,Customer Name,
Customer Reference ID,Device Nickname,...,Transaction Status,...` found with the
code search corpus; where to click: StThereseInstitute/SquareStatementGenerator
README.md, "EXPORT > Transactions CSV").

Dates are `06/08/2026` (US) or `2026-06-08`, the time and the Rails time zone
name (`Pacific Time (US & Canada)`) in their own columns, money as `$1,250.00`
and `-$0.95`. A refund is its own row with Event Type `Refund` and negative
amounts. Revenue is Net Sales (after discounts, before tax and tip).
"""

import re

from journey.imports.format import Outcome, VendorFormat

FORMAT = VendorFormat(
    name="square_transactions",
    title="Square transactions export",
    records="orders",
    signature=("Date", "Time", "Time Zone", "Gross Sales", "Net Sales", "Transaction ID"),
    fields={
        "order_id": ("Transaction ID",),
        "customer_id": ("Customer ID",),
        "customer_name": ("Customer Name",),
        "ordered_at": ("Date",),
        "time": ("Time",),
        "timezone": ("Time Zone",),
        "amount": ("Net Sales",),
        "refund_amount": ("Partial Refunds",),
        "status": ("Transaction Status",),
        "kind": ("Event Type",),
    },
    statuses={
        "complete": Outcome.PAID,
        "completed": Outcome.PAID,
        "pending": Outcome.NOT_PURCHASE,
        "failed": Outcome.NOT_PURCHASE,
        "canceled": Outcome.NOT_PURCHASE,
        "cancelled": Outcome.NOT_PURCHASE,
        "voided": Outcome.NOT_PURCHASE,
    },
    status_when_empty=Outcome.PAID,
    known={
        "Gross Sales": "before discounts; Net Sales is the revenue",
        "Discounts": "already taken off Net Sales",
        "Service Charges": "not a sale of the business's goods",
        "Gift Card Sales": "a gift card is spent later, as a sale",
        "Tax": "collected for the tax office",
        "Tip": "the staff's",
        "Total Collected": "Net Sales plus tax and tip",
        "Card": "how it was paid",
        "Cash": "how it was paid",
        "Square Gift Card": "how it was paid",
        "Other Tender": "how it was paid",
        "Fees": "Square's fee",
        "Net Total": "after Square's fee",
        "Third Party Fees": "fees",
        "Deposit Date": "a bank deposit, not a sale",
        "Deposit Details": "a bank deposit",
        "Fee Percentage Rate": "fees",
        "Fee Fixed Rate": "fees",
        "Refund Reason": "why a refund row was refunded",
        "Free Processing Applied": "fees",
        "Unattributed Tips": "tips",
        "International Fee": "fees",
    },
    known_patterns=((re.compile(r".*Tender.*"), "how it was paid"),),
    export_help="Square Dashboard > Payments > Transactions > Export > Transactions CSV",
)
