import t from 'tap'
import { base36, decodeEnvelope, encodeEnvelope, ENVELOPE_FORMAT, type Envelope } from '../../../lib/cache/entry.js'

const envelope = (over: Partial<Envelope> = {}): Envelope => ({
  format: ENVELOPE_FORMAT,
  value: { id: 1, name: 'a\nb' },
  createdAt: 1_765_000_000_123,
  expiresAt: 1_765_000_060_123,
  staleUntil: 1_765_000_120_123,
  generation: '7',
  tags: {},
  schemaHash: 'h-_1',
  ...over
})

t.test('an envelope reads back as written', async (t) => {
  const tags = Object.assign(Object.create(null) as Record<string, string>, { users: '3', __proto__: '9' })
  for (const written of [envelope(), envelope({ tags, schemaHash: undefined, generation: '' }), envelope({ value: null, createdAt: 0 })]) {
    const read = decodeEnvelope(encodeEnvelope(written))
    t.same(read, written)
    t.equal(Object.getPrototypeOf(read?.tags), null, 'tags have no prototype')
  }
})

t.test('what is not an envelope is not an entry', async (t) => {
  const text = encodeEnvelope(envelope())
  t.equal(decodeEnvelope('1' + text.slice(1)), undefined, 'another format')
  t.equal(decodeEnvelope(text.slice(0, text.indexOf('\n', 20))), undefined, 'a header cut short')
  t.equal(decodeEnvelope(text.slice(0, -1)), undefined, 'value JSON cut short')
  t.equal(decodeEnvelope(text.replace(/^2\n([^\n]*)\n[^\n]*\n/, '2\n$1\n\n')), undefined, 'no expiry')
  t.equal(decodeEnvelope(text.replace(/^2\n([^\n]*)\n([^\n]*)\n[^\n]*\n/, '2\n$1\n$2\n%\n')), undefined, 'a grace expiry that is no number')
})

t.test('base36 reads as parseInt(text, 36) does', async (t) => {
  for (const text of ['0', 'z', 'Z', 'zz', '1a2b3c', 'miqrpy4r', '-1f', '12.5', '7x!', '', '-', '.5', Number.MAX_SAFE_INTEGER.toString(36)]) {
    t.ok(Object.is(base36(`\n${text}\n`, 1, text.length + 1), parseInt(text, 36)), JSON.stringify(text))
  }
})
