"""Webhooks both ways: the verified inbound inbox and the outbound event outbox."""

from paymod.webhooks.signing import SignatureVerificationError, sign_payload, verify_signature

__all__ = ["SignatureVerificationError", "sign_payload", "verify_signature"]
