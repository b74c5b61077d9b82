"""Operators' sessions: signed in with a secret API key, held server-side (`dashboard_session`), named
by a signed cookie.

The cookie carries a random token, signed (itsdangerous) with the dashboard's secret and stored only as
its sha256. Every request checks the session row *and* the key it was opened with, so revoking the key
(or changing `PAYMOD_ADMIN_API_KEY`) ends its sessions at once, on every replica.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import SecretStr
from sqlalchemy import delete, insert, or_, select

from paymod.domain.ids import new_id
from paymod.persistence import tables as t
from paymod.persistence.database import Database
from paymod.persistence.repository import utc_now
from paymod.services.access import ApiKeyStore, ApiKeyType, token_hash

COOKIE = "paymod_dashboard"
#: The sign-in form's CSRF token before any session exists (double-submit: cookie and field must match).
SIGN_IN_COOKIE = "paymod_dashboard_sign_in"
TTL = timedelta(hours=float(os.environ.get("PAYMOD_DASHBOARD_SESSION_HOURS", 12)))
ENV_KEY = "env:"


@dataclass(frozen=True, slots=True)
class Operator:
    """A signed-in session: which key opened it, and its CSRF token."""

    session_id: str
    api_key_id: str
    csrf_token: str
    expires_at: datetime


def env_key_id(configured: SecretStr) -> str:
    """`PAYMOD_ADMIN_API_KEY`'s sessions name a hash of its value: a new value ends them."""
    return ENV_KEY + token_hash(configured.get_secret_value())[:16]


def signer(secret: str | None) -> URLSafeTimedSerializer:
    """`PAYMOD_DASHBOARD_SECRET` signs the cookies; without it each process makes one up, so a restart
    signs everyone out and replicas need the variable to share sessions."""
    return URLSafeTimedSerializer(secret or secrets.token_urlsafe(32), salt="paymod.dashboard.session")


class DashboardSessions:
    def __init__(
        self, database: Database, api_keys: ApiKeyStore, admin_key: SecretStr | None, secret: str | None
    ) -> None:
        self.database = database
        self.api_keys = api_keys
        self.admin_key = admin_key
        self._signer = signer(secret)

    async def sign_in(self, token: str) -> tuple[str, Operator] | None:
        """A new session for a live secret key (the signed cookie value and the session), or None."""
        if self.admin_key is not None and hmac.compare_digest(
            token.encode(), self.admin_key.get_secret_value().encode()
        ):
            key_id = env_key_id(self.admin_key)
        else:
            key = await self.api_keys.verify(token, ApiKeyType.SECRET)
            if key is None:
                return None
            key_id = key.id
        raw = secrets.token_urlsafe(32)
        now = utc_now()
        operator = Operator(new_id("dsess"), key_id, secrets.token_urlsafe(32), now + TTL)
        async with self.database.write() as conn:
            await conn.execute(
                insert(t.dashboard_session).values(
                    id=operator.session_id,
                    token_hash=token_hash(raw),
                    api_key_id=key_id,
                    csrf_token=operator.csrf_token,
                    created_at=now,
                    expires_at=operator.expires_at,
                )
            )
            # Sessions that ran out go when a new one comes: the table stays the size of who is signed in.
            await conn.execute(delete(t.dashboard_session).where(t.dashboard_session.c.expires_at <= now))
        return self._signer.dumps(raw), operator

    async def operator(self, cookie: str | None) -> Operator | None:
        """The live session a cookie names, or None (unsigned, expired, signed out or key revoked)."""
        if not cookie:
            return None
        try:
            raw = self._signer.loads(cookie, max_age=int(TTL.total_seconds()))
        except BadSignature:
            return None
        if not isinstance(raw, str):
            return None
        s, k = t.dashboard_session, t.api_key
        stmt = (
            select(s)
            .outerjoin(k, k.c.id == s.c.api_key_id)
            .where(
                s.c.token_hash == token_hash(raw),
                s.c.expires_at > utc_now(),
                or_(s.c.api_key_id.startswith(ENV_KEY), k.c.revoked_at.is_(None) & k.c.id.is_not(None)),
            )
        )
        async with self.database.read() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            return None
        if row.api_key_id.startswith(ENV_KEY) and (
            self.admin_key is None or row.api_key_id != env_key_id(self.admin_key)
        ):
            return None
        return Operator(row.id, row.api_key_id, row.csrf_token, row.expires_at)

    async def sign_out(self, operator: Operator) -> None:
        async with self.database.write() as conn:
            await conn.execute(
                delete(t.dashboard_session).where(t.dashboard_session.c.id == operator.session_id)
            )

    async def end_sessions_of(self, api_key_id: str) -> None:
        """A revoked key's sessions are refused anyway; this drops their rows."""
        async with self.database.write() as conn:
            await conn.execute(
                delete(t.dashboard_session).where(t.dashboard_session.c.api_key_id == api_key_id)
            )


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())
