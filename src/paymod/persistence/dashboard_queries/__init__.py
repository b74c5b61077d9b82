"""Read queries for the operator's dashboard (`paymod.http.dashboard`): the payment list, the overview's
figures and a collection's timeline.

Amounts are summed exactly: on PostgreSQL by NUMERIC sums, on SQLite (which stores them as decimal
strings) in Python with `Decimal`.

One module per page topic; the names the dashboard uses are importable from here.
"""

from paymod.domain.statuses import PaymentStatus
from paymod.persistence.dashboard_queries.endpoints_and_regions import recent_deliveries, regions
from paymod.persistence.dashboard_queries.overview_figures import DailyVolume, Overview, overview
from paymod.persistence.dashboard_queries.payment_list import (
    EXTERNAL_ID_KEYS,
    PAGE_SIZE,
    PaymentFilters,
    PaymentOrder,
    PaymentPage,
    PaymentRow,
    decode_cursor,
    encode_cursor,
    list_payments,
    payment_currencies_and_providers,
    payment_status,
)
from paymod.persistence.dashboard_queries.timeline import TimelineEntry, collection_timeline

__all__ = [
    "EXTERNAL_ID_KEYS",
    "PAGE_SIZE",
    "DailyVolume",
    "Overview",
    "PaymentFilters",
    "PaymentOrder",
    "PaymentPage",
    "PaymentRow",
    "PaymentStatus",
    "TimelineEntry",
    "collection_timeline",
    "decode_cursor",
    "encode_cursor",
    "list_payments",
    "overview",
    "payment_currencies_and_providers",
    "payment_status",
    "recent_deliveries",
    "regions",
]
