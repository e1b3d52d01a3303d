"""Every vendor format, in one place: `journey import FILE` recognises them by header."""

from __future__ import annotations

from journey.imports import (
    acuity_appointments,
    hubspot_contacts,
    mailchimp_audience,
    shopify_customers,
    shopify_orders,
    square_customers,
    square_transactions,
    stripe_customers,
    stripe_payments,
    woocommerce_order_export,
    woocommerce_orders,
)
from journey.imports.format import VendorFormat

FORMATS: tuple[VendorFormat, ...] = (
    shopify_orders.FORMAT,
    shopify_customers.FORMAT,
    stripe_payments.FORMAT,
    stripe_customers.FORMAT,
    square_transactions.FORMAT,
    square_customers.FORMAT,
    woocommerce_orders.FORMAT,
    woocommerce_order_export.FORMAT,
    hubspot_contacts.FORMAT,
    mailchimp_audience.FORMAT,
    acuity_appointments.FORMAT,
)
