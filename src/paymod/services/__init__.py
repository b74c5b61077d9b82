"""The service layer: `PaymentModule`, the module's public API."""
