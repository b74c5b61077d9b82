"""The operator's dashboard in a real browser, against a real `paymod serve` (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from typing import Any

import httpx
from playwright.async_api import BrowserContext, Page, expect

from browser.conftest import PHONE, shot
from e2e.support import ADMIN, ADMIN_KEY, STORE, TESTING, Server, json_of


# -- helpers ------------------------------------------------------------------------------------
def api(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=30)


def authorized_payment(server: Server, amount: str = "100", **collection: Any) -> dict[str, Any]:
    """A payment made through the HTTP API, as a shop's backend and storefront make one."""
    with api(server) as client:
        created = client.post(
            "/admin/payment-collections",
            json={"amount": amount, "currency_code": "usd", **collection},
            headers=ADMIN,
        )
        assert created.status_code == 200, created.text
        collection_id = json_of(created)["payment_collection"]["id"]
        session = client.post(
            f"/store/payment-collections/{collection_id}/payment-sessions",
            json={"provider_id": TESTING, "data": {}},
            headers=STORE,
        )
        assert session.status_code == 200, session.text
        authorized = client.post(
            f"/store/payment-collections/{collection_id}/authorize", json={}, headers=STORE
        )
        assert authorized.status_code == 200, authorized.text
        payment: dict[str, Any] = json_of(authorized)["payment"]
        return payment


def books(server: Server, payment_id: str) -> dict[str, Any]:
    with api(server) as client:
        response = client.get(f"/admin/payments/{payment_id}", headers=ADMIN)
        assert response.status_code == 200, response.text
        payment: dict[str, Any] = json_of(response)["payment"]
        return payment


def total(items: list[dict[str, Any]]) -> Decimal:
    return sum((Decimal(str(i["amount"])) for i in items), Decimal(0))


async def sign_in(page: Page, key: str = ADMIN_KEY, path: str = "/dashboard") -> None:
    await page.goto(path)
    await expect(page).to_have_url(re.compile(r"/dashboard/sign-in"))
    await page.get_by_label("Secret API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    # The brand bar is there only for a signed-in operator (on a phone, Sign out hides in the menu).
    await expect(page.locator("header a.brand")).to_be_visible()


async def no_horizontal_overflow(page: Page) -> None:
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} overflows a phone's width by {overflow}px"


# -- signing in ---------------------------------------------------------------------------------
async def test_a_signed_out_visitor_is_sent_to_sign_in_and_back_to_the_page_asked_for(
    page: Page, server: Server
) -> None:
    payment = authorized_payment(server)
    wanted = f"/dashboard/payments?q={payment['id']}"
    for path in ("/dashboard", "/dashboard/payments", "/dashboard/api-keys", wanted):
        response = await page.goto(path)
        assert response is not None
        await expect(page).to_have_url(re.compile(r"/dashboard/sign-in"))
        await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    await shot(page, "sign-in")

    await page.get_by_label("Secret API key").fill("sk_not_a_key")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("not a live secret API key")

    await page.get_by_label("Secret API key").fill(ADMIN_KEY)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(re.escape(wanted)))
    await expect(page.get_by_role("link", name=payment["id"])).to_be_visible()

    cookie = next(c for c in await page.context.cookies() if c["name"] == "paymod_dashboard")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["expires"] > 0  # an expiry, not a browser-session cookie
    assert cookie["secure"] is False  # plain HTTP on loopback; Secure when served over HTTPS

    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/dashboard/sign-in"))
    await page.goto("/dashboard/payments")
    await expect(page).to_have_url(re.compile(r"/dashboard/sign-in"))


async def test_revoking_the_key_ends_its_dashboard_sessions(
    page: Page, context: BrowserContext, server: Server
) -> None:
    await sign_in(page)
    await page.goto("/dashboard/api-keys")
    await page.get_by_label("Title").fill("support desk")
    await page.get_by_role("button", name="Create key").click()
    token = (await page.locator("[data-secret]").inner_text()).strip()
    assert token.startswith("sk_")
    await shot(page, "api-keys")

    other = await context.browser.new_context(base_url=server.base_url)  # type: ignore[union-attr]
    try:
        colleague = await other.new_page()
        await sign_in(colleague, token)
        await colleague.goto("/dashboard/payments")
        await expect(colleague.get_by_role("heading", name="Payments")).to_be_visible()

        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        row = page.get_by_role("row").filter(has_text="support desk")
        await row.get_by_role("button", name="Revoke").click()
        await expect(row.get_by_text("revoked")).to_be_visible()

        await colleague.goto("/dashboard/payments")
        await expect(colleague).to_have_url(re.compile(r"/dashboard/sign-in"))
        with api(server) as client:
            assert (
                client.get("/admin/payments", headers={"Authorization": f"Bearer {token}"}).status_code == 401
            )
    finally:
        await other.close()


# -- payments -----------------------------------------------------------------------------------
async def test_a_payment_made_through_the_api_appears_and_is_found_by_any_of_its_ids(
    page: Page, server: Server
) -> None:
    payment = authorized_payment(server, "49.90")
    await sign_in(page)
    await page.goto("/dashboard/payments")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=payment["id"]))
    await expect(row).to_contain_text("$49.90")
    await expect(row).to_contain_text("authorized")
    await shot(page, "payments")

    external = payment["data"]["reference"]
    for query in (payment["id"], payment["payment_collection_id"], payment["payment_session_id"], external):
        await page.goto("/dashboard/payments")
        await page.get_by_label("Search").fill(query)
        await page.get_by_role("button", name="Apply").click()
        await expect(page.get_by_role("link", name=payment["id"])).to_be_visible()
        await expect(page.locator("table.list tbody tr")).to_have_count(1)

    await page.goto("/dashboard/payments?status=captured")
    await expect(page.get_by_text("No payments match.")).to_be_visible()


async def test_a_partial_capture_and_a_refund_through_the_forms_change_the_books(
    page: Page, server: Server
) -> None:
    payment = authorized_payment(server, "100")
    with api(server) as client:
        reason = client.post(
            "/admin/refund-reasons", json={"label": "Damaged box", "code": "damaged"}, headers=ADMIN
        )
        assert reason.status_code == 200, reason.text
    await sign_in(page)
    await page.goto(f"/dashboard/payments/{payment['id']}")
    section = page.locator(f"section#{payment['id']}")
    await expect(section).to_contain_text("authorized")
    await shot(page, "payment")

    await section.get_by_label(re.compile("^Amount")).first.fill("30")
    await section.get_by_role("button", name="Capture…").click()
    await expect(page.get_by_role("heading", name="Capture $30.00?")).to_be_visible()
    await shot(page, "confirm-capture")
    await page.get_by_role("button", name="Capture", exact=True).click()
    await expect(page.get_by_role("status")).to_have_text("Captured.")
    await expect(section.locator("[data-captured]")).to_have_text("$30.00")
    await expect(section).to_contain_text("partially captured")

    await section.locator("form[action$='/refund'] input[name=amount]").fill("10")
    await section.get_by_label("Reason").select_option(label="Damaged box")
    await section.get_by_label("Note").fill("customer called")
    await section.get_by_role("button", name="Refund…").click()
    await expect(page.get_by_role("heading", name="Refund $10.00?")).to_be_visible()
    await page.get_by_role("button", name="Refund", exact=True).click()
    await expect(page.get_by_role("status")).to_have_text("Refunded.")
    await expect(section.locator("[data-refunded]")).to_have_text("$10.00")
    timeline = page.locator("ol.timeline")
    await expect(timeline).to_contain_text("Captured")
    await expect(timeline).to_contain_text("Damaged box · customer called")

    booked = books(server, payment["id"])
    assert total(booked["captures"]) == Decimal("30")
    assert total(booked["refunds"]) == Decimal("10")
    assert booked["refunds"][0]["note"] == "customer called"

    # More than remains is refused inline, and nothing moves.
    await section.locator("form[action$='/capture'] input[name=amount]").fill("500")
    await section.get_by_role("button", name="Capture…").click()
    await page.get_by_role("button", name="Capture", exact=True).click()
    await expect(page.locator(f"section#{payment['id']} .error")).to_be_visible()
    assert total(books(server, payment["id"])["captures"]) == Decimal("30")


async def test_a_double_submit_captures_once(page: Page, server: Server) -> None:
    payment = authorized_payment(server, "80")
    await sign_in(page)
    await page.goto(f"/dashboard/payments/{payment['id']}")
    section = page.locator(f"section#{payment['id']}")
    await section.locator("form[action$='/capture'] input[name=amount]").fill("25")
    await section.get_by_role("button", name="Capture…").click()
    confirm = page.locator("form[action$='/capture']")
    fields = {
        name: await confirm.locator(f"input[name={name}]").input_value()
        for name in ("csrf_token", "idempotency_key", "amount", "confirmed")
    }
    url = f"/dashboard/payments/{payment['id']}/capture"
    # The same confirmed form sent twice at once, and once more afterwards (a reload that resubmits).
    first, second = await asyncio.gather(
        page.request.post(url, form=fields, max_redirects=0),
        page.request.post(url, form=fields, max_redirects=0),
    )
    third = await page.request.post(url, form=fields, max_redirects=0)
    assert {first.status, second.status} <= {303, 409}, (first.status, second.status)
    assert 303 in {first.status, second.status}
    assert third.status == 303
    assert "notice=replayed" in third.headers["location"]
    captures = books(server, payment["id"])["captures"]
    assert [Decimal(str(c["amount"])) for c in captures] == [Decimal("25")]


async def test_a_post_without_the_csrf_token_gets_403_and_does_nothing(page: Page, server: Server) -> None:
    payment = authorized_payment(server, "60")
    await sign_in(page)
    url = f"/dashboard/payments/{payment['id']}/capture"
    for form in (
        {"confirmed": "yes", "idempotency_key": "dash_x"},
        {"csrf_token": "forged", "confirmed": "yes"},
    ):
        response = await page.request.post(url, form=form, max_redirects=0)
        assert response.status == 403
        assert "security token" in await response.text()
    # Sign-in itself needs its form's token.
    assert (await page.request.post("/dashboard/sign-in", form={"api_key": ADMIN_KEY})).status == 403
    assert books(server, payment["id"])["captures"] == []


async def test_metadata_containing_a_script_shows_as_text(page: Page, server: Server) -> None:
    script = '<script>window.pwned = true</script><img src=x onerror="window.pwned = true">'
    payment = authorized_payment(server, "10", metadata={"note": script})
    await sign_in(page)
    await page.goto(f"/dashboard/collections/{payment['payment_collection_id']}")
    await expect(page.locator("pre.json").first).to_contain_text("<script>window.pwned = true</script>")
    assert await page.evaluate("window.pwned === undefined")
    assert await page.locator("main script").count() == 0


async def test_every_page_fits_a_phone(page: Page, server: Server) -> None:
    payment = authorized_payment(server, "1234.56", metadata={"order": "#1001"})
    await page.set_viewport_size(PHONE)
    await sign_in(page)
    paths = [
        "/dashboard",
        "/dashboard/payments",
        f"/dashboard/collections/{payment['payment_collection_id']}",
        "/dashboard/webhooks",
        "/dashboard/endpoints",
        "/dashboard/api-keys",
        "/dashboard/refund-reasons",
        "/dashboard/regions",
    ]
    for path in paths:
        await page.goto(path)
        await expect(page.locator("main h1").first).to_be_visible()
        await no_horizontal_overflow(page)
    await page.goto(f"/dashboard/collections/{payment['payment_collection_id']}")
    await shot(page, "phone-payment")


# -- the other pages ----------------------------------------------------------------------------
async def test_overview_webhooks_endpoints_reasons_and_regions(page: Page, server: Server) -> None:
    payment = authorized_payment(server, "75")
    with api(server) as client:
        assert client.post(
            f"/admin/payments/{payment['id']}/capture", json={"amount": 50}, headers=ADMIN
        ).is_success
    await sign_in(page)
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await expect(page.locator(".chart-block")).to_contain_text("$75.00")
    await expect(page.locator(".chart-block")).to_contain_text("$50.00")
    await expect(page.locator("svg.chart rect").first).to_be_attached()
    # A partial capture leaves the collection authorized until it is captured in full.
    await expect(page.locator(".status-counts")).to_contain_text("authorized 1")
    await shot(page, "overview")

    await page.goto("/dashboard/endpoints")
    await page.get_by_label("URL").fill("http://127.0.0.1:9/paymod-events")
    await page.get_by_role("button", name="Add endpoint").click()
    secret = (await page.locator("[data-secret]").inner_text()).strip()
    assert secret.startswith("whsec_")
    await page.goto("/dashboard/endpoints")
    await expect(page.locator("[data-secret]")).to_have_count(0)
    await expect(page.get_by_text("http://127.0.0.1:9/paymod-events")).to_be_visible()
    await shot(page, "endpoints")

    await page.goto("/dashboard/refund-reasons")
    await page.get_by_label("Label").fill("Late delivery")
    await page.get_by_label("Code").fill("late_delivery")
    await page.get_by_role("button", name="Add reason").click()
    await expect(page.get_by_role("cell", name="late_delivery")).to_be_visible()

    await page.goto("/dashboard/regions")
    await expect(page.get_by_text("reg_e2e")).to_be_visible()
    await page.get_by_label("Region").fill("reg_eu")
    await page.get_by_label("Provider").select_option(TESTING)
    await page.get_by_role("button", name="Enable").click()
    with api(server) as client:
        linked = client.get("/admin/regions/reg_eu/payment-providers", headers=ADMIN)
        assert [p["id"] for p in json_of(linked)["payment_providers"]] == [TESTING]

    await page.goto("/dashboard/webhooks?status=failed")
    await expect(page.get_by_text("No events failed.")).to_be_visible()
    await shot(page, "webhooks")


async def test_docs_work_offline(page: Page, server: Server) -> None:
    # The context refuses every request that is not to the server (see conftest): no CDN.
    await page.goto("/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("paymod")
    await expect(page.get_by_text("/admin/payments/{id}/capture").first).to_be_visible()
