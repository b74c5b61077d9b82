// paymod's benchmark flow, run by Medusa's own Payment Module; prints one JSON line on stdout.
//
// A flow: create a collection of 5000 usd -> create a session on pp_system_default -> authorize it ->
// capture 5000 -> refund 2000 (the flow of `python -m benchmarks.flow`, with Medusa's method names).
// In order, in this one process:
//   1. start the module (boot_ms);
//   2. empty the payment tables, so a reused database starts like a fresh one (RESET=0 skips it);
//   3. one flow, then its collection read back and checked (amounts, statuses, one of each record);
//   4. SQL of 5 untimed flows, counted from knex's `query` events;
//   5. sequential: WARMUP flows, then N flows one at a time;
//   6. concurrent: CONC_WARMUP flows, then CONC_N flows, CONCURRENCY of them in flight at all times,
//      all on the module's one connection pool.
// The line has the fields of `python -m benchmarks.flow`'s lines, so both are read the same way.
//
// Settings (environment): DATABASE_URL (required; the database must be migrated, see migrate.mjs),
// N (500), WARMUP (50), CONC_N (N), CONC_WARMUP (64), CONCURRENCY (16), PHASES
// ("sequential,concurrent"), RESET (1), PG_POOL_MIN (2), PG_POOL_MAX (10).
import os from "node:os"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { databaseUrl, maskedUrl, pool, startPaymentModule } from "./payment-module.mjs"

const require = createRequire(import.meta.url)
const { Client } = require("@medusajs/framework/pg")

const setting = (name, fallback) =>
  process.env[name] === undefined || process.env[name] === "" ? fallback : parseInt(process.env[name], 10)
const N = setting("N", 500)
const WARMUP = setting("WARMUP", 50)
const CONC_N = setting("CONC_N", N)
const CONC_WARMUP = setting("CONC_WARMUP", 64)
const CONCURRENCY = setting("CONCURRENCY", 16)
const RESET = setting("RESET", 1)
const PHASES = (process.env.PHASES || "sequential,concurrent").split(",")
const DATABASE_URL = databaseUrl()

// Medusa's method -> the operation's name in paymod's output (benchmarks/common.py OPS).
const OPS = {
  createPaymentCollections: "create_payment_collections",
  createPaymentSession: "create_payment_session",
  authorizePaymentSession: "authorize_payment_session",
  capturePayment: "capture_payment",
  refundPayment: "refund_payment",
}

const r3 = (x) => (x === null || x === undefined ? null : Math.round(x * 1000) / 1000)

// Nearest rank, as benchmarks/common.py computes it.
function percentile(sorted, p) {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index]
}

function median(values) {
  const s = [...values].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

// -- peak RSS: the kernel's high-water mark, and our own samples in case it is not reported ---------
let sampledRss = 0
setInterval(() => {
  sampledRss = Math.max(sampledRss, process.memoryUsage().rss)
}, 50).unref()

// -- CPU of the PostgreSQL backends serving this database, from /proc (Linux; best effort) ----------
// USER_HZ is 100 on every Linux this runs on; Node has no sysconf to ask.
const CLOCK_TICKS = 100

function processCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return ((parseInt(fields[11], 10) + parseInt(fields[12], 10)) * 1000) / CLOCK_TICKS
  } catch {
    return null
  }
}

// Sampled every 0.5 s over a connection of its own (not one of the module's pool), as the Python
// bench does: backends that appear during a phase count from zero, their set-up is part of the work.
class BackendCpu {
  constructor(url) {
    this.url = url
    this.first = new Map()
    this.last = new Map()
  }
  async sample(initial = false) {
    const { rows } = await this.client.query(
      "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    for (const { pid } of rows) {
      const value = processCpuMs(pid)
      if (value === null) continue
      if (!this.first.has(pid)) this.first.set(pid, initial ? value : 0)
      this.last.set(pid, value)
    }
  }
  async start() {
    this.client = new Client({ connectionString: this.url })
    await this.client.connect()
    await this.sample(true)
    this.timer = setInterval(() => this.sample().catch(() => {}), 500)
  }
  async stop() {
    clearInterval(this.timer)
    await this.sample()
    await this.client.end()
    if (!this.last.size) return null
    let total = 0
    for (const [pid, value] of this.last) total += value - this.first.get(pid)
    return total
  }
}

// -- the flow ----------------------------------------------------------------------------------------
const SESSION = { provider_id: "pp_system_default", amount: 5000, currency_code: "usd", data: {} }

// What a flow does around each operation: nothing, time it, or attribute its SQL to it.
const untimed = { op: (_, call) => call() }

function timing(timings) {
  return {
    async op(method, call) {
      const start = performance.now()
      const result = await call()
      timings[OPS[method]].push(performance.now() - start)
      return result
    },
  }
}

async function flow(service, recorder) {
  const collection = await recorder.op("createPaymentCollections", () =>
    service.createPaymentCollections({ currency_code: "usd", amount: 5000 })
  )
  const session = await recorder.op("createPaymentSession", () =>
    service.createPaymentSession(collection.id, SESSION)
  )
  const payment = await recorder.op("authorizePaymentSession", () =>
    service.authorizePaymentSession(session.id, {})
  )
  await recorder.op("capturePayment", () =>
    service.capturePayment({ payment_id: payment.id, amount: 5000 })
  )
  await recorder.op("refundPayment", () =>
    service.refundPayment({ payment_id: payment.id, amount: 2000 })
  )
  return { collectionId: collection.id }
}

async function checkFlow(service) {
  const { collectionId } = await flow(service, untimed)
  const col = await service.retrievePaymentCollection(collectionId, {
    relations: ["payment_sessions", "payments.captures", "payments.refunds"],
  })
  const sessions = col.payment_sessions ?? []
  const payments = col.payments ?? []
  const ok =
    Number(col.amount) === 5000 &&
    Number(col.authorized_amount) === 5000 &&
    Number(col.captured_amount) === 5000 &&
    Number(col.refunded_amount) === 2000 &&
    col.status === "completed" &&
    sessions.length === 1 &&
    sessions[0].status === "authorized" &&
    payments.length === 1 &&
    (payments[0].captures ?? []).length === 1 &&
    (payments[0].refunds ?? []).length === 1 &&
    Number(payments[0].refunds[0].amount) === 2000
  if (!ok) console.error("flow check failed:", JSON.stringify(col))
  return { ok, final_collection_status: String(col.status) }
}

// -- SQL per operation: every statement knex sends, transaction control included ---------------------
const CONTROL = /^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b/i

async function countSql(service, connection, flows = 5) {
  const counts = Object.fromEntries(
    Object.values(OPS).map((op) => [op, { data: 0, control: 0, begins: 0 }])
  )
  // Flows run one at a time here, so every statement belongs to the operation in progress.
  let current = null
  const onQuery = (query) => {
    if (current === null) return
    const sql = String(query.sql ?? "")
    if (CONTROL.test(sql)) {
      counts[current].control++
      if (/^\s*BEGIN\b/i.test(sql)) counts[current].begins++
    } else {
      counts[current].data++
    }
  }
  const attributing = {
    async op(method, call) {
      current = OPS[method]
      try {
        return await call()
      } finally {
        current = null
      }
    },
  }
  connection.on("query", onQuery)
  try {
    for (let i = 0; i < flows; i++) await flow(service, attributing)
  } finally {
    connection.removeListener("query", onQuery)
  }
  const perOp = {}
  for (const [op, c] of Object.entries(counts)) {
    perOp[op] = {
      statements: r3((c.data + c.control) / flows),
      data_statements: r3(c.data / flows),
      transactions: r3(c.begins / flows),
    }
  }
  const total = (field) => r3(Object.values(perOp).reduce((sum, v) => sum + v[field], 0))
  return {
    sql_statements_per_flow: total("statements"),
    sql_data_statements_per_flow: total("data_statements"),
    transactions_per_flow: total("transactions"),
    sql_per_op: perOp,
  }
}

// -- a phase: warm-up, then n flows with `concurrency` in flight; errors are counted, not thrown -------
async function runPhase(service, n, warmup, concurrency) {
  const errors = []
  async function run(count, recorder, latencies) {
    let remaining = count
    async function worker() {
      while (remaining > 0) {
        remaining--
        const start = performance.now()
        try {
          await flow(service, recorder)
        } catch (error) {
          errors.push(`${error?.constructor?.name ?? "Error"}: ${error?.message ?? error}`)
          continue
        }
        if (latencies) latencies.push(performance.now() - start)
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
  }

  await run(warmup, untimed, null)
  const warmupErrors = errors.length
  errors.length = 0
  const timings = Object.fromEntries(Object.values(OPS).map((op) => [op, []]))
  const latencies = []
  const backends = new BackendCpu(DATABASE_URL)
  await backends.start()
  const loadBefore = os.loadavg()[0]
  const cpuBefore = process.cpuUsage()
  const start = performance.now()
  await run(n, timing(timings), latencies)
  const wall = (performance.now() - start) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  const backendMs = await backends.stop()
  const done = latencies.length
  const sorted = [...latencies].sort((a, b) => a - b)
  const at = (p) => (done ? r3(percentile(sorted, p)) : null)
  return {
    concurrency,
    stopped_early: false,
    warmup,
    n,
    flows: done,
    errors: errors.length,
    warmup_errors: warmupErrors,
    first_errors: [...new Set(errors)].sort().slice(0, 3),
    wall_s: r3(wall),
    flows_per_s: wall ? r3(done / wall) : 0,
    latency_ms: {
      p50: at(50),
      p90: at(90),
      p99: at(99),
      mean: done ? r3(latencies.reduce((a, b) => a + b, 0) / done) : null,
      max: done ? r3(sorted[done - 1]) : null,
    },
    ops_median_ms: Object.fromEntries(
      Object.entries(timings)
        .filter(([, values]) => values.length)
        .map(([op, values]) => [op, r3(median(values))])
    ),
    cpu: {
      node_cpu_ms_per_flow: r3((cpu.user + cpu.system) / 1000 / Math.max(done, 1)),
      pg_backend_cpu_ms_per_flow: backendMs === null ? null : r3(backendMs / Math.max(done, 1)),
    },
    loadavg1_before: r3(loadBefore),
    loadavg1_after: r3(os.loadavg()[0]),
  }
}

// -- main -------------------------------------------------------------------------------------------------
const version = (name) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url))).version

const bootStart = performance.now()
const { service, connection, stop } = await startPaymentModule(DATABASE_URL)
const bootMs = performance.now() - bootStart
if (RESET) {
  await connection.raw(
    "TRUNCATE TABLE refund, capture, payment, payment_session, " +
      "payment_collection_payment_providers, payment_collection CASCADE"
  )
}

const result = {
  bench: "medusa-module",
  target: "medusa",
  database: "postgresql",
  date: new Date().toISOString(),
  node: process.version,
  packages: Object.fromEntries(
    ["@medusajs/payment", "@medusajs/framework", "@medusajs/modules-sdk", "@medusajs/utils"].map((p) => [
      p,
      version(p),
    ])
  ),
  db: maskedUrl(DATABASE_URL),
  pool,
  boot_ms: r3(bootMs),
  loadavg1_at_start: r3(os.loadavg()[0]),
}
result.check = await checkFlow(service)
result.sql_counted = "in process (knex query events)"
Object.assign(result, await countSql(service, connection))
if (PHASES.includes("sequential")) {
  console.error("[medusa] phase-start sequential")
  result.sequential = await runPhase(service, N, WARMUP, 1)
}
if (PHASES.includes("concurrent")) {
  console.error("[medusa] phase-start concurrent")
  result.concurrent = await runPhase(service, CONC_N, CONC_WARMUP, CONCURRENCY)
}
result.peak_rss_mb = r3(Math.max(process.resourceUsage().maxRSS * 1024, sampledRss) / 1024 / 1024)
result.rss_of = "the Node process (module + harness), maxRSS"
result.loadavg1_at_end = r3(os.loadavg()[0])

await stop()
console.log(JSON.stringify(result))
process.exit(result.check.ok ? 0 : 2)
