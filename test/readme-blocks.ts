// The ```ts blocks of README.md as modules, and the declared names they assume (test/package.test.ts
// type-checks them against the packed package).

export interface TsBlock {
  /** Line of the opening fence in README.md; the block's first line is `line + 1`. */
  line: number
  /** The block as a module (so top-level await works and its names stay its own). */
  module: string
}

export function extractTsBlocks (markdown: string): TsBlock[] {
  const blocks: TsBlock[] = []
  const lines = markdown.split('\n')
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript|tsx|mts)$/.test(lines[i]?.trim() ?? '')) continue // every TypeScript fence, however spelt
    const start = i
    const body: string[] = []
    while (++i < lines.length && lines[i]?.trim() !== '```') body.push(lines[i] ?? '')
    blocks.push({ line: start + 1, module: body.join('\n') + '\nexport {}\n' })
  }
  return blocks
}

/** Names a README block uses without defining: an app, a request, the reader's own functions and data. */
export const README_PREAMBLE = `
import type { FastifyInstance, FastifyRequest, RouteHandlerMethod } from 'fastify'
import type { TNumber, TObject, TString } from 'typebox'

interface User { id: number, name: string }

declare global {
  const app: FastifyInstance
  const request: FastifyRequest
  const userId: string
  const id: string
  const ids: string[]
  function loadUser (): Promise<User>
  function loadUsers (keys: string[]): Promise<Array<User | undefined>>
  function checkPassword (body: unknown): Promise<string>
  // A route handler in one block, a message handler in another.
  const handler: (...args: any[]) => Promise<void>
  const search: RouteHandlerMethod
  const exportHandler: RouteHandlerMethod
  const internal: RouteHandlerMethod
  const login: RouteHandlerMethod
  const signup: RouteHandlerMethod
  const update: RouteHandlerMethod
  const create: RouteHandlerMethod
  const Audit: TObject<{ action: TString }>
  const Order: TObject<{ id: TNumber }>
  function charge (order: { id: number }): Promise<void>
  const db: { invoices: { update (id: number, data: unknown, options: { fencingToken: unknown }): Promise<void> } }
  const data: unknown
  const pool: { query (sql: string): Promise<{ rowCount: number | null }> }
}
export {}
`
