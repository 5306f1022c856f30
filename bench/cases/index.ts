// Every case of issue 10, in its order. A case whose feature is not in the tree throws
// CaseUnavailableError and is listed as not run, instead of measuring something else under its name.
import type { Settings } from '../harness.js'
import type { CaseResult } from '../results.js'
import { batch } from './batch.js'
import { cacheHttp } from './cache-http.js'
import { compression } from './compression.js'
import { costGrowth } from './cost-growth.js'
import { health } from './health.js'
import { hotKey } from './hot-key.js'
import { rateLimit } from './rate-limit.js'
import { rateLimitPolicies } from './rate-limit-policies.js'
import { redisRead } from './redis-read.js'
import { routeCache } from './route-cache.js'
import { session } from './session.js'
import { stampedeCase } from './stampede.js'
import { suiteOverhead } from './suite-overhead.js'

export interface BenchCase {
  id: number
  title: string
  run: (settings: Settings) => Promise<CaseResult>
}

export const cases: BenchCase[] = [
  { id: 1, title: 'Route cache hit vs raw route', run: routeCache },
  { id: 2, title: 'getOrSet hit from Redis (memory tier off)', run: redisRead },
  { id: 3, title: 'getOrSet hot key, memory + Redis tiers', run: hotKey },
  { id: 4, title: 'getOrSetMany of 100 keys', run: batch },
  { id: 5, title: 'Stampede across 4 instances', run: stampedeCase },
  { id: 6, title: 'Rate-limited route', run: rateLimit },
  { id: 7, title: 'Session-authenticated read route', run: session },
  { id: 8, title: 'Health routes under load, Redis up and frozen', run: health },
  { id: 9, title: 'Cost growth with keys in Redis; memory-tier size', run: costGrowth },
  { id: 10, title: 'The suite on a plain route vs raw Fastify', run: suiteOverhead },
  { id: 11, title: 'Cache hits per request over HTTP', run: cacheHttp },
  { id: 12, title: 'Two rate-limit policies on a route vs one', run: rateLimitPolicies },
  { id: 13, title: 'Cache hit cost with compression on, 1 KB and 64 KB values', run: compression }
]
