// REDIS_FAILOVER_WAIT on Cluster (issue 19): a master SIGKILLed under 50 sign-ins/s + 100 session
// reads/s through HTTP. The replica takes over after cluster-node-timeout (1 s here) + election; the
// commands issued meanwhile (the dead master's slots, and every slot while the cluster answers
// CLUSTERDOWN) keep being redirected until then, for up to the budget from the loss. With a budget
// above the gap nothing fails; with the default 2 s only the part of the gap beyond it may.
// The planned case (CLUSTER FAILOVER, 0 failed requests) is in cluster-sessions.test.ts.
import t from 'tap'
import { request } from 'undici'
import type { Cluster } from 'ioredis'
import { useCluster, sleep, waitFor } from '../helpers/index.js'
import { cookiePair, startFaultApp, waitUntil } from '../helpers/fault-app.js'
import { describeSummary, runLoad, summarize, type LoadRequest } from '../helpers/load.js'
import { analyzeWrites, lostSignIns } from '../helpers/writes.js'

const READERS = 40

for (const budget of ['4s', '2s']) {
  const budgetMs = Number.parseInt(budget, 10) * 1_000
  t.test(`Cluster master SIGKILLed under 50 sign-ins/s + 100 reads/s, REDIS_FAILOVER_WAIT=${budget}`, async (t) => {
    const cluster = await useCluster(t)
    const { app, baseUrl, logs } = await startFaultApp(t, {
      REDIS_CLUSTER_NODES: cluster.startupNodes.map((a) => `${a.host}:${a.port}`).join(','),
      REDIS_FAILOVER_WAIT: budget,
      SESSION_SECRET: 'fault-suite-session-secret-0123456789abcdef'
    })
    t.equal(app.redisState.mode, 'cluster')
    // The ioredis internals the Cluster wait adjusts (an upgrade must not silently undo it).
    const cluster$ = app.redis as unknown as { options: { maxRedirections: number }, connectionPool?: { redisOptions?: { commandTimeout?: number } } }
    const usual = { maxRedirections: cluster$.options.maxRedirections, commandTimeout: cluster$.connectionPool?.redisOptions?.commandTimeout }
    t.same(usual, { maxRedirections: 8, commandTimeout: 1_000 }, 'the pool builds node clients from its own redisOptions')
    // The driver's errors (the 503 bodies do not carry them): each command's first send and its rejection.
    const commandErrors: Array<{ name: string, sentAt: number, failedAt: number, message: string }> = []
    const seen = new WeakSet<object>()
    const send = app.redis.sendCommand.bind(app.redis) as (...args: unknown[]) => unknown
    ;(app.redis as unknown as { sendCommand: (...args: unknown[]) => unknown }).sendCommand = (...args: unknown[]) => {
      const command = args[0] as { name: string, promise: Promise<unknown> }
      if (!seen.has(command)) {
        seen.add(command)
        const sentAt = Date.now()
        command.promise.catch((err: Error) => { commandErrors.push({ name: command.name, sentAt, failedAt: Date.now(), message: err.message }) })
      }
      return send(...args)
    }
    // Every node connection the pool dropped ('-node', what opens the wait), for the report.
    const nodeLosses: Array<{ at: number, node: string, role: string }> = []
    app.redis.on('-node', (node: { options: { host?: string, port?: number } }) => {
      const key = `${node.options.host ?? ''}:${node.options.port ?? ''}`
      const slots = (app.redis as unknown as Cluster).slots
      const role = slots.some((owners) => owners?.[0] === key) ? 'master' : slots.some((owners) => owners?.includes(key)) ? 'replica' : 'not in the slot map'
      nodeLosses.push({ at: Date.now(), node: key, role })
    })
    const readers: string[] = []
    for (let i = 0; i < READERS; i++) {
      const res = await request(`${baseUrl}/demo/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: `r${i}` }) })
      await res.body.dump()
      const pair = cookiePair(res.headers['set-cookie'])
      if (res.statusCode !== 200 || pair === undefined) throw new Error(`sign-in failed: ${res.statusCode}`)
      readers.push(pair)
    }
    await sleep(500) // replicas have the readers' sessions
    const [victim] = await cluster.masters()
    if (victim === undefined) throw new Error('no master')
    let killAt = 0
    let waitingSince = 0 // when the client noticed the loss and opened its wait
    const fault = (async () => {
      await sleep(2_000)
      killAt = Date.now()
      await victim.kill()
      await waitUntil(() => app.redisConnections.failoverWaitLeft() > 0, 5_000, 'the Cluster wait opens', 1)
      // The moment the wait opened (the client saw the loss), not when this poll noticed it (later on a busy
      // box); read what is left first, so the clock read after it can only put the opening late, never early.
      const left = app.redisConnections.failoverWaitLeft()
      waitingSince = Date.now() + left - budgetMs
    })()
    const run = await runLoad({
      baseUrl,
      rate: 150,
      durationMs: 10_000,
      next: (i): LoadRequest => i % 3 === 0
        ? { path: '/demo/login', method: 'POST', body: JSON.stringify({ userId: `k${i}` }), headers: { 'content-type': 'application/json' }, tag: 'write' }
        : { path: '/demo/me', headers: { cookie: readers[i % READERS] ?? '' }, tag: 'read' }
    })
    await fault
    const report = analyzeWrites(run, killAt)
    const failed = run.results.filter((r) => r.status !== 200)
    const lost = await lostSignIns(baseUrl, report.acknowledged, 'k')
    // Async replication: what the master acknowledged in its last moments may not have reached the replica.
    const settled = report.acknowledged.filter((r) => run.t0 + (r.endedAt ?? 0) < killAt - 1_000)
    const lostSettled = lost.filter((i) => settled.some((r) => r.i === i))
    const afterKill = run.results.filter((r) => run.t0 + r.startedAt >= killAt)
    const failedAt = failed.map((r) => run.t0 + r.startedAt - killAt)
    // Requests issued before the client saw the loss (their command on the dead master's connection:
    // outcome unknown). Their redirection count (8) and timeout (1 s) were fixed before the wait opened,
    // so they may fail: "Too many Cluster redirections" after 0.5–0.7 s, or "Command timed out".
    const inFlight = failed.filter((r) => run.t0 + r.startedAt < waitingSince)
    t.comment(describeSummary('sign-ins and reads', summarize(run.results)))
    t.comment(`REDIS_FAILOVER_WAIT=${budget}: wait opened ${waitingSince - killAt} ms after SIGKILL; ${failed.length} failed requests (${report.failed.length} sign-ins, ${inFlight.length} in flight at the kill)` +
      (failed.length === 0 ? '' : `, started ${Math.min(...failedAt)}..${Math.max(...failedAt)} ms after the kill`) +
      `; ${report.acknowledged.length} sign-ins acknowledged, ${lost.length} lost (${lostSignInsNote(lost.length, lostSettled.length)}); ` +
      `longest silence between acknowledged sign-ins ${report.longestSilenceMs} ms; slowest request after the kill ${Math.max(...afterKill.map((r) => r.latencyMs ?? 0))} ms`)
    const losses = nodeLosses.map((l) => `${l.at - killAt} ms ${l.node === `${victim.host}:${victim.port}` ? 'victim' : l.node} (${l.role})`)
    t.comment(`  node connections dropped (ms from the kill): ${losses.slice(0, 6).join(', ')}${losses.length > 6 ? `, … ${losses.length} in all` : ''}`)
    const byMessage = new Map<string, number[]>()
    for (const e of commandErrors.filter((e) => e.sentAt >= killAt - 1_000)) byMessage.set(`${e.name}: ${e.message}`, [...byMessage.get(`${e.name}: ${e.message}`) ?? [], e.sentAt - waitingSince])
    for (const [message, at] of byMessage) t.comment(`  driver error x${at.length} (sent ${Math.min(...at)}..${Math.max(...at)} ms from the wait's opening): ${message}`)
    for (const r of failed.slice(0, 8)) t.comment(`  failed ${r.tag} started ${run.t0 + r.startedAt - killAt} ms after the kill, answered in ${r.latencyMs ?? '-'} ms: ${r.status ?? r.error ?? ''} ${r.body.slice(0, 200)}`)
    t.equal(summarize(run.results).unfinished, 0, 'no request left unfinished')
    t.equal(app.redisConnections.failoverWaitLeft(), 0, 'the wait is over')
    t.same({ maxRedirections: cluster$.options.maxRedirections, commandTimeout: cluster$.connectionPool?.redisOptions?.commandTimeout }, usual,
      'the usual bounds are back: a later outage fails as fast as before')
    t.ok(failed.every((r) => r.status === 503 && r.headers['retry-after'] !== undefined), 'every failure is a 503 with Retry-After, never a 500')
    t.equal(lostSettled.length, 0, 'sign-ins acknowledged > 1 s before the kill survive')
    if (budget === '4s') {
      // The target (issue 19): with a budget above the gap, no request issued after the client saw the
      // loss fails. Those issued before (in flight at the kill: their command was on the dead master's
      // connection, outcome unknown) may, per the README policy; they are reported above.
      const afterLoss = failed.filter((r) => !inFlight.includes(r))
      for (const r of afterLoss.slice(0, 8)) t.comment(`  issued after the loss and failed: ${r.tag} started ${run.t0 + r.startedAt - waitingSince} ms after the wait opened: ${r.status ?? r.error ?? ''} ${r.body.slice(0, 200)}`)
      t.equal(afterLoss.length, 0, 'a budget above the gap: no request issued after the client saw the loss failed')
      // + the wait's 100 ms timeout tick and timer lateness on a loaded box.
      t.ok(failed.every((r) => (r.latencyMs ?? Infinity) <= 4_000 + 1_000 + 200), 'every failure answered within the budget + one command timeout')
    } else t.ok(logs().some((l) => /REDIS_FAILOVER_WAIT/.test(String(l.msg))) || failed.length === 0, 'failures only once the budget was spent')
  })
}

function lostSignInsNote (lost: number, settled: number): string {
  return lost === settled ? 'all acknowledged > 1 s before the kill' : `${settled} acknowledged > 1 s before the kill`
}

// RELIABILITY finding 4: the pool drops the connection of a replica that a slots refresh no longer
// lists (CLUSTER SLOTS leaves out a failed replica, or one not yet synced). That is no failover: it
// must not open the wait, or a master lost within the next budget finds it partly spent and gets no
// new one (requests issued after a master's SIGKILL timed out at the end of a wait opened 2.6 s before).
t.test('Cluster: a replica leaving the slot map opens no wait; a master lost after it gets the whole budget', async (t) => {
  const cluster = await useCluster(t)
  const { app } = await startFaultApp(t, {
    REDIS_CLUSTER_NODES: cluster.startupNodes.map((a) => `${a.host}:${a.port}`).join(','),
    REDIS_FAILOVER_WAIT: '4s'
  })
  const redis = app.redis as unknown as Cluster
  const dropped: number[] = []
  redis.on('-node', (node: { options: { port?: number } }) => { dropped.push(node.options.port ?? 0) })
  const [replica] = await cluster.replicas()
  if (replica === undefined) throw new Error('no replica')
  const itsMaster = Number(/master_port:(\d+)/.exec(await replica.cli('INFO', 'replication'))?.[1])
  const victim = (await cluster.masters()).find((m) => m.port !== itsMaster)
  if (victim === undefined) throw new Error('no master with a live replica')
  // CLUSTER SLOTS lists a replica only once it has replicated something: write, then wait for the pool to have it.
  await waitFor(async () => {
    await Promise.all(Array.from({ length: 30 }, (_, i) => app.redis.set(`warm:${i}`, '1')))
    redis.refreshSlotsCache()
    return redis.nodes('slave').some((node) => node.options.port === replica.port)
  }, { timeoutMs: 15_000, intervalMs: 100, what: 'the pool has a connection to the replica' })
  await replica.kill()
  // Marked failed after cluster-node-timeout, the replica leaves CLUSTER SLOTS; a refresh then drops it.
  await waitFor(() => {
    redis.refreshSlotsCache()
    return dropped.includes(replica.port)
  }, { timeoutMs: 15_000, intervalMs: 100, what: 'the pool drops the dead replica' })
  t.equal(app.redisConnections.failoverWaitLeft(), 0, 'a replica leaving the slot map opens no wait')
  await sleep(1_000)
  const killAt = Date.now()
  await victim.kill()
  await waitUntil(() => app.redisConnections.failoverWaitLeft() > 0, 5_000, 'the Cluster wait opens', 1)
  const left = app.redisConnections.failoverWaitLeft()
  const openedAt = Date.now() + left - 4_000
  t.ok(openedAt >= killAt, `the master's loss opens the wait (${openedAt - killAt} ms after the kill), with the whole budget`)
  // Commands on every master's slots for 3 s (the gap is ~2.3 s): none fails.
  const results: Array<Promise<{ ok: boolean, ms: number }>> = []
  for (const until = Date.now() + 3_000; Date.now() < until;) {
    for (let i = 0; i < 10; i++) results.push(settle(app.redis.set(`after-loss:${i}`, '1')))
    await sleep(50)
  }
  const settled = await Promise.all(results)
  const failed = settled.filter((r) => !r.ok)
  t.comment(`${failed.length} of ${settled.length} commands issued after the loss failed; slowest ${Math.max(...settled.map((r) => r.ms))} ms`)
  t.equal(failed.length, 0, 'no command issued after the loss fails')
})

t.test('Cluster: a master and its replica SIGKILLed (no failover possible): one budget of waiting, then fail fast, no new budget', async (t) => {
  const cluster = await useCluster(t)
  const { app, logs } = await startFaultApp(t, {
    REDIS_CLUSTER_NODES: cluster.startupNodes.map((a) => `${a.host}:${a.port}`).join(','),
    REDIS_FAILOVER_WAIT: '1s'
  })
  const [replica] = await cluster.replicas()
  if (replica === undefined) throw new Error('no replica')
  const masterPort = Number(/master_port:(\d+)/.exec(await replica.cli('INFO', 'replication'))?.[1])
  const master = cluster.nodes.find((n) => n.port === masterPort)
  if (master === undefined) throw new Error('the replica\'s master is not a node of this cluster')
  await Promise.all([replica.kill(), master.kill()])
  await waitUntil(() => app.redisConnections.failoverWaitLeft() > 0, 5_000, 'the Cluster wait opens')
  const inBudget = await Promise.all(Array.from({ length: 20 }, (_, i) => settle(app.redis.set(`gone:${i}`, '1'))))
  await waitUntil(() => app.redisConnections.failoverWaitLeft() === 0, 5_000, 'the budget runs out')
  // Keep commands coming for 3 s past the budget: their retries keep losing connections to the dead
  // nodes, which must not open a new wait.
  const later: Array<{ ok: boolean, ms: number }> = []
  let reopened = false
  const until = Date.now() + 3_000
  while (Date.now() < until) {
    const batch = await Promise.all(Array.from({ length: 20 }, (_, i) => settle(app.redis.set(`gone:${i}`, '1'))))
    later.push(...batch)
    if (app.redisConnections.failoverWaitLeft() > 0) reopened = true
  }
  const failedInBudget = inBudget.filter((r) => !r.ok)
  const failedLater = later.filter((r) => !r.ok)
  t.comment(`in the budget: ${failedInBudget.length} of ${inBudget.length} failed, slowest ${Math.max(...inBudget.map((r) => r.ms))} ms; ` +
    `after it: ${failedLater.length} of ${later.length} failed, slowest ${Math.max(...later.map((r) => r.ms))} ms`)
  t.ok(failedInBudget.length > 0, 'the commands of the budget fail once it is spent (some keys may live on live masters until CLUSTERDOWN)')
  t.equal(reopened, false, 'no new budget while the outage lasts')
  t.ok(failedLater.length > 0, 'past the budget, commands fail')
  t.ok(logs().some((l) => /REDIS_FAILOVER_WAIT spent/.test(String(l.msg))), 'one warning says the budget is spent')
})

async function settle (p: Promise<unknown>): Promise<{ ok: boolean, ms: number }> {
  const started = Date.now()
  try {
    await p
    return { ok: true, ms: Date.now() - started }
  } catch {
    return { ok: false, ms: Date.now() - started }
  }
}
