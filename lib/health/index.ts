// Health checks with cached results, for the health routes (routes/health.ts).
export * from './checks.js'
