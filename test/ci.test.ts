// Issue 28 item 8: .ci/run tests what we support (engines: node >=22) and the servers users run:
// Node 24 with Debian's Redis 7.0 (the full `npm test`), Node 22 with Valkey 8 (the Redis-backed tests),
// both Node versions from the npm packages, never the machine's own Node. The script is checked as
// text: running it is CI itself.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { parse } from 'yaml'

const script = readFileSync(new URL('../.ci/run', import.meta.url), 'utf8')
const commands = script.split('\n').filter((line) => !line.trim().startsWith('#')).join('\n')

t.test('two runs: Node 24 + Redis 7.0 runs npm test; Node 22 + Valkey 8 runs the Redis-backed tests', async (t) => {
  t.match(commands, /for major in 24 22; do\n\s+npm install --prefix "\$prefix\/\$major" .*"\$node_pkg@\$major"/, 'Node 24 and 22 from the npm packages')
  t.match(commands, /env PATH="\$node24_bin:\$PATH" npm test/, 'run 1: npm test on Node 24 (Debian redis-server on PATH)')
  t.match(commands, /find test\/lib test\/plugins test\/routes test\/faults test\/helpers test\/adopt test\/vendor -name '\*\.test\.ts' \| grep -Ev "\$client_side"/,
    'run 2: the test files of lib, plugins, routes, faults, helpers, adopt and vendor (never a helper child process), but the client-side outage ones')
  t.match(commands, /env PATH="\$node22_bin:\$PATH" FRS_TEST_REDIS_SERVER="\$VALKEY_SERVER" \\\n\s+node_modules\/\.bin\/tap --jobs=3 --disable-coverage "\$\{redis_backed\[@\]\}"/,
    'run 2 on Node 22 with every server Valkey, three files at a time, measuring no coverage (a subset of the files)')
  t.ok(commands.indexOf('node_modules/.bin/tap build') > 0 && commands.indexOf('node_modules/.bin/tap build') < commands.indexOf('\nrun '),
    'tap\'s Test class is built for .taprc\'s plugins before the first run, not during it')
  t.notMatch(commands, /^run "node-\$\(node --version\)"/m, 'no run on the machine\'s Node (20 here, below engines)')
  t.equal((commands.match(/^run /gm) ?? []).length, 2, 'exactly two runs')
})

t.test('run 2 leaves out only files about the client\'s side of an outage, each of which exists', async (t) => {
  const pattern = /client_side='(.+)'/.exec(commands)?.[1]
  t.ok(pattern, 'the left-out files are one pattern')
  const names = [...new Set([...(pattern ?? '').matchAll(/[a-z-]+(?:\|[a-z-]+)*/g)].flatMap((m) => m[0].split('|')))]
  for (const server of ['sentinel', 'cluster', 'failover', 'security', 'durability', 'eviction', 'redis-full', 'tls']) {
    t.notOk(names.some((name) => name.includes(server)), `${server} tests stay in run 2`)
  }
  const { readdirSync } = await import('node:fs')
  const files = ['faults', 'plugins', 'helpers'].flatMap((dir) => readdirSync(new URL(`./${dir}/`, import.meta.url)).map((f) => `test/${dir}/${f}`))
  const left = files.filter((file) => new RegExp(pattern ?? '^$').test(file))
  t.equal(left.length, 10, `ten files left out of run 2: ${left.join(', ')}`)
})

t.test('each run names its Node and server; one summary line over all; a missing Valkey is a failure, not a silent pass', async (t) => {
  t.match(commands, /echo "run 1: Node \$\("\$node24_bin\/node" --version\), \$\(server_version redis-server\)"/)
  t.match(commands, /echo "run 2: Node \$\("\$node22_bin\/node" --version\), \$\(server_version "\$VALKEY_SERVER"\)"/)
  t.match(commands, /echo "\$\{total_pass\} passed, \$\{total_fail\} failed"\nexit "\$status"\n?$/)
  t.match(commands, /export VALKEY_SERVER=.*valkey-8\.0\.1\/bin\/valkey-server/)
  t.match(commands, /export REDIS74_SERVER=.*redis-7\.4\.1\/bin\/redis-server/)
  t.match(commands, /no Valkey 8 .*counted as failed"\n\s+total_fail=\$\(\( total_fail \+ 1 \)\)/)
})

// Issue 32: coverage on and gated. .taprc holds the gate (tap's own lines/branches/functions/statements
// keys); npm test's tap fails below it; .ci/run prints each figure against it after run 1 and fails a
// run that passed with coverage below it or without a summary.
t.test('run 1 measures coverage and is gated on .taprc\'s figures; the gate line follows it', async (t) => {
  const taprc = parse(readFileSync(new URL('../.taprc', import.meta.url), 'utf8')) as Record<string, unknown>
  t.not(taprc['disable-coverage'], true, 'coverage is on')
  for (const figure of ['lines', 'branches', 'functions', 'statements']) {
    t.type(taprc[figure], 'number', `.taprc states a ${figure} gate`)
    t.ok((taprc[figure] as number) > 0 && (taprc[figure] as number) <= 100, `${figure}: a percentage`)
  }
  t.equal(taprc['coverage-map'], 'test/coverage-map.ts', 'coverage of the sources only')
  const { default: map, SOURCES } = await import('./coverage-map.js')
  t.same(SOURCES, ['lib/**/*.ts', 'plugins/**/*.ts', 'routes/**/*.ts', 'index.ts', 'server.ts'])
  t.equal(map('test/lib/cache/redis.test.ts'), SOURCES, 'a test file measures the sources')
  t.equal(map('test/bench/quick.test.ts'), null, 'the bench smoke tests measure nothing')
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }
  t.match(pkg.scripts.test, /&& tap --no-allow-incomplete-coverage$/, 'npm test fails below the gate (.taprc allows a partial run)')
  t.match(commands, /rm -f "\$coverage_summary"\nrun "node-.*\n\s+env PATH="\$node24_bin:\$PATH" npm test\ncoverage_gate\n/,
    'the gate reads the summary run 1 wrote, never one left from an earlier run')
  t.match(commands, /coverage_summary=\.tap\/report\/coverage-summary\.json/)
  t.ok((taprc['coverage-report'] as string[]).includes('json-summary'), 'tap writes the summary the gate reads')
  t.match(commands, /echo "coverage: \$\{verdict#\* \}"/, 'one line with the figures')
  t.match(commands, /if \[ "\$last_exit" -eq 0 \]; then total_fail=\$\(\( total_fail \+ 1 \)\); status=1; fi/, 'a passing run below the gate fails CI')
})
