"""The shared plumbing of the PayPal provider: the SDK client pointed at the configured environment (or
`api_base`), one call run off the event loop with its error translation, and the OAuth token the
webhook check reuses.

PayPal's server SDK is synchronous (requests underneath). Each call runs on a worker thread of a
bounded pool (`max_concurrency`), so the event loop never blocks and a slow PayPal cannot take more
threads than that; the SDK's own retries are off, because paymod retries a call whose outcome is unknown
with the same PayPal-Request-Id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

try:
    from paypalserversdk.configuration import Configuration, Environment, Server
    from paypalserversdk.exceptions.api_exception import ApiException
    from paypalserversdk.http.auth.o_auth_2 import ClientCredentialsAuthCredentials
    from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "The PayPal provider needs PayPal's server SDK: pip install 'paymod[paypal]' "
        f"(the package paypal-server-sdk) ({exc})"
    ) from exc

from paymod.domain.errors import ProviderError
from paymod.providers.base import PaymentProvider
from paymod.providers.paypal.errors import PayPalFailure, translate, unreachable
from paymod.providers.paypal.mapping import session_id
from paymod.providers.paypal.options import PayPalOptions

log = logging.getLogger("paymod.providers.paypal")

Data = dict[str, Any]


class _Configuration(Configuration):  # type: ignore[misc]  # untyped SDK
    """The SDK's configuration, answering `api_base` as the base URL when one is set.

    The SDK knows two environments (`Environment.SANDBOX`, `Environment.PRODUCTION`) and has no option
    for another URL; its client takes a whole `config`, and every request asks it `get_base_uri`.
    """

    def __init__(self, *, api_base: str | None, **kwargs: Any) -> None:
        self._api_base = api_base
        super().__init__(**kwargs)

    def get_base_uri(self, server: Any = Server.DEFAULT) -> str:
        return self._api_base or str(super().get_base_uri(server))


@dataclass(frozen=True, slots=True)
class Answer:
    """A PayPal answer: its status and JSON body, or the error an `expect`ing caller handles itself."""

    status: int
    body: Data = field(default_factory=dict)
    failure: PayPalFailure | None = None


def _json(text: str | None) -> Data:
    if not text:
        return {}
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class PayPalCalls(PaymentProvider):
    """What every topic of `PayPalProvider` calls PayPal through; `PayPalProvider.__init__` sets its state."""

    settings: PayPalOptions
    _client: Any
    _executor: ThreadPoolExecutor | None
    _token: Any
    _lock: threading.Lock
    _http: httpx.AsyncClient | None

    @property
    def base_url(self) -> str:
        if self.settings.api_base:
            return self.settings.api_base
        environment = Environment.PRODUCTION if self.settings.environment == "live" else Environment.SANDBOX
        return str(Configuration.environments[environment][Server.DEFAULT])

    @property
    def client(self) -> Any:
        """The SDK client, created on first use."""
        with self._lock:
            if self._client is None:
                settings = self.settings
                credentials = ClientCredentialsAuthCredentials(
                    o_auth_client_id=settings.client_id,
                    o_auth_client_secret=settings.client_secret.get_secret_value(),
                    o_auth_token_provider=self._fetch_token,
                )
                self._client = PaypalServersdkClient(
                    config=_Configuration(
                        api_base=settings.api_base,
                        timeout=settings.timeout,
                        max_retries=0,
                        environment=(
                            Environment.PRODUCTION if settings.environment == "live" else Environment.SANDBOX
                        ),
                        client_credentials_auth_credentials=credentials,
                    )
                )
            return self._client

    def _fetch_token(self, last_token: Any, auth: Any) -> Any:
        """The SDK's token provider: a token fetch that fails raises (the SDK's default would swallow a
        5xx of the token endpoint and report bad credentials), and the token is kept for webhook checks."""
        token = auth.fetch_token()
        self._token = token
        return token

    def _access_token(self) -> str:
        """A valid OAuth access token (fetched through the SDK when missing or expired); blocking."""
        auth = self.client.oauth_2
        auth.is_valid()
        if self._token is None or auth.is_token_expired(self._token):
            self._fetch_token(None, auth)
        return str(self._token.access_token)

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.settings.max_concurrency, thread_name_prefix="paymod-paypal"
                )
            return self._executor

    async def _blocking(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool(), fn)

    def _http_client(self) -> httpx.AsyncClient:
        """The HTTP client for PayPal's APIs the SDK does not cover (webhook verification, disputes)."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.settings.timeout)
        return self._http

    async def _rest(
        self,
        method: str,
        path: str,
        *,
        json_body: Data | None = None,
        files: Any = None,
        params: dict[str, str] | None = None,
        request_id: str | None = None,
    ) -> Answer:
        """One call to a PayPal REST API the SDK does not cover, with the SDK's OAuth token; errors are
        translated as the SDK's are (`errors.translate`)."""
        token = await self._blocking(self._access_token)
        headers = {"Authorization": f"Bearer {token}"}
        if request_id:
            headers["PayPal-Request-Id"] = request_id
        try:
            response = await self._http_client().request(
                method, self.base_url + path, json=json_body, files=files, params=params, headers=headers
            )
        except httpx.HTTPError as exc:
            raise unreachable(exc) from exc
        if response.status_code >= 400:
            raise translate(PayPalFailure.parse(response.status_code, response.text))
        return Answer(status=response.status_code, body=_json(response.text))

    async def close(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True)
        self._client = None

    async def _send(self, call: Callable[[Any], Any], *, expect: Collection[str] = ()) -> Answer:
        """Runs one SDK call (`call(client)`) on the pool. An error whose issue is in `expect` is answered
        (`Answer.failure`); other errors raise paymod's (`errors.translate`)."""

        def run() -> Answer:
            try:
                response = call(self.client)
            except ApiException as exc:
                failure = PayPalFailure.parse(exc.response_code, getattr(exc.response, "text", None))
                if failure.issue in expect or failure.name in expect:
                    return Answer(status=failure.status, body=failure.body, failure=failure)
                raise translate(failure) from exc
            except OSError as exc:  # requests' connection errors and timeouts are OSErrors
                raise unreachable(exc) from exc
            return Answer(status=int(response.status_code), body=_json(response.text))

        answer: Answer = await self._blocking(run)
        return answer

    async def _capture_session(self, capture_id: str) -> str | None:
        """paymod's session id of a capture (its `custom_id`), None for a capture paymod did not make
        or PayPal does not know."""
        answer = await self._send(
            lambda c: c.payments.get_captured_payment({"capture_id": capture_id}),
            expect={"INVALID_RESOURCE_ID", "RESOURCE_NOT_FOUND"},
        )
        return None if answer.failure is not None else session_id(answer.body)

    @staticmethod
    def _order_id(data: Data, doing: str) -> str:
        order_id = data.get("id")
        if not isinstance(order_id, str) or not order_id:
            raise ProviderError(
                f"No PayPal order id in the payment's data while {doing}.", code="invalid_data"
            )
        return order_id
