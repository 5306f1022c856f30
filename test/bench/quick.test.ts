// CI smoke for `npm run bench`, cache and health cases (the HTTP feature cases are in
// quick-http.test.ts, so each file stays well inside the tap timeout).
import t from 'tap'
import { smoke } from './smoke.js'

t.test('cache and health bench cases run and produce finite numbers', (t) => smoke(t, [2, 3, 4, 5, 8, 9], [2, 3, 4, 5, 8, 9]))
