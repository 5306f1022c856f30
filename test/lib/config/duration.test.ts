import t from 'tap'
import { parseDuration, tryParseDuration } from '../../../lib/config/duration.js'

t.test('parses numbers as milliseconds and strings with units', async (t) => {
  t.equal(parseDuration(1500), 1500)
  t.equal(parseDuration('300ms'), 300)
  t.equal(parseDuration('30'), 30, 'a bare number string is milliseconds, never seconds')
  t.equal(parseDuration('5s'), 5_000)
  t.equal(parseDuration('5m'), 300_000)
  t.equal(parseDuration('2h'), 7_200_000)
  t.equal(parseDuration('7d'), 604_800_000)
  t.equal(parseDuration('1.5s'), 1_500)
  t.equal(parseDuration(' 1 M '), 60_000)
  t.equal(parseDuration('1 minute'), 60_000)
  t.equal(parseDuration('2 seconds'), 2_000)
  t.equal(parseDuration('7 days'), 604_800_000)
})

t.test('rejects what is not a duration', async (t) => {
  for (const bad of ['', 'abc', '5 minutes later', '1.2.3s', '-1s', '5y', Number.NaN, -1, Infinity]) {
    t.equal(tryParseDuration(bad), undefined, `rejects ${String(bad)}`)
  }
  t.throws(() => parseDuration('soon', 'REDIS_RETRY_DELAY'), /REDIS_RETRY_DELAY must be a duration/)
})
