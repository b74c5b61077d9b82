// Applies @medusajs/payment's own migrations to the database at DATABASE_URL.
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/medusa_bench node migrate.mjs
import { databaseUrl, maskedUrl, migratePaymentModule } from "./payment-module.mjs"

const url = databaseUrl()
const start = performance.now()
await migratePaymentModule(url)
console.error(
  `payment module migrated: ${maskedUrl(url)} in ${(performance.now() - start).toFixed(0)} ms`
)
process.exit(0)
