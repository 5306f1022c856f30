// A child process that runs our .ts files runs them as the tests do: Node's type stripping with
// test/loader.ts (see there). Under tsx, the lib/ files such a child loads would report a false 100 %
// into the coverage of the test that started it.

/** Node arguments for a child process that runs a .ts file or imports ours: `spawn(process.execPath, [...TS_NODE_ARGS, file])`. */
export const TS_NODE_ARGS: readonly string[] = ['--import', new URL('../loader.ts', import.meta.url).href]
