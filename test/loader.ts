// How the tests run TypeScript (.taprc `--import=./test/loader.ts`; the test's child processes too):
// Node's own type stripping (on by default from Node 22.18 and 23.6) blanks the types out in place, so
// every line and column of a module is where it is in the .ts file and V8's coverage is the source's
// coverage, with no source map in between. tsx minifies each module to one line (esbuild
// `minifyWhitespace`, tsx issues #433 and #558), which made the coverage report a false 100 %.
// Stripping needs erasable syntax only (tsconfig `erasableSyntaxOnly`: no enums, no parameter
// properties) and leaves import specifiers as written; ours name the compiled file (`./x.js`, as
// NodeNext wants), so this hook sends a relative `.js` import from one of our `.ts` files to the `.ts`
// next to it when there is one. A synchronous, in-thread hook (module.registerHooks): no loader thread.
import module from 'node:module'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

interface ResolveContext { parentURL?: string | undefined }
interface Resolved { url: string, format?: string | null | undefined, shortCircuit?: boolean }
type NextResolve = (specifier: string, context?: ResolveContext) => Resolved
// registerHooks is in Node 22.15 and 23.5 on; @types/node 20 does not know it.
const { registerHooks } = module as unknown as {
  registerHooks: (hooks: { resolve: (specifier: string, context: ResolveContext, next: NextResolve) => Resolved }) => void
}

const OURS = /^file:(?!.*\/node_modules\/).*\.[cm]?ts$/

registerHooks({
  resolve (specifier, context, next) {
    const parent = context.parentURL
    if (parent !== undefined && specifier.endsWith('.js') && (specifier.startsWith('./') || specifier.startsWith('../')) && OURS.test(parent)) {
      const source = new URL(`${specifier.slice(0, -3)}.ts`, parent)
      if (existsSync(fileURLToPath(source))) return next(source.href, context)
    }
    return next(specifier, context)
  }
})
