import t from 'tap'
import { readFile } from 'node:fs/promises'
import { parse } from 'yaml'
import { SuiteMetrics } from '../../lib/metrics/suite-metrics.js'
import { families, promtool } from './prom.js'

const ALERTS = 'monitoring/alerts.yml'
const DASHBOARD = 'monitoring/grafana-dashboard.json'

/** Every family the suite can expose: all sources present. */
async function exposedFamilies (): Promise<Set<string>> {
  const metrics = new SuiteMetrics({
    sources: {
      redisState: () => ({ status: 'connected', mode: 'standalone', latencyMs: 1, reconnects: 0, since: Date.now() }),
      cacheStats: () => undefined,
      httpCacheStats: () => undefined,
      rateLimitStats: () => undefined,
      sessionStats: () => undefined,
      pubsubStats: () => undefined
    }
  })
  const names = new Set<string>()
  for (const name of families(await metrics.metrics())) {
    names.add(name)
    for (const suffix of ['_bucket', '_count', '_sum']) names.add(name + suffix)
  }
  return names
}

/** Metric names an expression selects (every expression here uses `name{…}` selectors). */
function selected (expr: string): string[] {
  return [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{/g)].map((m) => m[1] ?? '')
}

t.test('promtool check rules accepts the alert rules', async (t) => {
  const result = promtool(['check', 'rules', ALERTS])
  t.equal(result.status, 0, result.output)
  t.match(result.output, /SUCCESS: 12 rules found/)
})

t.test('promtool test rules: each alert fires when it should and not before', async (t) => {
  const result = promtool(['test', 'rules', 'monitoring/alerts.test.yml'])
  t.equal(result.status, 0, result.output)
})

t.test('the required alerts exist', async (t) => {
  const doc = parse(await readFile(ALERTS, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string, for?: string }> }> }
  const rules = doc.groups.flatMap((group) => group.rules)
  const byName = new Map(rules.map((rule) => [rule.alert, rule]))
  t.equal(byName.get('RedisDown')?.for, '1m', 'Redis down for a minute')
  for (const name of ['CacheHitRatioLow', 'RateLimit429Spike', 'SessionErrors']) t.ok(byName.has(name), name)
})

t.test('alerts and dashboard only use series the suite exposes', async (t) => {
  const exposed = await exposedFamilies()
  const defaults = /^(process_|nodejs_)/
  const doc = parse(await readFile(ALERTS, 'utf8')) as { groups: Array<{ rules: Array<{ alert: string, expr: string }> }> }
  for (const rule of doc.groups.flatMap((group) => group.rules)) {
    for (const name of selected(rule.expr)) t.ok(exposed.has(name), `${rule.alert}: ${name}`)
  }
  const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Array<{ title: string, targets?: Array<{ expr: string }> }> }
  let count = 0
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) {
      count++
      for (const name of selected(target.expr)) t.ok(exposed.has(name) || defaults.test(name), `${panel.title}: ${name}`)
    }
  }
  t.ok(count > 30, `${count} dashboard queries`)
})
