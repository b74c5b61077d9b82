"""The HTTP service (FastAPI): store, admin and hook routes over `PaymentModule`."""

from paymod.http.app import create_app

__all__ = ["create_app"]
