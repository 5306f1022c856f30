// CI smoke for `npm run bench`: the HTTP cases, whose servers run in processes of their own.
import t from 'tap'
import { smoke } from './smoke.js'

t.test('the HTTP bench cases (route cache, rate limits, sessions, the suite on a plain route, cache hits per request) run and produce finite numbers', (t) => smoke(t, [1, 6, 7, 10, 11], [1, 6, 7, 10, 11]))
