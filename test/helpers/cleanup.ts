// Process-wide registry of the servers the helpers spawn and of their temp dirs, so a
// failing or crashing test never leaves a redis-server running (or its dir behind):
// - on a normal exit (an uncaught exception included) the 'exit' hook SIGKILLs them;
// - when the test process itself is killed (tap sends SIGALRM then SIGKILL on timeout)
//   no hook runs, so a tiny shell watchdog, fed over a pipe, does it when that pipe
//   reaches end-of-file, i.e. once this process is gone, however it died.
import { spawn, type ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

/** Only dirs under this prefix are ever removed by the hooks. */
const TEMP_DIR_PREFIX = path.join(os.tmpdir(), 'frs-')

const live = new Map<ChildProcess, string>()
const dirs = new Set<string>()
let watchdog: ChildProcess | undefined

// Reads "<pid> <dir>" lines until EOF, then kills each pid whose command line still
// contains its dir (so a recycled pid is never hit) and removes the dir.
const WATCHDOG_SCRIPT = `
trap '' INT HUP TERM
list=''
while IFS= read -r line; do list="$list$line
"; done
printf '%s' "$list" | while IFS=' ' read -r pid dir; do
  [ -n "$pid" ] || continue
  if tr '\\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir"; then
    kill -9 "$pid" 2>/dev/null
  fi
  case "$dir" in "$FRS_PREFIX"?*) rm -rf -- "$dir" ;; esac
done
`

function ensureWatchdog (): ChildProcess | undefined {
  // FRS_CLEANUP_WATCHDOG=0 exists so cleanup.test.ts can prove the exit hook on its own.
  if (process.platform !== 'linux' || process.env['FRS_CLEANUP_WATCHDOG'] === '0') return undefined
  if (watchdog !== undefined) return watchdog
  const child = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', FRS_PREFIX: TEMP_DIR_PREFIX },
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: false
  })
  child.on('error', () => { watchdog = undefined })
  child.stdin?.on('error', () => { watchdog = undefined })
  // The watchdog must not keep the test process alive.
  child.unref()
  if (child.stdin instanceof net.Socket) child.stdin.unref()
  watchdog = child
  return child
}

/**
 * Registers a spawned server and the temp dir it owns. The dir must appear in the
 * server's command line for its whole life (it holds the config file).
 */
export function trackChild (child: ChildProcess, dir: string): void {
  if (child.pid === undefined) return
  live.set(child, dir)
  dirs.add(dir)
  child.once('exit', () => live.delete(child))
  ensureWatchdog()?.stdin?.write(`${child.pid} ${dir}\n`)
}

/** The dir was removed by its owner: the exit hook can forget it. */
export function releaseDir (dir: string): void {
  dirs.delete(dir)
}

/** Pids of the tracked children that have not exited yet. */
export function trackedPids (): number[] {
  return [...live.keys()].flatMap((child) => child.pid === undefined ? [] : [child.pid])
}

/** Synchronously SIGKILLs every tracked child still alive and removes the dirs not yet released. */
export function killTrackedChildren (): void {
  for (const child of live.keys()) {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) continue
    try {
      process.kill(child.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  for (const dir of dirs) {
    if (!dir.startsWith(TEMP_DIR_PREFIX)) continue
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 2 })
    } catch {
      // best effort: the process is exiting
    }
  }
  dirs.clear()
}

process.on('exit', killTrackedChildren)
