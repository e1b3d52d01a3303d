"""Stripe: Customers > Export.

Header (the Dashboard's customers export, quoted "verbatim from the Dashboard
export" by public code that rebuilds it: `id,Description,Email,Name,Created (UTC),
Delinquent,Plan,Status,Total Spend,Payment Count,Refunded Volume,Dispute Losses`,
found with the code search corpus).
Times are UTC.
"""

from journey.imports.format import VendorFormat

FORMAT = VendorFormat(
    name="stripe_customers",
    title="Stripe customers export",
    records="contacts",
    signature=("id", "Email", "Created (UTC)", "Delinquent"),
    fields={
        "id": ("id",),
        "email": ("Email",),
        "name": ("Name", "Description"),
        "first_seen": ("Created (UTC)",),
    },
    timezone="UTC",
    known={
        "Total Spend": "a lifetime total; import the payments export for purchases",
        "Payment Count": "a lifetime count; import the payments export for purchases",
        "Refunded Volume": "a lifetime total; the payments export carries each refund",
        "Dispute Losses": "a lifetime total of disputes",
        "Delinquent": "a billing flag, not a journey stage",
        "Status": "a subscription's billing status, not a journey stage",
        "Plan": "a subscription plan, not a journey stage",
    },
    export_help="Stripe Dashboard > Customers > Export",
)
