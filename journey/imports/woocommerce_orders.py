"""WooCommerce: Analytics > Orders > Download (CSV).

Header: the Orders report table's columns, as WooCommerce Admin declares them
(woocommerce/woocommerce plugins/woocommerce/client/admin/client/analytics/report/orders/table.js,
getHeadersContent): `Date`, `Order #`, `Status`, `Customer`, `Customer type`,
`Payment method`, `Product(s)`, `Items sold`, `Coupon(s)`, `Net sales`,
`Attribution`; older versions write `Net Sales` or `N. Revenue`. The CSV
download writes the same labels (https://woocommerce.com/document/woocommerce-analytics/).

Dates follow the site's date setting, by default `June 8, 2026`; money
carries the store's symbol. The customer is a name (the report has no email),
so one person is one name. Statuses are the order statuses' labels
(Completed, Processing, On hold, Pending payment, Failed, Cancelled, Refunded).
"""

from journey.imports.format import Outcome, VendorFormat

FORMAT = VendorFormat(
    name="woocommerce_orders",
    title="WooCommerce Analytics orders download",
    records="orders",
    signature=("Date", "Order #", "Status", "Customer", "Customer type"),
    fields={
        "order_id": ("Order #",),
        "customer_name": ("Customer",),
        "ordered_at": ("Date",),
        "amount": ("Net sales", "Net Sales", "N. Revenue"),
        "status": ("Status",),
        "channel": ("Attribution",),
    },
    statuses={
        "completed": Outcome.PAID,
        "processing": Outcome.PAID,
        "refunded": Outcome.REFUNDED,
        "cancelled": Outcome.CANCELLED,
        "on_hold": Outcome.NOT_PURCHASE,
        "pending": Outcome.NOT_PURCHASE,
        "pending_payment": Outcome.NOT_PURCHASE,
        "failed": Outcome.NOT_PURCHASE,
        "checkout_draft": Outcome.NOT_PURCHASE,
        "draft": Outcome.NOT_PURCHASE,
        "trash": Outcome.NOT_PURCHASE,
    },
    known={
        "Customer type": "new or returning, which journey works out from the orders",
        "Items sold": "a count of items, not money",
    },
    export_help="WordPress admin > Analytics > Orders > (date range) > Download",
)
