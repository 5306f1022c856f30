// The load generator's own process, forked once by bench/http.ts. A load generator in the server's
// process shares its one event loop, its CPU time and its garbage collector: it took most of the
// process's CPU, so an HTTP case measured autocannon more than the server, and the ratios swung
// between rounds with whatever else the process did. Here, as a load generator on another machine
// would, it has a core of its own and the server is what limits the rate.
// Protocol: a message { id, url, headers, duration, connections } runs autocannon and answers
// { id, result } with the counts bench/http.ts reads, or { id, error }.
import autocannon from 'autocannon'

export interface LoadJob {
  id: number
  url: string
  headers: Record<string, string>
  /** Seconds. */
  duration: number
  connections: number
  vary?: Vary
}

/**
 * Requests that differ, taken in turn by every connection: `count` of them, with `{i}` in the URL's path
 * replaced by 0 … count-1 (keys read round-robin), and/or a distinct X-Forwarded-For per request
 * (`count` client addresses behind a trusted proxy).
 */
export interface Vary {
  count: number
  forwardedFor?: boolean
}

export interface LoadResult {
  total: number
  /** Seconds. */
  duration: number
  p99: number
  errors: number
  timeouts: number
  non2xx: number
  '2xx': number
  '3xx': number
  '4xx': number
  '5xx': number
}

export type LoadReply = { id: number, result: LoadResult } | { id: number, error: string }

const reply = (message: LoadReply): void => { process.send?.(message) }

process.on('message', (job: LoadJob) => {
  autocannon({
    url: job.url,
    headers: job.headers,
    duration: job.duration,
    connections: job.connections,
    timeout: 5,
    ...(job.vary === undefined ? {} : { requests: requestsOf(job.url, job.vary) })
  }).then((result) => {
    reply({
      id: job.id,
      result: {
        total: result.requests.total,
        duration: result.duration,
        p99: result.latency.p99,
        errors: result.errors,
        timeouts: result.timeouts,
        non2xx: result.non2xx,
        '2xx': result['2xx'],
        '3xx': result['3xx'],
        '4xx': result['4xx'],
        '5xx': result['5xx']
      }
    })
  }, (err: unknown) => { reply({ id: job.id, error: (err as Error).message }) })
})
/**
 * One request template whose setupRequest takes the next index from a counter shared by every
 * connection (autocannon runs them all in this process). A list of requests would be walked by each
 * connection from index 0 in step with the others, so requests in flight together would name the
 * same key or client: a cache's flight or a limiter's per-turn merge would answer them as one.
 */
function requestsOf (url: string, vary: Vary): autocannon.Request[] {
  const { pathname, search } = new URL(url)
  const path = decodeURIComponent(pathname) + search
  let next = 0
  return [{
    method: 'GET',
    setupRequest: (request) => {
      const i = next++ % vary.count
      request.path = path.replaceAll('{i}', String(i))
      if (vary.forwardedFor === true) request.headers = { ...request.headers, 'x-forwarded-for': `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` }
      return request
    }
  }]
}

// The bench ends with process.exit(); the channel closing is this process's signal to end too.
process.on('disconnect', () => process.exit())
