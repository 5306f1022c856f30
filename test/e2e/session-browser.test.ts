// A real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core; no browser
// download) signs in through the demo page, reloads, sees its session, lists and revokes another
// browser's session, and signs out. Without Chromium this test fails with a clear message.
import { existsSync } from 'node:fs'
import t, { type Test } from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { useRedis } from '../helpers/index.js'
import { buildTestApp } from '../helper.js'

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium'

async function launch (t: Test): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install the Debian package (apt-get install -y chromium) or set CHROMIUM_PATH`)
  }
  // Playwright gives every launch a fresh temporary profile (it refuses --user-data-dir in launch()).
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    timeout: 30_000
  })
  t.teardown(() => browser.close())
  return browser
}

const status = (page: Page) => page.locator('#status')

async function signIn (page: Page, url: string, userId: string): Promise<void> {
  await page.goto(url)
  await page.fill('#userId', userId)
  await page.click('#login button[type=submit]')
  await page.waitForFunction((text) => document.getElementById('status')?.textContent === text, `Signed in as ${userId}`)
}

t.test('browser: sign in, reload, list, revoke, sign out', async (t) => {
  const server = await useRedis(t)
  const { app } = await buildTestApp(t, { REDIS_URL: server.url, SESSION_SECRET: 'c'.repeat(32), RATE_LIMIT_GLOBAL: 'false' })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/demo`
  const browser = await launch(t)

  // Two separate browser profiles (contexts) for one user: a laptop and a phone.
  const laptop = await (await browser.newContext()).newPage()
  const phone = await (await browser.newContext({ userAgent: 'PhoneBrowser/1.0' })).newPage()
  await signIn(laptop, url, 'ada')
  const cookies = await laptop.context().cookies()
  t.match(cookies.find((c) => c.name === 'sid'), { httpOnly: true, sameSite: 'Lax' }, 'httpOnly session cookie')
  t.equal(await laptop.evaluate(() => document.cookie), '', 'invisible to scripts')

  await laptop.reload()
  await laptop.waitForFunction(() => document.getElementById('status')?.textContent === 'Signed in as ada')
  t.pass('still signed in after a reload')

  await signIn(phone, url, 'ada')
  await laptop.click('#refresh')
  await laptop.waitForFunction(() => document.querySelectorAll('#sessions li').length === 2)
  t.match(await laptop.locator('#sessions li').allTextContents(), [/\(this session\)|PhoneBrowser/, /\(this session\)|PhoneBrowser/])

  // Revoke the phone's session from the laptop; the phone is signed out on its next load.
  await laptop.locator('#sessions li', { hasText: 'PhoneBrowser' }).locator('button').click()
  await laptop.waitForFunction(() => document.querySelectorAll('#sessions li').length === 1)
  await phone.reload()
  await phone.waitForFunction(() => document.getElementById('status')?.textContent === 'Signed out')
  t.pass('revoked session is signed out')

  await laptop.click('#logout')
  await laptop.waitForFunction(() => document.getElementById('status')?.textContent === 'Signed out')
  await laptop.reload()
  await laptop.waitForFunction(() => document.getElementById('status')?.textContent !== 'Loading…')
  t.equal(await status(laptop).textContent(), 'Signed out', 'signed out after reload')
  t.equal((await laptop.context().cookies()).find((c) => c.name === 'sid'), undefined, 'cookie cleared')
  t.equal(await app.sessions.countAll(), 0, 'no session left in Redis')
})
