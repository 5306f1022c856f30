// Process metrics (CPU, memory, event loop, GC) describe the process, not an app, and prom-client's
// collectors install observers that are never removed. So they are collected once per process, in a
// registry of their own, and each app's registry lists the same metric objects.
import { collectDefaultMetrics, Registry } from 'prom-client'

let processRegistry: Registry | undefined

export function addProcessMetrics (registry: Registry): void {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
    // prom-client also exports nodejs_active_{handles,requests,resources}_total as gauges, which
    // promtool rejects (a _total suffix promises a counter); the same series by type remain.
    for (const { name, type } of processRegistry.getMetricsAsArray()) {
      if (name.endsWith('_total') && String(type) !== 'counter') processRegistry.removeSingleMetric(name)
    }
  }
  for (const { name } of processRegistry.getMetricsAsArray()) {
    const metric = processRegistry.getSingleMetric(name)
    if (metric !== undefined) registry.registerMetric(metric)
  }
}
