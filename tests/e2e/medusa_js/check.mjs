// Medusa's JS SDK as a client of `paymod serve`: a checkout, then the admin calls a Medusa admin
// makes on payments, refund reasons and providers. Prints one JSON document for the Python test.
// Usage: node check.mjs BASE_URL SECRET_KEY PUBLISHABLE_KEY PROVIDER_ID
import Medusa from "@medusajs/js-sdk"

const [baseUrl, apiKey, publishableKey, providerId] = process.argv.slice(2)
const admin = new Medusa({ baseUrl, apiKey })
const shop = new Medusa({ baseUrl, publishableKey })

async function refusal(call) {
  try {
    await call()
    return null
  } catch (error) {
    return { status: error.status, message: error.message }
  }
}

const { payment_collection: collection } = await admin.client.fetch("/admin/payment-collections", {
  method: "POST",
  body: { amount: 49.9, currency_code: "EUR" },
})
await shop.client.fetch(`/store/payment-collections/${collection.id}/payment-sessions`, {
  method: "POST",
  body: { provider_id: providerId },
})
const checkout = await shop.client.fetch(`/store/payment-collections/${collection.id}/authorize`, {
  method: "POST",
  headers: { "Idempotency-Key": `sdk-${collection.id}` },
})
const paymentId = checkout.payment.id

const { refund_reason: reason } = await admin.admin.refundReason.create({
  label: "Damaged in transit",
  code: "damaged_in_transit",
})
const listedReasons = await admin.admin.refundReason.list({ limit: 50 })
const listed = await admin.admin.payment.list({ payment_collection_id: [collection.id] })
const retrieved = await admin.admin.payment.retrieve(paymentId, { fields: "id,amount,currency_code,*captures" })
const captured = await admin.admin.payment.capture(paymentId, { amount: 30 })
const capturedRest = await admin.admin.payment.capture(paymentId, {})
const refunded = await admin.admin.payment.refund(paymentId, {
  amount: 10.5,
  refund_reason_id: reason.id,
  note: "box arrived crushed",
})
const refundedByCode = await admin.admin.payment.refund(paymentId, {
  amount: 1,
  refund_reason_id: "damaged_in_transit",
})
const providers = await admin.admin.payment.listPaymentProviders({ limit: 10 })

const wrongKey = new Medusa({ baseUrl, apiKey: "sk_not_a_key" })
const publishableAsSecret = new Medusa({ baseUrl, apiKey: publishableKey })

console.log(
  JSON.stringify({
    collection,
    payment_id: paymentId,
    reason,
    listed_reasons: listedReasons,
    listed,
    retrieved,
    captured,
    captured_rest: capturedRest,
    refunded,
    refunded_by_code: refundedByCode,
    providers,
    wrong_key: await refusal(() => wrongKey.admin.payment.list()),
    publishable_as_secret: await refusal(() => publishableAsSecret.admin.refundReason.list()),
  }),
)
