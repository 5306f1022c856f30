// Loads, validates and freezes the configuration. Every problem becomes one line naming the variable
// and what was expected; a secret's value is never echoed.
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { resolve } from 'node:path'
import { parseEnv, inspect } from 'node:util'
import envSchema from 'env-schema'
import Value from 'typebox/value'
import { parseEncryptionKeys, zstdAvailable } from '../codecs/index.js'
import { didYouMean } from './did-you-mean.js'
import {
  ConfigSchema, PROFILES, PROFILE_DEFAULTS, REDIS_URL_PATTERN, SECRET_KEYS, describeVariables, type Config, type Profile
} from './schema.js'

export type { Config } from './schema.js'
import { ConfigError } from '../errors/index.js'

export interface LoadConfigOptions {
  /** Variables that override process.env and .env (a value given here wins over the environment). */
  env?: Record<string, string | number | boolean | undefined>
  /**
   * Read the process environment beneath `env`: process.env, and the .env file. Default true.
   * false uses `env` alone (tests, embedding several apps in one process).
   */
  processEnv?: boolean
  /** The .env file read beneath process.env; missing files are ignored. Default: `.env` in the cwd. */
  dotenvPath?: string | false
}

export const MIN_SECRET_LENGTH = 32
export const REDACTED = '[redacted]'

/** What loading noticed without refusing: logged by the config plugin once the app's logger exists. */
interface ConfigNotes {
  warnings: readonly string[]
  /** Variables given (not defaulted): an explicit LOG_LEVEL governs the suite's own log lines. */
  given: ReadonlySet<string>
}

const NOTES = new WeakMap<object, ConfigNotes>()

/** Warnings about the environment (an unknown NODE_ENV, a misspelt variable) for this loaded config. */
export function configWarnings (config: Readonly<Config>): readonly string[] {
  return NOTES.get(config)?.warnings ?? []
}

/**
 * The level for the suite's own loggers: LOG_LEVEL when it was set, so LOG_LEVEL=error quiets the suite
 * in an app with its own logger; undefined (the app's level) when LOG_LEVEL is only a default.
 */
export function suiteLogLevel (config: Readonly<Config>): string | undefined {
  return NOTES.get(config)?.given.has('LOG_LEVEL') === true ? config.LOG_LEVEL : undefined
}

/** Options for `app.log.child(bindings, options)`: the suite's loggers follow an explicit LOG_LEVEL. */
export function suiteLogOptions (config: Readonly<Config>): { level?: string } {
  const level = suiteLogLevel(config)
  return level === undefined ? {} : { level }
}

/** NODE_ENV values that mean a strict profile: refused rather than run as development. */
const STRICT_ALIASES: ReadonlyMap<string, Profile> = new Map([
  ...['prod', 'prd', 'live'].map((alias) => [alias, 'production'] as const),
  ...['stage', 'stg', 'preprod', 'pre-prod', 'pre-production', 'uat'].map((alias) => [alias, 'staging'] as const)
])

/** The suite's variable families: an unknown name under one of these is most likely a typo. */
const SUITE_PREFIXES = ['REDIS_', 'SESSION_', 'CACHE_', 'RATE_LIMIT_', 'METRICS_', 'HEALTH_', 'SHUTDOWN_']
/** Service links Kubernetes (and Docker links) inject for a service named redis: not ours, not typos. */
const INJECTED = /_SERVICE_(HOST|PORT)|_PORT_\d+_(TCP|UDP)|^REDIS_PORT_\d+$/

/**
 * The profile for a NODE_ENV value: case-insensitive; strict-looking aliases refused with the name meant;
 * anything else runs the development profile, with a warning.
 */
function profileOf (value: unknown, warnings: string[], problems: string[]): Profile {
  if (value === undefined || value === '') return 'development'
  const lower = String(value).trim().toLowerCase()
  if ((PROFILES as readonly string[]).includes(lower)) return lower as Profile
  const meant = STRICT_ALIASES.get(lower)
  if (meant !== undefined) {
    problems.push(`NODE_ENV=${String(value)} is not a profile: did you mean ${meant}? (profiles: ${PROFILES.join(', ')})`)
    return meant
  }
  warnings.push(`NODE_ENV=${String(value)} is not one of ${PROFILES.join(', ')}: running the development profile (in-process stores allowed, insecure settings accepted)`)
  return 'development'
}

function unknownVariables (source: Record<string, unknown>): string[] {
  const warnings: string[] = []
  for (const name of Object.keys(source)) {
    if (VARIABLES.has(name) || INJECTED.test(name) || !SUITE_PREFIXES.some((prefix) => name.startsWith(prefix))) continue
    warnings.push(`${name} is not a variable the suite reads${didYouMean(name, VARIABLES.keys())} (it is ignored; see .env.example)`)
  }
  return warnings
}

const SCHEMA_JSON = JSON.parse(JSON.stringify(ConfigSchema)) as Record<string, unknown>
const VARIABLES = new Map(describeVariables().map((v) => [v.name as string, v]))

export function loadConfig (options: LoadConfigOptions = {}): Readonly<Config> {
  const source = readSource(options)
  const warnings: string[] = []
  const aliasProblems: string[] = []
  const profile = profileOf(source.NODE_ENV, warnings, aliasProblems)
  warnings.push(...unknownVariables(source))
  const merged: Record<string, unknown> = { ...PROFILE_DEFAULTS[profile] }
  for (const [key, value] of Object.entries(source)) {
    // An empty variable (FOO= in .env or compose files) means "not set", as in most env loaders.
    if (VARIABLES.has(key) && value !== undefined && value !== '') merged[key] = value
  }
  if (merged.NODE_ENV !== undefined) merged.NODE_ENV = profile
  // LOG_LEVEL=INFO, as many platforms write it.
  if (typeof merged.LOG_LEVEL === 'string') merged.LOG_LEVEL = merged.LOG_LEVEL.trim().toLowerCase()

  // A bare number under 1000 passes the schema (it is a valid duration), so these never repeat a schema error.
  // A refused NODE_ENV alias is reported with the other problems, so one start shows them all.
  const unitless = [...aliasProblems, ...bareNumbers(merged)]
  let validated: Record<string, unknown>
  try {
    validated = envSchema({
      schema: structuredClone(SCHEMA_JSON),
      data: merged,
      env: false,
      ajv: { customOptions: (ajv: any) => ajv.addKeyword('x-secret').addKeyword('x-duration').addKeyword('x-needs-unit') }
    }) as Record<string, unknown>
  } catch (err) {
    throw new ConfigError([...describeSchemaErrors((err as { errors?: AjvError[] }).errors ?? [], merged), ...unitless])
  }
  if (unitless.length > 0) throw new ConfigError(unitless)

  const config = Value.Decode(ConfigSchema, validated) as Config
  const problems = checkRules(config)
  if (problems.length > 0) throw new ConfigError(problems)
  const given = new Set(Object.keys(source).filter((key) => VARIABLES.has(key) && source[key] !== undefined && source[key] !== ''))
  const loaded = protect(config)
  NOTES.set(loaded, { warnings, given })
  return loaded
}

function readSource ({ env = {}, processEnv = true, dotenvPath = '.env' }: LoadConfigOptions): Record<string, unknown> {
  if (!processEnv) return { ...env }
  let fromFile: Record<string, string> = {}
  if (dotenvPath !== false) {
    try {
      fromFile = parseEnv(readFileSync(resolve(dotenvPath), 'utf8')) as Record<string, string>
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
  // The real environment wins over the file, as with dotenv; what the app passes in `env` wins over both.
  return { ...fromFile, ...process.env, ...withoutUndefined(env) }
}

function withoutUndefined (env: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined))
}

interface AjvError { instancePath: string, keyword: string, params: Record<string, unknown> }

function describeSchemaErrors (errors: AjvError[], merged: Record<string, unknown>): string[] {
  const names = new Set<string>()
  for (const error of errors) {
    const name = error.instancePath.replace(/^\//, '') || String(error.params.missingProperty ?? '')
    if (name !== '') names.add(name)
  }
  if (names.size === 0) return ['configuration is invalid']
  return [...names].map((name) => `${name} must be ${expected(name)}, got ${shown(name, merged[name])}`)
}

/** The rule a variable's schema enforces, in words: the message must state the real rule. */
function expected (name: string): string {
  const schema = VARIABLES.get(name)?.schema ?? {}
  if (Array.isArray(schema.enum)) return 'one of ' + schema.enum.join(', ')
  if (schema['x-duration'] === true) {
    return schema['x-needs-unit'] === true
      ? "a duration with a unit, such as '30s', '5m' or '7d' (or 1000 or more milliseconds)"
      : "a duration in milliseconds or with a unit, such as '300ms', '5s', '5m' or '7d'"
  }
  if (schema.type === 'boolean') return 'true or false'
  if (schema.type === 'integer') {
    const { minimum, maximum } = schema as { minimum?: number, maximum?: number }
    if (minimum !== undefined && maximum !== undefined) return `an integer from ${minimum} to ${maximum}`
    if (minimum !== undefined) return `an integer of at least ${minimum}`
    if (maximum !== undefined) return `an integer of at most ${maximum}`
    return 'an integer'
  }
  if (schema.pattern === REDIS_URL_PATTERN) return 'a redis://, rediss://, valkey://, valkeys:// or unix:// URL'
  const { minLength = 0, maxLength } = schema as { minLength?: number, maxLength?: number }
  const length = minLength > 1 ? `at least ${minLength} characters` : maxLength !== undefined ? `at most ${maxLength} characters` : ''
  if (typeof schema.pattern === 'string') return `a value matching ${schema.pattern}${length === '' ? '' : `, ${length}`}`
  return length === '' ? 'a non-empty string' : length
}

const BARE_NUMBER = /^\s*\d+(\.\d+)?\s*$/

/**
 * Windows, lifetimes and timeouts measured in seconds or more refuse a bare number under 1000: it is
 * milliseconds, and RATE_LIMIT_WINDOW=60 (a 60 ms window) is nearly always someone meaning seconds.
 */
function bareNumbers (merged: Record<string, unknown>): string[] {
  const problems: string[] = []
  for (const [name, value] of Object.entries(merged)) {
    if (VARIABLES.get(name)?.schema['x-needs-unit'] !== true) continue
    if (typeof value !== 'number' && !(typeof value === 'string' && BARE_NUMBER.test(value))) continue
    const amount = Number(value)
    if (amount > 0 && amount < 1000) {
      problems.push(`${name}=${amount} would be ${amount} milliseconds: give a unit, e.g. ${name}=${amount}s (bare numbers are milliseconds and must be 1000 or more here)`)
    }
  }
  return problems
}

function shown (name: string, value: unknown): string {
  if (SECRET_KEYS.has(name)) return REDACTED
  return JSON.stringify(value)
}

/** Rules that span variables or depend on the profile. */
function checkRules (config: Config): string[] {
  const problems: string[] = []
  const strict = config.NODE_ENV === 'production' || config.NODE_ENV === 'staging'
  if (config.REDIS_SENTINELS.length > 0 && config.REDIS_CLUSTER_NODES.length > 0) {
    problems.push('REDIS_SENTINELS and REDIS_CLUSTER_NODES are both set: choose Sentinel or Cluster')
  }
  for (const name of ['REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const) {
    for (const entry of config[name]) {
      if (!/^[^\s:]+:\d{1,5}$/.test(entry) && !/^\[[0-9a-f:]+\]:\d{1,5}$/i.test(entry)) {
        problems.push(`${name} must be a comma-separated list of host:port, got ${JSON.stringify(entry)}`)
      }
    }
  }
  for (const pair of config.REDIS_CLUSTER_NAT_MAP) {
    if (!/^[^\s:=]+:\d{1,5}=[^\s:=]+:\d{1,5}$/.test(pair)) {
      problems.push(`REDIS_CLUSTER_NAT_MAP must be a comma-separated list of internal-host:port=external-host:port, got ${JSON.stringify(pair)}`)
    }
  }
  for (const entry of [...config.TRUST_PROXY, ...config.RATE_LIMIT_ALLOW_LIST]) {
    if (isIP(entry.split('/')[0] ?? '') === 0) {
      const name = config.TRUST_PROXY.includes(entry) ? 'TRUST_PROXY' : 'RATE_LIMIT_ALLOW_LIST'
      problems.push(`${name} must be a comma-separated list of IP addresses or CIDRs, got ${JSON.stringify(entry)}`)
    }
  }
  if (config.REDIS_RETRY_MAX_DELAY < config.REDIS_RETRY_DELAY) {
    problems.push('REDIS_RETRY_MAX_DELAY must be at least REDIS_RETRY_DELAY')
  }
  if (config.SESSION_MAX_LIFETIME < config.SESSION_TTL) {
    problems.push('SESSION_MAX_LIFETIME must be at least SESSION_TTL: it bounds the lifetimes sessions choose above the default')
  }
  if (config.SESSION_COMPRESSION === 'zstd' && !zstdAvailable) problems.push(`SESSION_COMPRESSION=zstd needs Node 22.15+ (this is Node ${process.versions.node}): use zlib or brotli`)
  try {
    parseEncryptionKeys(config.SESSION_ENCRYPTION_KEYS, 'SESSION_ENCRYPTION_KEYS')
  } catch (err) {
    problems.push((err as Error).message)
  }
  if (config.CACHE_COMPRESSION === 'zstd' && !zstdAvailable) problems.push(`CACHE_COMPRESSION=zstd needs Node 22.15+ (this is Node ${process.versions.node}): use zlib or brotli`)
  if (config.SESSION_EVENTS_SWEEP === 0) problems.push('SESSION_EVENTS_SWEEP must be more than 0')
  if (config.REDIS_COMMAND_TIMEOUT === 0) problems.push('REDIS_COMMAND_TIMEOUT must be more than 0: a command must never wait for ever')
  if ((config.REDIS_TLS_CERT === undefined) !== (config.REDIS_TLS_KEY === undefined)) {
    problems.push('REDIS_TLS_CERT and REDIS_TLS_KEY must be set together for mutual TLS')
  }
  if (!strict) return problems

  if (config.SESSION_SECRET.length === 0) {
    problems.push(`SESSION_SECRET must be set in ${config.NODE_ENV} (${MIN_SECRET_LENGTH}+ random characters; comma-separate old secrets to rotate)`)
  } else if (config.SESSION_SECRET.some((secret) => secret.length < MIN_SECRET_LENGTH)) {
    problems.push(`SESSION_SECRET must be at least ${MIN_SECRET_LENGTH} characters per secret in ${config.NODE_ENV}`)
  }
  if (config.SESSION_COOKIE_SECURE === 'false') {
    problems.push(`SESSION_COOKIE_SECURE=false is refused in ${config.NODE_ENV}: session cookies would travel in clear text`)
  }
  if (!config.REDIS_TLS_REJECT_UNAUTHORIZED) {
    problems.push(`REDIS_TLS_REJECT_UNAUTHORIZED=false is refused in ${config.NODE_ENV}: set REDIS_TLS_CA to the server's CA instead`)
  }
  if (!isRedisConfigured(config)) {
    problems.push(`REDIS_URL (or REDIS_HOST, REDIS_SENTINELS, REDIS_CLUSTER_NODES) must be set in ${config.NODE_ENV}: in-process stores are for development only`)
  }
  if (config.METRICS_ENABLED && config.METRICS_TOKEN === undefined && config.METRICS_PORT === undefined) {
    problems.push(`METRICS_TOKEN (16+ characters) or METRICS_PORT (a port not exposed publicly) must be set in ${config.NODE_ENV}: /metrics would be public on the app port (or set METRICS_ENABLED=false)`)
  }
  return problems
}

export function isRedisConfigured (config: Config): boolean {
  return config.REDIS_URL !== undefined || config.REDIS_HOST !== undefined ||
    config.REDIS_SENTINELS.length > 0 || config.REDIS_CLUSTER_NODES.length > 0
}

/** A copy safe to log: secret variables and the password in any Redis URL are replaced. */
export function redactConfig (config: Config): Record<string, unknown> {
  const copy: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(config)) {
    if (key === 'REDIS_URL' || key === 'REDIS_CACHE_URL') copy[key] = typeof value === 'string' ? redactUrl(value) : value
    else if (SECRET_KEYS.has(key) && value !== undefined) copy[key] = Array.isArray(value) ? value.map(() => REDACTED) : REDACTED
    else copy[key] = value
  }
  return copy
}

/** Keeps scheme, user, host, port and db; drops the password. */
export function redactUrl (url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = 'REDACTED'
    return parsed.toString().replace('REDACTED', REDACTED)
  } catch {
    return REDACTED
  }
}

/** Freeze, and make JSON.stringify, pino and util.inspect see the redacted copy. */
function protect (config: Config): Readonly<Config> {
  Object.defineProperty(config, 'toJSON', { value: () => redactConfig(config), enumerable: false })
  Object.defineProperty(config, inspect.custom, { value: () => redactConfig(config), enumerable: false })
  for (const value of Object.values(config)) if (Array.isArray(value)) Object.freeze(value)
  return Object.freeze(config)
}

/**
 * TRUST_PROXY only takes effect through Fastify's own `trustProxy` (request.ip, request.protocol and
 * request.host are Fastify's), and an app that registers the suite created its Fastify itself. Returns
 * the problem, naming the fix, when the two disagree; undefined when they agree.
 * `fastifyTrustProxy` is the option the app passed to Fastify(), as is.
 */
export function trustProxyProblem (trusted: readonly string[], fastifyTrustProxy: unknown): string | undefined {
  const wanted = trusted.length === 0 ? 'false' : `[${trusted.map((entry) => `'${entry}'`).join(', ')}]`
  const fix = `create Fastify with { trustProxy: ${wanted} } (loadConfig() first and pass config.TRUST_PROXY, as the demo server.ts does)`
  if (fastifyTrustProxy === true) {
    const listed = trusted.length === 0
      ? 'list the proxies in TRUST_PROXY and pass the same list as Fastify\'s trustProxy (or drop trustProxy when no proxy is in front)'
      : fix
    return `Fastify was created with trustProxy: true, which believes any client's X-Forwarded-For (a client picks its own rate-limit key and fakes HTTPS): ${listed}`
  }
  if (typeof fastifyTrustProxy === 'number' || typeof fastifyTrustProxy === 'function') {
    // A hop count or a function is the app's own policy, which TRUST_PROXY cannot express: accepted
    // when TRUST_PROXY is empty (documented), refused when TRUST_PROXY says something else.
    if (trusted.length === 0) return undefined
    return `TRUST_PROXY=${trusted.join(',')} but Fastify was created with a trustProxy ${typeof fastifyTrustProxy === 'number' ? 'hop count' : 'function'}: ${fix}, or unset TRUST_PROXY to keep Fastify's policy`
  }
  const given = fastifyTrustProxy === undefined || fastifyTrustProxy === false || fastifyTrustProxy === null
    ? []
    : typeof fastifyTrustProxy === 'string'
      ? fastifyTrustProxy.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
      : Array.isArray(fastifyTrustProxy) ? fastifyTrustProxy.map(String) : undefined
  if (given === undefined) return `Fastify's trustProxy option is not a list of addresses: ${fix}`
  const same = given.length === trusted.length && given.every((entry) => trusted.includes(entry))
  if (same) return undefined
  if (given.length === 0) {
    return `TRUST_PROXY=${trusted.join(',')} but Fastify was created without trustProxy, so request.ip, request.protocol and request.host ignore the proxy (one rate-limit bucket for every client, no Secure cookies behind TLS termination): ${fix}`
  }
  if (trusted.length === 0) {
    return `Fastify trusts the proxies ${given.join(',')} (trustProxy) but TRUST_PROXY is empty: set TRUST_PROXY=${given.join(',')} so the configuration says who the client is, or drop trustProxy`
  }
  return `TRUST_PROXY=${trusted.join(',')} and Fastify's trustProxy (${given.join(',')}) disagree: ${fix}, or set TRUST_PROXY=${given.join(',')}`
}
