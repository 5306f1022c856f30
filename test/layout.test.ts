// The folder tree is the architecture (ARCHITECTURE.md): lib/ holds one folder per subsystem, free of
// Fastify; code outside a subsystem reaches it through its index.ts only; lib/ subsystems import each
// other only in the directions ARCHITECTURE.md lists. Checked on the import statements themselves.
import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import ts from 'typescript'

const ROOT = path.resolve(import.meta.dirname, '..')
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g

// Which lib/ subsystems each one may import (ARCHITECTURE.md, "Layout").
const ALLOWED: Record<string, readonly string[]> = {
  errors: [],
  codecs: ['errors'],
  config: ['codecs', 'errors'],
  tracing: ['errors'],
  redis: ['config', 'errors'],
  realtime: ['config', 'errors', 'redis', 'tracing'],
  locks: ['config', 'errors', 'redis', 'tracing'],
  cache: ['codecs', 'config', 'errors', 'locks', 'redis', 'tracing'],
  'http-cache': ['config', 'cache', 'errors'],
  session: ['codecs', 'errors', 'tracing'],
  'rate-limit': ['config', 'errors'],
  health: ['errors'],
  metrics: ['cache', 'errors', 'rate-limit', 'redis']
}

function sources (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name)
    if (statSync(full).isDirectory()) return sources(full)
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [full] : []
  })
}

function imports (file: string): string[] {
  const text = readFileSync(file, 'utf8')
  return [...text.matchAll(IMPORT)].map((m) => m[1] ?? m[2] ?? '')
}

const subsystemOf = (file: string): string | undefined => {
  const rel = path.relative(path.join(ROOT, 'lib'), file)
  return rel.startsWith('..') || !rel.includes(path.sep) ? undefined : rel.split(path.sep)[0]
}

t.test('lib/ has a folder per subsystem and no loose files', async (t) => {
  const loose = readdirSync(path.join(ROOT, 'lib')).filter((name) => !statSync(path.join(ROOT, 'lib', name)).isDirectory())
  t.same(loose, [], 'every file of lib/ lives in a subsystem folder')
  t.same(Object.keys(ALLOWED).sort(), readdirSync(path.join(ROOT, 'lib')).sort(), 'every folder has its import rule here and in ARCHITECTURE.md')
  for (const folder of Object.keys(ALLOWED)) t.ok(statSync(path.join(ROOT, 'lib', folder, 'index.ts')).isFile(), `lib/${folder}/index.ts is its public surface`)
})

t.test('lib/ never imports Fastify', async (t) => {
  const offenders = sources(path.join(ROOT, 'lib')).flatMap((file) =>
    imports(file).filter((spec) => /^(fastify|@fastify\/|fastify-plugin)/.test(spec)).map((spec) => `${path.relative(ROOT, file)} → ${spec}`))
  t.same(offenders, [])
})

t.test('subsystems import each other only as ARCHITECTURE.md allows, and only through index.ts', async (t) => {
  const offenders: string[] = []
  const files = [...sources(path.join(ROOT, 'lib')), ...sources(path.join(ROOT, 'plugins')), ...sources(path.join(ROOT, 'routes')), path.join(ROOT, 'index.ts')]
  for (const file of files) {
    const from = subsystemOf(file)
    for (const spec of imports(file)) {
      if (!spec.startsWith('.')) continue
      const target = path.resolve(path.dirname(file), spec)
      const to = subsystemOf(target)
      if (to === undefined || to === from) continue
      const where = `${path.relative(ROOT, file)} → ${path.relative(ROOT, target)}`
      if (path.basename(target) !== 'index.js') offenders.push(`${where}: not through lib/${to}/index.ts`)
      if (from !== undefined && !(ALLOWED[from] ?? []).includes(to)) offenders.push(`${where}: lib/${from} may not import lib/${to}`)
    }
  }
  t.same(offenders, [])
})

t.test('no import loops among the sources (lib, plugins, routes, index.ts), type-only imports included', async (t) => {
  const files = [...sources(path.join(ROOT, 'lib')), ...sources(path.join(ROOT, 'plugins')), ...sources(path.join(ROOT, 'routes')), path.join(ROOT, 'index.ts')]
  const edges = new Map<string, string[]>()
  for (const file of files) {
    edges.set(file, imports(file).filter((spec) => spec.startsWith('.')).map((spec) => path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts')))
  }
  // Depth-first search; a file met again while it is still on the path closes a loop.
  const loops: string[] = []
  const state = new Map<string, 'open' | 'done'>()
  const visit = (file: string, trail: string[]): void => {
    if (state.get(file) === 'done') return
    if (state.get(file) === 'open') {
      loops.push([...trail.slice(trail.indexOf(file)), file].map((f) => path.relative(ROOT, f)).join(' → '))
      return
    }
    state.set(file, 'open')
    for (const next of edges.get(file) ?? []) visit(next, [...trail, file])
    state.set(file, 'done')
  }
  for (const file of files) visit(file, [])
  t.same(loops, [])
})

t.test('routes/ never import plugins/: what a route shares with a plugin lives in lib/', async (t) => {
  const offenders = sources(path.join(ROOT, 'routes')).flatMap((file) => imports(file)
    .filter((spec) => spec.startsWith('.') && path.resolve(path.dirname(file), spec).startsWith(path.join(ROOT, 'plugins') + path.sep))
    .map((spec) => `${path.relative(ROOT, file)} → ${spec}`))
  t.same(offenders, [])
})

// Plugins wire, lib decides (STYLE.md, ARCHITECTURE.md): a plugin's lifecycle reads on one screen, and a
// hook's logic is one hop away in a named function or a lib class. Measured from the line a function starts
// on to its closing brace; closures count toward the function that holds them (they are not measured apart).
const MAX_FUNCTION_LINES = 60

t.test(`no function in plugins/ is longer than ${MAX_FUNCTION_LINES} lines`, async (t) => {
  const offenders: string[] = []
  for (const file of sources(path.join(ROOT, 'plugins'))) {
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true)
    const line = (pos: number): number => source.getLineAndCharacterOfPosition(pos).line
    const nameOf = (node: ts.Node): string => {
      const named = node as { name?: ts.Node }
      if (named.name !== undefined) return named.name.getText(source)
      if (ts.isConstructorDeclaration(node)) return 'constructor'
      const parent = node.parent
      if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) return parent.name.getText(source)
      return `(anonymous, line ${line(node.getStart(source)) + 1})`
    }
    const visit = (node: ts.Node, inside: boolean): void => {
      const measured = !inside && ts.isFunctionLike(node) && 'body' in node && node.body !== undefined
      if (measured) {
        const lines = line(node.getEnd()) - line(node.getStart(source)) + 1
        if (lines > MAX_FUNCTION_LINES) offenders.push(`${path.relative(ROOT, file)}:${nameOf(node)}:${lines}`)
      }
      ts.forEachChild(node, (child) => { visit(child, inside || measured) })
    }
    visit(source, false)
  }
  t.same(offenders, [], 'split a long function into named functions, or move its decisions to lib/')
})

t.test('every plugin file opens with its lifecycle (decorators, hooks in order, onClose)', async (t) => {
  const missing = sources(path.join(ROOT, 'plugins')).filter((file) => {
    const opening = /^(?:\/\/.*\n)+/.exec(readFileSync(file, 'utf8'))?.[0] ?? ''
    return !opening.includes('Lifecycle')
  }).map((file) => path.relative(ROOT, file))
  t.same(missing, [])
})
