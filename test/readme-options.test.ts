// Issue 32: the README's "Registration options" tables list exactly the options each plugin's
// TypeScript type has (inherited ones included), so the docs cannot drift from the types. Names only:
// types and defaults are prose, read by people.
import { readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import ts from 'typescript'

const ROOT = path.resolve(import.meta.dirname, '..')
const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8')

// Each documented type and the module that declares it.
const TYPES: Record<string, string> = {
  RedisSuiteOptions: 'index.ts',
  ConfigPluginOptions: 'plugins/config.ts',
  RedisPluginOptions: 'plugins/redis.ts',
  CachePluginOptions: 'plugins/cache.ts',
  HttpCachePluginOptions: 'plugins/http-cache.ts',
  SessionPluginOptions: 'plugins/session.ts',
  RateLimitPluginOptions: 'plugins/rate-limit.ts',
  PubSubPluginOptions: 'plugins/pubsub.ts',
  PresencePluginOptions: 'plugins/presence.ts',
  LocksPluginOptions: 'plugins/locks.ts',
  MetricsPluginOptions: 'plugins/metrics.ts'
}

/** Option names of each type, as the compiler sees them. */
function typeOptions (): Map<string, string[]> {
  const configFile = ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), (file) => ts.sys.readFile(file))
  const parsed = ts.parseJsonConfigFileContent(configFile.config, ts.sys, ROOT)
  const files = [...new Set(Object.values(TYPES))].map((file) => path.join(ROOT, file))
  const program = ts.createProgram(files, { ...parsed.options, noEmit: true })
  const checker = program.getTypeChecker()
  const found = new Map<string, string[]>()
  for (const [name, file] of Object.entries(TYPES)) {
    const source = program.getSourceFile(path.join(ROOT, file))
    const moduleSymbol = source === undefined ? undefined : checker.getSymbolAtLocation(source)
    const symbol = moduleSymbol === undefined ? undefined : checker.getExportsOfModule(moduleSymbol).find((s) => s.name === name)
    if (symbol === undefined) continue
    const declared = (symbol.flags & ts.SymbolFlags.Alias) !== 0 ? checker.getAliasedSymbol(symbol) : symbol
    found.set(name, checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(declared)).map((p) => p.name).sort())
  }
  return found
}

/** The README's tables: each bold heading names its types in backticks, its table's first column the options. */
function readmeOptions (): Map<string, string[]> {
  const start = readme.indexOf('### Registration options')
  const section = readme.slice(start, readme.indexOf('\n## ', start))
  const found = new Map<string, string[]>()
  for (const block of section.split(/\n(?=\*\*`)/).slice(1)) {
    const heading = block.split('\n')[0] ?? ''
    const types = [...(/\(([^)]*)\)/.exec(heading)?.[1] ?? '').matchAll(/`(\w+Options)`/g)].map((m) => m[1]!)
    const options = [...block.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]!).sort()
    for (const type of types) found.set(type, options)
  }
  return found
}

t.test('every plugin option type has a README table listing exactly its options', async (t) => {
  const types = typeOptions()
  const tables = readmeOptions()
  t.same([...types.keys()].sort(), Object.keys(TYPES).sort(), 'every type was found by the compiler')
  t.same([...tables.keys()].sort(), Object.keys(TYPES).sort(), 'every type has a table')
  const configOptions = types.get('ConfigPluginOptions') ?? []
  for (const [name, options] of types) {
    // redisSuite's table lists its own options; the config plugin's are documented once, in their table.
    const expected = name === 'RedisSuiteOptions' ? options.filter((o) => !configOptions.includes(o)) : options
    t.same(tables.get(name), expected, `${name}: the README table's options are the type's`)
  }
})
