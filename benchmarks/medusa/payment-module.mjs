// Medusa's Payment Module (@medusajs/payment) on its own: no Medusa server, no HTTP, no other module.
//
// It is started the way Medusa's own integration tests start a single module (@medusajs/test-utils:
// `moduleIntegrationTestRunner` -> `MedusaApp`):
//   - one knex connection to PostgreSQL, shared by the module (PG_CONNECTION), with the pool a Medusa
//     server uses by default (min 2, max 10; PG_POOL_MIN / PG_POOL_MAX change it);
//   - an event bus that drops events (what test-utils injects), so emitting costs next to nothing;
//   - a logger that only prints warnings and errors.
// `onApplicationStart()` runs the module's loaders, which register the system provider
// `pp_system_default` in the `payment_provider` table.
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"

const require = createRequire(import.meta.url)
// Packages are resolved from this folder's node_modules, whatever the caller's working directory.
const HERE = fileURLToPath(new URL(".", import.meta.url))

process.env.MEDUSA_DISABLE_TELEMETRY ??= "true"
process.env.LOG_LEVEL ??= "error"

const { ContainerRegistrationKeys, Modules, ModulesSdkUtils } = require("@medusajs/framework/utils")
const { MedusaApp, MedusaAppMigrateUp, MedusaModule } = require("@medusajs/framework/modules-sdk")

export function databaseUrl() {
  const url = process.env.DATABASE_URL
  if (!url) {
    console.error("DATABASE_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/medusa_bench)")
    process.exit(64)
  }
  return url
}

/** The URL with its password masked, for output. */
export function maskedUrl(url) {
  return url.replace(/:[^:@/]*@/, ":***@")
}

export const pool = {
  min: parseInt(process.env.PG_POOL_MIN ?? "2", 10),
  max: parseInt(process.env.PG_POOL_MAX ?? "10", 10),
}

const droppedEvents = {
  async emit() {},
  subscribe() {
    return this
  },
  unsubscribe() {
    return this
  },
  async releaseGroupedEvents() {},
  async clearGroupedEvents() {},
}

const quiet = () => {}
const logger = {
  info: quiet,
  debug: quiet,
  log: quiet,
  progress: quiet,
  success: quiet,
  failure: quiet,
  setLogLevel: quiet,
  unsetLogLevel: quiet,
  activity: () => "",
  shouldLog: () => false,
  warn: (...args) => console.error(...args),
  error: (...args) => console.error(...args),
}

// MedusaApp takes the link module out of the configuration it is given, so every call gets its own.
function appOptions(url) {
  const database = { clientUrl: url, schema: "public" }
  const connection = ModulesSdkUtils.createPgConnection({
    ...database,
    driverOptions: { connection: { ssl: false } },
    pool,
  })
  const modules = { [Modules.PAYMENT]: { resolve: "@medusajs/payment", options: {} } }
  return {
    connection,
    options: {
      // A Medusa server finds the link module inside @medusajs/medusa; the standalone package is the
      // same code without the rest of the server. With the payment module alone no link is defined.
      modulesConfig: { ...modules, [Modules.LINK]: require("@medusajs/link-modules") },
      sharedResourcesConfig: { database },
      injectedDependencies: {
        [ContainerRegistrationKeys.PG_CONNECTION]: connection,
        [Modules.EVENT_BUS]: droppedEvents,
        [ContainerRegistrationKeys.LOGGER]: logger,
        [ContainerRegistrationKeys.CONFIG_MODULE]: { modules, projectConfig: {}, featureFlags: {} },
      },
      cwd: HERE,
    },
  }
}

/** Applies the module's own migrations (those shipped in @medusajs/payment/dist/migrations). */
export async function migratePaymentModule(url) {
  const { connection, options } = appOptions(url)
  try {
    await MedusaAppMigrateUp(options)
  } finally {
    await connection.destroy()
  }
}

/** Starts the module; returns its service, the shared knex connection and a stop function. */
export async function startPaymentModule(url) {
  const { connection, options } = appOptions(url)
  const app = await MedusaApp(options)
  await app.onApplicationStart()
  return {
    service: app.modules[Modules.PAYMENT],
    connection,
    async stop() {
      await app.onApplicationPrepareShutdown()
      await app.onApplicationShutdown()
      await connection.destroy()
      MedusaModule.clearInstances()
    },
  }
}
