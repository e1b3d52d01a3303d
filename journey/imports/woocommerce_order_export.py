"""WooCommerce: the "Advanced Order Export For WooCommerce" plugin (AlgolPlus,
wordpress.org slug woo-order-export-lite), WooCommerce > Export Orders, CSV, with the
fields it ticks by default.

Header: the plugin's default fields, in its segment order (common, user, billing,
shipping, products, coupons, cart), as its field lists declare them with
`'checked' => 1` (classes/core/class-wc-order-export-data-extractor-ui.php,
get_order_fields_common/_billing/_shipping/_cart, get_order_product_fields and
get_order_coupon_fields; read in a site that ships the plugin,
developermauricio/naturalconexion wp-content/plugins/woo-order-export-lite/, found with
the code search corpus):

    Order Number,Order Status,Order Date,Customer Note,First Name (Billing),
    Last Name (Billing),Company (Billing),Address 2 (Billing),City (Billing),
    State Code (Billing),Zip (Billing),Country Code (Billing),Email (Billing),
    Phone (Billing),First Name (Shipping),Last Name (Shipping),Address 1 (Shipping),
    Address 2 (Shipping),City (Shipping),State Code (Shipping),Zip (Shipping),
    Country Code (Shipping),Item #,SKU,Name,Quantity,Item Cost,Coupon Code,
    Discount Amount,Discount Amount Tax,Shipping Method Title,Payment Method Title,
    Cart Discount Amount,Order Subtotal Amount,Order Shipping Amount,
    Order Refund Amount,Order Total Amount,Order Total Tax Amount

Products and coupons repeat as rows by default (`'repeat' => 'rows'`): an order with
three products is three consecutive rows with the same Order Number, its own columns
read from the first. A store that changed the ticked fields gets a different header;
the signature asks only for the columns journey reads.

Statuses are WooCommerce's (Pending payment, Failed, Processing, Completed, On hold,
Cancelled, Refunded). Whether the plugin writes the label or the slug (`wc-on-hold`) was
not confirmed from its code, so both are read; Order Date's format follows the plugin's
date and time settings and was not confirmed either (the importer reads ISO, numeric
and worded dates). Only Processing and
Completed are purchases: pending, failed and on-hold orders are not paid, a cancelled
WooCommerce order is one cancelled before it was fulfilled (usually never paid), and
a Refunded order was given back in full, so none of them makes a buyer. A completed
order refunded in part keeps its purchase, less `Order Refund Amount`. Order Date is
the site's local time without an offset (`--timezone`, else the workspace's zone, says
where).
"""

from journey.imports.format import Outcome, VendorFormat

FORMAT = VendorFormat(
    name="woocommerce_order_export",
    title="WooCommerce Advanced Order Export",
    records="orders",
    signature=(
        "Order Number",
        "Order Status",
        "Order Date",
        "Email (Billing)",
        "Order Total Amount",
    ),
    fields={
        "order_id": ("Order Number",),
        "customer_email": ("Email (Billing)",),
        "first_name": ("First Name (Billing)",),
        "last_name": ("Last Name (Billing)",),
        "phone": ("Phone (Billing)",),
        "ordered_at": ("Order Date",),
        "amount": ("Order Total Amount",),
        "refund_amount": ("Order Refund Amount",),
        "status": ("Order Status",),
        "currency": ("Currency",),
    },
    statuses={
        "completed": Outcome.PAID,
        "processing": Outcome.PAID,
        "wc_completed": Outcome.PAID,
        "wc_processing": Outcome.PAID,
        "pending": Outcome.NOT_PURCHASE,
        "pending_payment": Outcome.NOT_PURCHASE,
        "wc_pending": Outcome.NOT_PURCHASE,
        "failed": Outcome.NOT_PURCHASE,
        "wc_failed": Outcome.NOT_PURCHASE,
        "on_hold": Outcome.NOT_PURCHASE,
        "wc_on_hold": Outcome.NOT_PURCHASE,
        "cancelled": Outcome.NOT_PURCHASE,
        "wc_cancelled": Outcome.NOT_PURCHASE,
        "refunded": Outcome.NOT_PURCHASE,
        "wc_refunded": Outcome.NOT_PURCHASE,
        "checkout_draft": Outcome.NOT_PURCHASE,
        "draft": Outcome.NOT_PURCHASE,
    },
    line_items=True,
    known={
        "Item Cost": "a product line's price; the order counts at Order Total Amount",
        "Discount Amount": "a coupon's discount, already taken off Order Total Amount",
        "Discount Amount Tax": "a coupon's discount tax, already in Order Total Amount",
        "Cart Discount Amount": "already taken off Order Total Amount",
        "Order Subtotal Amount": "part of Order Total Amount",
        "Order Shipping Amount": "part of Order Total Amount",
        "Order Total Tax Amount": "part of Order Total Amount",
    },
    export_help="WordPress admin > WooCommerce > Export Orders > CSV > Export",
)
