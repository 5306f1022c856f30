// The payload every contender serves, and its TypeBox schema (ours and the hand-written cache-aside
// check every value against it), in a module of its own so a bench server process loads no more than it needs.
import Type from 'typebox'

export const Payload = Type.Object({
  id: Type.Number(),
  name: Type.String(),
  email: Type.String(),
  roles: Type.Array(Type.String()),
  createdAt: Type.String(),
  profile: Type.Object({ bio: Type.String(), links: Type.Array(Type.String()) })
})

/** A JSON payload shaped like a typical API object (~1 KB), the same for every contender. */
export function payload (id: number): Record<string, unknown> {
  return {
    id,
    name: `User ${id}`,
    email: `user${id}@example.com`,
    roles: ['reader', 'writer'],
    createdAt: '2024-01-01T00:00:00.000Z',
    profile: {
      bio: 'x'.repeat(600),
      links: Array.from({ length: 5 }, (_, i) => `https://example.com/users/${id}/links/${i}`)
    }
  }
}
