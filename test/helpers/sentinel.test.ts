import t from 'tap'
import { trackedPids } from './cleanup.js'
import { useSentinelGroup } from './fixtures.js'
import { parseInfo } from './redis-cli.js'
import { waitFor } from './wait.js'

t.test('a sentinel group fails over to the replica when the master is SIGKILLed', async (t) => {
  const group = await useSentinelGroup(t, { password: 'sentinel test pw' })
  t.equal(group.name, 'mymaster')
  t.equal(group.sentinels.length, 3)
  t.same(group.sentinelAddresses, group.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })))
  t.same(await group.getMasterAddress(), { host: '127.0.0.1', port: group.master.port })
  t.equal(parseInfo(await group.replica.cli('INFO', 'replication')).get('role'), 'slave')
  await group.master.cli('SET', 'before-failover', '1')

  const killedAt = Date.now()
  await group.master.kill()
  const promoted = await waitFor(async () => {
    const address = await group.getMasterAddress()
    return address.port === group.replica.port && address
  }, { what: 'the sentinels to promote the replica', timeoutMs: 20_000, intervalMs: 100 })
  const failoverMs = Date.now() - killedAt
  t.equal(promoted.port, group.replica.port)
  // Usually 2-3 s; a split vote among the sentinels costs one retry after 2 × failover-timeout.
  t.ok(failoverMs < 15_000, `failover took ${failoverMs} ms`)
  await waitFor(async () => parseInfo(await group.replica.cli('INFO', 'replication')).get('role') === 'master',
    { what: 'the replica to report role:master' })
  t.equal(await group.replica.cli('GET', 'before-failover'), '1', 'the replicated data is there')
})

t.test('no server is left running', async (t) => {
  t.same(trackedPids(), [])
})
