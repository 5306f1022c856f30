// The package as users get it (issue 15 items 1, 2, 15): `npm pack` in a copy of the repo (prepack
// builds the library alone), its file list, then the tarball installed into a fixture app with an
// isolated (pnpm-like, `--install-strategy=linked`) layout, where the app sees only what it declares and
// the suite sees only its own dependencies. Strict tsc over that app checks that the published
// declarations bring the @fastify/session and @fastify/redis augmentations along, and that every ```ts
// block of README.md compiles. Offline: the dependencies come from the installed node_modules.
import t from 'tap'
import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, sep } from 'node:path'
import { promisify } from 'node:util'
import { extractTsBlocks, README_PREAMBLE } from './readme-blocks.js'

const run = promisify(execFile)
// Two TypeScript builds (prepack, then the fixture app): over .taprc's 120 s on a loaded machine.
t.setTimeout(300_000)
const ROOT = process.cwd()
const NODE_MODULES = realpathSync(join(ROOT, 'node_modules'))
const TSC = join(NODE_MODULES, 'typescript', 'bin', 'tsc')
interface PackageJson {
  name: string
  version: string
  license: string
  dependencies: Record<string, string>
  peerDependencies: Record<string, string>
  devDependencies: Record<string, string>
  exports: Record<string, string | Record<string, string>>
}
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as PackageJson
/** Documents packed beside the library, so every relative link of the README resolves in the package. */
const DOCS = /^(package\.json|README\.md|LICENSE|CHANGELOG\.md|ARCHITECTURE\.md|BENCHMARKS\.md|RELIABILITY\.md)$/

interface PackResult { filename: string, files: Array<{ path: string }> }

const work = mkdtempSync(join(tmpdir(), 'frs-package-'))
// FRS_KEEP_PACKAGE_FIXTURE=1 keeps the fixture app to run tsc in it by hand.
if (process.env.FRS_KEEP_PACKAGE_FIXTURE === undefined) t.teardown(() => rmSync(work, { recursive: true, force: true }))

/** npm prints lifecycle output before the JSON on stdout: parse from the last line that opens it. */
function packJson (stdout: string): PackResult {
  const start = stdout.lastIndexOf('\n[\n')
  return (JSON.parse(start === -1 ? stdout : stdout.slice(start + 1)) as PackResult[])[0] as PackResult
}

/** A copy of the repo without build output, so prepack starts clean, with the shared node_modules. */
function copyRepo (): string {
  const src = join(work, 'src')
  const skip = new Set(['node_modules', 'dist', '.git', '.tap'])
  cpSync(ROOT, src, { recursive: true, filter: (from) => !skip.has(relative(ROOT, from).split(sep)[0] ?? '') })
  symlinkSync(NODE_MODULES, join(src, 'node_modules'), 'dir')
  return src
}

function link (target: string, at: string): void {
  mkdirSync(dirname(at), { recursive: true })
  symlinkSync(target, at, 'dir')
}

const src = copyRepo()
// --dry-run still runs prepack (the build); the second call packs that build without running it again.
const dryRun = packJson((await run('npm', ['pack', '--dry-run', '--json'], { cwd: src, maxBuffer: 16 << 20 })).stdout)
const packed = packJson((await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: src, maxBuffer: 16 << 20 })).stdout)
const files = dryRun.files.map((file) => file.path).sort()

// All setup happens before the first subtest: tap ends the root test (and runs its teardown) once
// its queue drains, whatever top-level code still awaits.
/**
 * The fixture app: node_modules holds only what it declares (the suite's peers included, as npm and
 * pnpm install them); the suite holds only its dependencies and, as pnpm links them, the app's peers.
 */
const app = join(work, 'app')
const peers = Object.keys(pkg.peerDependencies ?? {})
// bullmq: the README shows it on a connection from app.redisConnections.create().
const direct = [...new Set(['fastify', 'typebox', '@fastify/type-provider-typebox', '@types/node', 'bullmq', 'close-with-grace', ...peers])]
const unpacked = join(work, 'unpacked')
mkdirSync(unpacked)
await run('tar', ['-xzf', join(work, packed.filename), '-C', unpacked])
const installed = join(app, 'node_modules', pkg.name)
mkdirSync(dirname(installed), { recursive: true })
renameSync(join(unpacked, 'package'), installed)
for (const dependency of [...Object.keys(pkg.dependencies), ...peers]) link(join(NODE_MODULES, dependency), join(installed, 'node_modules', dependency))
for (const dependency of direct) link(join(NODE_MODULES, dependency), join(app, 'node_modules', dependency))
writeFileSync(join(app, 'package.json'), JSON.stringify({
  name: 'fixture-app',
  private: true,
  type: 'module',
  dependencies: Object.fromEntries([[pkg.name, `file:../${packed.filename}`], ...direct.map((name) => [name, '*'])])
}))
writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
  compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
  include: ['src/**/*.ts']
}))
mkdirSync(join(app, 'src'))

t.test('the tarball holds the library only, with a LICENSE and usable source maps', async (t) => {
  t.same(packed.files.map((file) => file.path).sort(), files, 'the real pack matches the dry run')
  t.ok(files.includes('LICENSE'), 'LICENSE')
  t.match(readFileSync('LICENSE', 'utf8'), /^MIT License/, 'the LICENSE is the MIT text the package declares')
  t.equal(pkg.license, 'MIT')
  const library = /^dist\/(index|(lib|plugins)\/.+|routes\/(health|metrics))\.(js|d\.ts|js\.map)$/
  t.same(files.filter((file) => !DOCS.test(file) && !library.test(file)), [],
    'only the library and its documents: no demo server, demo routes, scripts, bench, tests or .ts sources')
  t.ok(files.includes('dist/index.js') && files.includes('dist/index.d.ts'), 'the suite and its declarations')
  const targets = Object.values(pkg.exports).flatMap((entry) => typeof entry === 'string' ? [entry] : Object.values(entry))
  t.same(targets.filter((target) => target !== './package.json' && !files.includes(target.slice(2))), [], 'every exports target is packed')
  const withoutSources = files.filter((file) => file.endsWith('.map')).filter((map) => {
    const { sources, sourcesContent } = JSON.parse(readFileSync(join(src, map), 'utf8')) as { sources: string[], sourcesContent?: unknown[] }
    return sourcesContent?.filter((content) => typeof content === 'string').length !== sources.length
  })
  t.same(withoutSources, [], 'every source map carries its sources')
  const scripts = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string>, engines: { node: string } }
  t.notOk('prepare' in scripts.scripts, 'no build on install (prepare)')
  t.match(scripts.scripts.prepack, /tsc -p tsconfig\.build\.json/, 'the build runs in prepack')
  t.equal(scripts.engines.node, '>=22', 'engines matches what cookie@2 (via @fastify/cookie) needs')
})

async function typeCheck (project: string): Promise<string> {
  try {
    await run(process.execPath, [TSC, '-p', join(app, project)], { cwd: app, maxBuffer: 16 << 20 })
    return ''
  } catch (err) {
    return String((err as { stdout?: string }).stdout ?? err)
  }
}

t.test('an app with the suite and its peers type-checks request.session, app.redis and every README block', async (t) => {
  t.equal(realpathSync(join(installed, 'node_modules', 'fastify')), realpathSync(join(app, 'node_modules', 'fastify')), 'the suite and the app share one fastify')
  writeFileSync(join(app, 'src', 'augmentations.ts'), `
import Fastify from 'fastify'
import redisSuite from 'fastify-redis-suite'

const app = Fastify()
await app.register(redisSuite, { env: { REDIS_URL: 'redis://127.0.0.1:6379' } })
const value: string | null = await app.redis.get('key')
app.get('/me', { config: { session: true, rateLimit: { max: 5, timeWindow: '1 minute' } } }, async (request) => {
  await request.session.regenerate()
  const id: string = request.session.sessionId
  return { id, value }
})
`)
  // A second, separate program: an app that imports only the plugin entry points gets the same types.
  mkdirSync(join(app, 'subpaths'))
  writeFileSync(join(app, 'subpaths', 'plugins.ts'), `
import Fastify from 'fastify'
import sessionPlugin from 'fastify-redis-suite/session'
import redisPlugin from 'fastify-redis-suite/redis'
import rateLimitPlugin from 'fastify-redis-suite/rate-limit'

const app = Fastify()
void [sessionPlugin, redisPlugin, rateLimitPlugin]
const value: string | null = await app.redis.get('key')
app.get('/me', { config: { session: true, rateLimit: false } }, async (request) => ({ id: request.session.sessionId, value }))
`)
  writeFileSync(join(app, 'tsconfig.subpaths.json'), JSON.stringify({ extends: './tsconfig.json', include: ['subpaths/*.ts'] }))
  const blocks = extractTsBlocks(readFileSync('README.md', 'utf8'))
  t.ok(blocks.length >= 10, `${blocks.length} ts blocks in README.md`)
  writeFileSync(join(app, 'src', 'readme-preamble.ts'), README_PREAMBLE)
  for (const block of blocks) writeFileSync(join(app, 'src', `readme-line-${block.line}.ts`), block.module)
  const [errors, subpathErrors] = await Promise.all([typeCheck('tsconfig.json'), typeCheck('tsconfig.subpaths.json')])
  // Report each error against its README line, so the failing block is easy to find.
  const readable = errors.replace(/src\/readme-line-(\d+)\.ts\((\d+),(\d+)\)/g, (_m, line: string, row: string, col: string) =>
    `README.md:${Number(line) + Number(row)}:${col}`)
  t.equal(readable, '', 'strict tsc over the fixture app')
  t.equal(subpathErrors, '', 'strict tsc over an app importing only plugin entry points')
})

t.test('package.json names the repository and takes what the app shares as peers; every README link is packed', async (t) => {
  const meta = JSON.parse(readFileSync('package.json', 'utf8')) as { repository?: { url?: string }, homepage?: string, bugs?: { url?: string } }
  t.match(meta.repository?.url, /^git\+https:\/\//, 'repository')
  t.match(meta.homepage, /^https:\/\//, 'homepage')
  t.match(meta.bugs?.url, /^https:\/\//, 'bugs')
  for (const shared of ['fastify', 'typebox', '@fastify/cookie', '@fastify/session', '@fastify/rate-limit', '@fastify/redis']) {
    t.ok(pkg.peerDependencies?.[shared] !== undefined && pkg.dependencies[shared] === undefined, `${shared}: a peer, not a dependency`)
    t.ok(pkg.devDependencies[shared] !== undefined, `${shared}: a devDependency for the suite's own tests`)
  }
  const readme = readFileSync('README.md', 'utf8')
  const relative = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] ?? '').filter((link) => !/^(https?:|#|mailto:)/.test(link))
  t.same(relative.filter((link) => !files.includes(link.split('#')[0] ?? '')), [], 'every relative link of README.md names a packed file')
  t.ok(files.includes('CHANGELOG.md'), 'CHANGELOG.md')
})

t.test('an app pinned to fastify 5.4.0 installs one fastify, type-checks every README block, and boots the suite', async (t) => {
  // A real npm install from the registry, as an adopter would run it: the peers come from the app.
  const old = join(work, 'old-app')
  mkdirSync(join(old, 'src'), { recursive: true })
  writeFileSync(join(old, 'package.json'), JSON.stringify({
    name: 'old-fastify-app',
    private: true,
    type: 'module',
    dependencies: {
      [pkg.name]: `file:../${packed.filename}`,
      fastify: '5.4.0',
      '@fastify/type-provider-typebox': pkg.devDependencies['@fastify/type-provider-typebox'],
      '@types/node': pkg.devDependencies['@types/node'],
      bullmq: pkg.devDependencies['bullmq']
    }
  }))
  await run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline'], { cwd: old, maxBuffer: 16 << 20 })
  const copies = (await run('find', ['.', '-path', '*/node_modules/fastify/package.json'], { cwd: old })).stdout.trim().split('\n')
  t.same(copies, ['./node_modules/fastify/package.json'], 'one fastify in the tree')
  t.equal((JSON.parse(readFileSync(join(old, 'node_modules', 'fastify', 'package.json'), 'utf8')) as { version: string }).version, '5.4.0')
  t.ok(readdirSync(join(old, 'node_modules', '@fastify')).includes('session'), 'npm installed the peers beside it')

  writeFileSync(join(old, 'tsconfig.json'), readFileSync(join(app, 'tsconfig.json')))
  writeFileSync(join(old, 'src', 'readme-preamble.ts'), README_PREAMBLE)
  const blocks = extractTsBlocks(readFileSync('README.md', 'utf8'))
  for (const block of blocks) writeFileSync(join(old, 'src', `readme-line-${block.line}.ts`), block.module)
  let errors = ''
  try {
    await run(process.execPath, [TSC, '-p', join(old, 'tsconfig.json')], { cwd: old, maxBuffer: 16 << 20 })
  } catch (err) {
    errors = String((err as { stdout?: string }).stdout ?? err).replace(/src\/readme-line-(\d+)\.ts\((\d+),(\d+)\)/g, (_m, line: string, row: string, col: string) =>
      `README.md:${Number(line) + Number(row)}:${col}`)
  }
  t.equal(errors, '', `strict tsc over the README's ${blocks.length} blocks against fastify 5.4.0`)

  writeFileSync(join(old, 'boot.mjs'), `
import Fastify from 'fastify'
import redisSuite from '${pkg.name}'
const app = Fastify()
await app.register(redisSuite, { env: { NODE_ENV: 'test' }, processEnv: false, dotenvPath: false })
const live = await app.inject('/health/live')
await app.cache.set('k', 1)
console.log(JSON.stringify({ version: app.version, live: live.statusCode, cached: await app.cache.get('k') }))
await app.close()
`)
  const booted = JSON.parse((await run(process.execPath, ['boot.mjs'], { cwd: old })).stdout.trim().split('\n').pop() ?? '{}') as unknown
  t.same(booted, { version: '5.4.0', live: 200, cached: 1 }, 'the suite runs on fastify 5.4.0 (in-process stores)')
})
