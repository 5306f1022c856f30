// Start-up diagnostics read the server's settings with CONFIG GET, and with INFO where CONFIG is
// denied (managed Redis, the suite's least-privilege ACL user): the eviction warning must not depend
// on a command the recommended user may not run.
import t from 'tap'
import { Redis } from 'ioredis'
import { serverVersion, useRedis } from '../../helpers/index.js'
import { readServerSettings, settingWarnings } from '../../../lib/redis/diagnostics.js'
import { suiteAclRule } from '../../../lib/redis/acl.js'

t.test('CONFIG GET denied by the suite ACL rule: INFO still reveals allkeys-lru', async (t) => {
  const redis = await useRedis(t, {
    maxmemory: '16mb',
    maxmemoryPolicy: 'allkeys-lru',
    acl: [{ username: 'suite', password: 'suite-password-0123', rules: suiteAclRule('app:', { serverVersion: serverVersion() }) }]
  })
  const client = new Redis({ port: redis.port, host: '127.0.0.1', username: 'suite', password: 'suite-password-0123', lazyConnect: true })
  t.teardown(() => client.disconnect())
  await client.connect()
  await t.rejects(client.call('CONFIG', 'GET', 'maxmemory-policy'), /NOPERM/, 'the suite user may not run CONFIG GET')
  const settings = await readServerSettings(client)
  t.same(settings, { maxmemoryPolicy: 'allkeys-lru', appendonly: 'no' }, 'policy and AOF switch from INFO; save points unknown')
  t.match(settingWarnings(settings ?? {}), [/maxmemory-policy is allkeys-lru/])
  t.equal(settingWarnings(settings ?? {}).length, 1, 'no persistence warning on a guess: the save points are unknown')
})

t.test('CONFIG GET allowed: the save points are read too', async (t) => {
  const redis = await useRedis(t, { maxmemoryPolicy: 'noeviction' })
  const client = new Redis({ port: redis.port, host: '127.0.0.1', lazyConnect: true })
  t.teardown(() => client.disconnect())
  await client.connect()
  const settings = await readServerSettings(client)
  t.equal(settings?.maxmemoryPolicy, 'noeviction')
  t.equal(settings?.save, '', 'the harness starts redis-server without save points')
  t.match(settingWarnings(settings ?? {}), [/persistence is off/])
})
