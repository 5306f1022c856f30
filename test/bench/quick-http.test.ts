// CI smoke for `npm run bench`, the route cache, rate-limit and session cases.
import t from 'tap'
import { smoke } from './smoke.js'

t.test('route cache, rate-limit and session bench cases run and produce finite numbers', (t) => smoke(t, [1, 6, 7], [1, 6, 7]))
