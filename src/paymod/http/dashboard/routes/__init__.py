"""The dashboard's pages, one module per topic: server-rendered HTML forms over `PaymentModule` and the
stores the HTTP API uses, all on the one `dashboard` router.

Importing the topic modules registers their routes on it; no two topics' paths overlap, so the order
they are imported in does not change which route answers.
"""

from paymod.http.dashboard.routes import overview, payments, settings, sign_in, webhooks  # noqa: F401
from paymod.http.dashboard.routes.common import (
    PREFIX,
    SECURITY_HEADERS,
    CsrfRejected,
    SignInRequired,
    dashboard,
    render,
)

__all__ = ["PREFIX", "SECURITY_HEADERS", "CsrfRejected", "SignInRequired", "dashboard", "render"]
