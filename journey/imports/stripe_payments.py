"""Stripe: Payments > Export (`unified_payments.csv`).

Header (the Dashboard's payments export; public code reading it checks for
`id`, `Created date (UTC)`, `Amount`, `Amount Refunded`, `Currency`, `Status`,
`Captured`, `Customer Email`: Stripe reconciliation parsers found with the
code search corpus; /work/shared/notes/store-apis.md):

    id,Created date (UTC),Amount,Amount Refunded,Currency,Captured,Converted Amount,
    Converted Amount Refunded,Converted Currency,Decline Reason,Description,Fee,
    Refunded date (UTC),Statement Descriptor,Status,Seller Message,Taxes On Fee,
    Card ID,Customer ID,Customer Description,Customer Email,Invoice ID,Transfer,...

Times are UTC. `Status` is Paid, Refunded, Failed...; `Captured` false is an
authorisation that never became a payment.
"""

from journey.imports.format import Outcome, VendorFormat

FORMAT = VendorFormat(
    name="stripe_payments",
    title="Stripe payments export",
    records="orders",
    signature=("id", "Created date (UTC)", "Amount", "Status"),
    fields={
        "order_id": ("id",),
        "customer_id": ("Customer ID",),
        "customer_email": ("Customer Email",),
        "customer_name": ("Customer Description",),
        "ordered_at": ("Created date (UTC)",),
        "amount": ("Amount",),
        "refund_amount": ("Amount Refunded",),
        "refunded_at": ("Refunded date (UTC)",),
        "status": ("Status",),
        "captured": ("Captured",),
        "currency": ("Currency",),
    },
    statuses={
        "paid": Outcome.PAID,
        "succeeded": Outcome.PAID,
        "refunded": Outcome.REFUNDED,
        "partially_refunded": Outcome.PAID,
        "disputed": Outcome.PAID,
        "failed": Outcome.NOT_PURCHASE,
        "blocked": Outcome.NOT_PURCHASE,
        "canceled": Outcome.NOT_PURCHASE,
        "cancelled": Outcome.NOT_PURCHASE,
        "incomplete": Outcome.NOT_PURCHASE,
        "uncaptured": Outcome.NOT_PURCHASE,
        "pending": Outcome.NOT_PURCHASE,
        "requires_payment_method": Outcome.NOT_PURCHASE,
    },
    not_captured=frozenset({"false", "no", "0"}),
    timezone="UTC",
    known={
        "Converted Amount": "Amount in the account's settlement currency",
        "Converted Amount Refunded": "Amount Refunded in the settlement currency",
        "Converted Currency": "the settlement currency",
        "Fee": "Stripe's fee, not the customer's spend",
        "Taxes On Fee": "tax on Stripe's fee",
        "Decline Reason": "why a failed payment failed (Status says it failed)",
        "Seller Message": "Stripe's note on the payment's outcome (Status carries it)",
        "Disputed Amount": "a dispute, not a refund",
        "Dispute Date (UTC)": "a dispute, not a refund",
        "Dispute Evidence Due (UTC)": "a dispute deadline",
        "Dispute Status": "a dispute's state",
        "Dispute Reason": "a dispute's reason",
    },
    export_help="Stripe Dashboard > Payments > Export (all columns or default)",
)
