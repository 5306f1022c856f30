// The payload every contender serves, in a module of its own so a bench server process loads no more than it needs.

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
