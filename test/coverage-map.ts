// .taprc `coverage-map`: which files each test file measures. Every test file measures the sources
// (lib/, plugins/, routes/, index.ts, server.ts), in its own process and its children, and what it runs
// of dist/ through tsc's source maps; nothing else is recorded: no test helper, no bench code, no
// dependency, wherever node_modules lives (a symlinked one is outside tap's own node_modules filter,
// and recording it made each process write ~5 MB of coverage instead of ~0.3 MB).
// The bench smoke tests (test/bench/) measure nothing: they prove the bench cases still run, their load
// generators and server processes ran several times slower under V8's precise coverage (which took
// test/bench/quick-http.test.ts past tap's 120 s timeout), and what they run the other tests cover.
export const SOURCES = ['lib/**/*.ts', 'plugins/**/*.ts', 'routes/**/*.ts', 'index.ts', 'server.ts']

export default function coverageMap (testFile: string): string[] | null {
  return testFile.startsWith('test/bench/') ? null : SOURCES
}
