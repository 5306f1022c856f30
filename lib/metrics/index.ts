export { SuiteMetrics, UNMATCHED_ROUTE, type MetricSources, type SuiteMetricsOptions } from './suite-metrics.js'
export { traceRedisCommands, classify as classifyCommandError, type CommandErrorKind, type CommandObserver } from './redis-commands.js'
export { CumulativeCounter, BoundedLabel } from './cumulative.js'
export { bearerTokenMatches } from './bearer.js'
