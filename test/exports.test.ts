// The package's exports map: the suite and each plugin resolve by name to built code (npm test builds first).
import t from 'tap'
import { readFileSync } from 'node:fs'

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { name: string, exports: Record<string, unknown> }

t.test('every exported entry point resolves and default-exports a Fastify plugin', async (t) => {
  const subpaths = Object.keys(pkg.exports).filter((key) => key !== './package.json')
  t.ok(subpaths.length >= 12, 'the suite and each plugin')
  for (const subpath of subpaths) {
    const specifier = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`
    const mod = await import(specifier) as { default?: unknown }
    t.type(mod.default, 'function', `${specifier} default-exports a plugin`)
  }
})

t.test('the package entry exports the error catalogue, `errors` (issue 32)', async (t) => {
  const mod = await import(pkg.name) as { errors?: Record<string, { code: string, class: unknown }> }
  t.type(mod.errors, 'object')
  t.ok(Object.entries(mod.errors ?? {}).every(([code, entry]) => code.startsWith('FRS_') && entry.code === code && typeof entry.class === 'function'))
})
