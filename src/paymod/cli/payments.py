"""`paymod payments`: list, show, capture and refund payments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from paymod.cli.base import DatabaseUrl, JsonOutput, PlainUsage, group, on_module, read_settings
from paymod.cli.output import dumps, escape, filters, print_table, say, table, when
from paymod.domain.statuses import PaymentStatus

if TYPE_CHECKING:
    from decimal import Decimal

    from paymod.services.dto import PaymentDTO
    from paymod.services.payment_module import PaymentModule

payments_app = group("Inspect and act on payments.")

PaymentId = Annotated[str, typer.Argument(metavar="PAYMENT_ID", help="the payment's id (pay_...)")]


def payment_status(payment: PaymentDTO) -> PaymentStatus:
    """One word for where a payment stands, by the domain's rule (the one the database stores)."""
    from paymod.domain.rules import payment_status as derive
    from paymod.domain.rules import total

    return derive(
        canceled=payment.canceled_at is not None,
        fully_captured=payment.captured_at is not None,
        captured=total(c.amount for c in payment.captures or []),
        refunded=total(r.amount for r in payment.refunds or []),
    )


def money(amount: Decimal, currency_code: str) -> str:
    """An amount at its currency's precision: `10.00` and `2.50` USD, `1000` JPY, `1.500` KWD.

    An amount with more significant digits than its currency has keeps them (nothing is hidden).
    """
    from decimal import Decimal

    from paymod.domain.money import currency_precision, exact_text

    places = currency_precision(currency_code)
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        return exact_text(amount)
    return format(amount.quantize(Decimal(1).scaleb(-places)), "f")


def _amount(value: str | None, option: str) -> Decimal | None:
    from decimal import Decimal, InvalidOperation

    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise typer.BadParameter(f"{value!r} is not an amount", param_hint=option) from None


def _payment_document(payment: PaymentDTO) -> dict[str, Any]:
    return {**payment.model_dump(mode="python"), "status": payment_status(payment).value}


# A refund's reason comes with it, in the table and in --json.
_DETAIL = {"relations": ["captures", "refunds", "refunds.refund_reason"]}


@payments_app.command("list", cls=PlainUsage)
def list_payments(
    status: Annotated[PaymentStatus | None, typer.Option(help="only payments in this state")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="created at or after (UTC unless a zone is given)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many")] = 50,
    json: JsonOutput = False,
    database_url: DatabaseUrl = None,
) -> None:
    """List payments, newest first."""
    from paymod.domain.rules import total

    settings = read_settings(database_url)
    wanted: dict[str, Any] = {}
    if since is not None:
        moment = since if since.tzinfo else since.replace(tzinfo=UTC)
        wanted["created_at"] = {"$gte": moment}
    if status is PaymentStatus.CANCELED:
        wanted["canceled_at"] = {"$ne": None}

    async def work(module: PaymentModule) -> list[PaymentDTO]:
        found: list[PaymentDTO] = []
        offset = 0
        # The status is derived from captures and refunds, so it is filtered here, page by page.
        while len(found) < limit:
            page = await module.list_payments(
                wanted,
                {"skip": offset, "take": 200, "order": {"created_at": "DESC"}, **_DETAIL},
            )
            found.extend(p for p in page if status is None or payment_status(p) is status)
            if len(page) < 200:
                break
            offset += 200
        return found[:limit]

    payments = on_module(settings, work)
    if json:
        print(dumps({"payments": [_payment_document(p) for p in payments]}))
        return
    rows = table("id", "status", "amount", "captured", "refunded", "provider", "created")
    for p in payments:
        rows.add_row(
            p.id,
            payment_status(p).value,
            f"{money(p.amount, p.currency_code)} {p.currency_code}",
            money(total(c.amount for c in p.captures or []), p.currency_code),
            money(total(r.amount for r in p.refunds or []), p.currency_code),
            p.provider_id,
            when(p.created_at),
        )
    print_table(rows, f"no payments{filters(status=status.value if status else None, since=since)}")


def _show(payment: PaymentDTO, json: bool) -> None:
    if json:
        print(dumps({"payment": _payment_document(payment)}))
        return
    currency = payment.currency_code
    say(f"[bold]{payment.id}[/bold]  {payment_status(payment).value}")
    say(f"  amount      {money(payment.amount, currency)} {currency}")
    say(f"  provider    {payment.provider_id}")
    say(f"  collection  {payment.payment_collection_id}")
    say(f"  session     {payment.payment_session_id}")
    say(f"  created     {when(payment.created_at)}")
    if payment.captured_at:
        say(f"  captured at {when(payment.captured_at)}")
    if payment.canceled_at:
        say(f"  canceled at {when(payment.canceled_at)}")
    for capture in payment.captures or []:
        say(f"  capture  {capture.id}  {money(capture.amount, currency)}  {when(capture.created_at)}")
    for refund in payment.refunds or []:
        reason = escape(refund.refund_reason.code) if refund.refund_reason else ""
        note = escape(refund.note or "")
        say(f"  refund   {refund.id}  {money(refund.amount, currency)}  {reason}  {note}".rstrip())


@payments_app.command("show", cls=PlainUsage)
def show_payment(id: PaymentId, json: JsonOutput = False, database_url: DatabaseUrl = None) -> None:
    """Show a payment with its captures and refunds."""
    settings = read_settings(database_url)

    async def work(module: PaymentModule) -> PaymentDTO:
        return await module.retrieve_payment(id, _DETAIL)

    _show(on_module(settings, work), json)


@payments_app.command("capture", cls=PlainUsage)
def capture_payment(
    id: PaymentId,
    amount: Annotated[str | None, typer.Option(help="default: what remains uncaptured")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Capture a payment (all that remains, or --amount)."""
    settings = read_settings(database_url)
    value = _amount(amount, "--amount")

    async def work(module: PaymentModule) -> PaymentDTO:
        await module.capture_payment({"payment_id": id, "amount": value, "captured_by": "cli"})
        return await module.retrieve_payment(id, _DETAIL)

    _show(on_module(settings, work), False)


@payments_app.command("refund", cls=PlainUsage)
def refund_payment(
    id: PaymentId,
    amount: Annotated[str | None, typer.Option(help="default: what remains refundable")] = None,
    reason: Annotated[str | None, typer.Option(help="refund reason id (refr_...) or code")] = None,
    note: Annotated[str | None, typer.Option(help="a note kept with the refund")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Refund a captured payment (all that remains refundable, or --amount)."""
    settings = read_settings(database_url)
    value = _amount(amount, "--amount")

    async def work(module: PaymentModule) -> PaymentDTO:
        reason_id = None
        if reason is not None:
            found = await module.list_refund_reasons({"$or": [{"id": reason}, {"code": reason}]})
            if not found:
                raise typer.BadParameter(
                    f"no refund reason with id or code {reason!r}", param_hint="--reason"
                )
            reason_id = found[0].id
        await module.refund_payment(
            {
                "payment_id": id,
                "amount": value,
                "refund_reason_id": reason_id,
                "note": note,
                "created_by": "cli",
            }
        )
        return await module.retrieve_payment(id, _DETAIL)

    _show(on_module(settings, work), False)
