// A real Prometheus (Debian's prometheus package) scrapes the demo app over loopback, with the bearer
// token, and the series come back through its query API; it also loads the alert rules and runs every
// dashboard query, so a PromQL mistake in either fails here.
import t from 'tap'
import path from 'node:path'
import { readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { useRedis, waitFor } from '../helpers/index.js'
import { buildTestApp } from '../helper.js'
import { startPrometheus } from './prom.js'

t.test('Prometheus scrapes the app and reads the series back', async (t) => {
  const started = Date.now()
  const redis = await useRedis(t)
  const token = 'prometheus-scrape-token'
  const { app } = await buildTestApp(t, { REDIS_URL: redis.url, METRICS_TOKEN: token })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  for (let i = 0; i < 5; i++) await fetch(`http://127.0.0.1:${port}/`)
  await app.cache.getOrSet('k', async () => 1)
  await app.cache.get('k')

  const prometheus = await startPrometheus({ targets: [`127.0.0.1:${port}`], bearerToken: token }, path.resolve('monitoring/alerts.yml'))
  t.teardown(() => prometheus.stop())

  const value = async (expr: string): Promise<number | undefined> => {
    const [first] = await prometheus.query(expr)
    return first === undefined ? undefined : Number(first.value[1])
  }
  const requests = await waitFor(async () => {
    const v = await value('sum(http_request_duration_seconds_count{job="app",route="/",method="GET",status_code="200"})')
    return v !== undefined && v >= 5 ? v : undefined
  }, { what: 'the request counter in Prometheus', timeoutMs: 15_000, intervalMs: 250 }).catch((err: Error) => {
    throw new Error(`${err.message}\n${prometheus.output()}`)
  })
  t.equal(requests, 5, 'the five requests, read back through /api/v1/query')
  t.equal(await value('up{job="app"}'), 1, 'scrape with the bearer token succeeds')
  t.equal(await value('redis_client_state{job="app",state="connected"}'), 1)
  t.ok((await value('sum(cache_hits_total{job="app"})') ?? 0) >= 1)
  t.ok((await value('sum(redis_client_command_duration_seconds_count{job="app",command="ping"})') ?? 0) >= 1)

  // Rules load and evaluate without error.
  const rules = await waitFor(async () => {
    const body = await (await fetch(`${prometheus.url}/api/v1/rules`)).json() as { data: { groups: Array<{ rules: Array<{ name: string, health: string, lastError?: string }> }> } }
    const all = body.data.groups.flatMap((group) => group.rules)
    return all.length > 0 && all.every((rule) => rule.health === 'ok') ? all : undefined
  }, { what: 'alert rules evaluated', timeoutMs: 10_000, intervalMs: 250 })
  t.equal(rules.length, 12, 'all alert rules loaded and evaluated healthy')

  // Every dashboard query parses and runs; the core panels have data.
  const dashboard = JSON.parse(await readFile('monitoring/grafana-dashboard.json', 'utf8')) as { panels: Array<{ title: string, targets?: Array<{ expr: string }> }> }
  await waitFor(async () => (await value('sum(rate(http_request_duration_seconds_count{job="app"}[10s]))') ?? 0) > 0, { what: 'two scrapes for rate()', timeoutMs: 10_000, intervalMs: 250 })
  const withData = new Set<string>()
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) {
      const expr = target.expr.replaceAll('$__rate_interval', '10s').replaceAll('$job', '.*').replaceAll('$instance', '.*')
      const result = await prometheus.query(expr)
      if (result.length > 0) withData.add(panel.title)
    }
  }
  for (const title of ['Redis (worst instance)', 'Requests/s', 'Requests by route', 'Latency by route (p50, p95, p99)', 'PING latency', 'Commands/s by command', 'Hits, misses and stale by tier', 'Decisions by outcome', 'CPU', 'Memory']) {
    t.ok(withData.has(title), `dashboard panel "${title}" has data`)
  }
  t.equal(await value('min(2 * redis_client_state{state="connected"} + ignoring (state) redis_client_state{state="degraded"})'), 2, 'Redis panel shows connected')

  const took = Date.now() - started
  t.ok(took < 30_000, `bounded: ${took} ms`)
  t.comment(`Prometheus round trip in ${took} ms`)
})
