import t from 'tap'
import { trackedPids } from './cleanup.js'
import { useCluster } from './fixtures.js'
import { parseInfo, runRedisCli } from './redis-cli.js'
import { waitFor } from './wait.js'

t.test('a cluster comes up with every slot served, and fails over fast', async (t) => {
  const cluster = await useCluster(t)
  t.equal(cluster.nodes.length, 6)
  t.same(cluster.startupNodes, cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })))
  for (const node of cluster.nodes) {
    const info = parseInfo(await node.cli('CLUSTER', 'INFO'))
    t.equal(info.get('cluster_state'), 'ok', `node ${node.port} is ok`)
    t.equal(info.get('cluster_slots_assigned'), '16384')
  }
  const masters = await cluster.masters()
  const replicas = await cluster.replicas()
  t.equal(masters.length, 3)
  t.equal(replicas.length, 3)

  // -c follows MOVED redirections: keys land on different masters.
  const first = cluster.nodes[0]
  if (first === undefined) throw new Error('no node')
  for (const key of ['alpha', 'beta', 'gamma']) {
    t.equal(await runRedisCli(first.endpoint, ['-c', 'SET', key, `${key}-value`]), 'OK')
    t.equal(await runRedisCli(first.endpoint, ['-c', 'GET', key]), `${key}-value`)
  }

  const victim = masters[0]
  if (victim === undefined) throw new Error('no master')
  const killedAt = Date.now()
  await victim.kill()
  await waitFor(async () => {
    const current = await cluster.masters()
    return current.length === 3 && !current.includes(victim)
  }, { what: 'a replica to replace the killed master', timeoutMs: 20_000, intervalMs: 200 })
  const survivor = cluster.nodes.find((n) => n !== victim)
  if (survivor === undefined) throw new Error('no survivor')
  await waitFor(async () => parseInfo(await survivor.cli('CLUSTER', 'INFO')).get('cluster_state') === 'ok',
    { what: 'the cluster to be ok again', timeoutMs: 20_000, intervalMs: 200 })
  t.pass(`failover took ${Date.now() - killedAt} ms`)
})

t.test('no server is left running', async (t) => {
  t.same(trackedPids(), [])
})
