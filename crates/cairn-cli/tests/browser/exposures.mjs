// The exposures page in a real browser (Debian's chromium, headless, driven by
// playwright-core): log in with a token, open /exposures, read the exposure's
// deadline clock, and see it count down without a reload (the page's one
// script, served from /assets; no CSP violation or script error). Keeps a
// screenshot.
//
// Env: CAIRN_URL, CAIRN_TOKEN, ADVISORY, SCREENSHOTS, PLAYWRIGHT.
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT);
const base = process.env.CAIRN_URL;
const shots = process.env.SCREENSHOTS;
mkdirSync(shots, { recursive: true });

function fail(message) {
  console.error("FAIL: " + message);
  process.exit(1);
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 700 } });
  const violations = [];
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) violations.push(m.text());
  });
  page.on("pageerror", (e) => violations.push(String(e)));
  await page.goto(base + "/login?next=/exposures");
  await page.fill("#token", process.env.CAIRN_TOKEN);
  await Promise.all([
    page.waitForNavigation(),
    page.click("form#login button[type=submit], form#login input[type=submit]"),
  ]);
  if (!page.url().endsWith("/exposures")) await page.goto(base + "/exposures");
  const row = `tr[data-advisory="${process.env.ADVISORY}"]`;
  if (!(await page.locator(row).count())) fail("no row for the exposure: " + (await page.textContent("main")));
  const clock = row + " span.clock";
  const first = (await page.textContent(clock)) || "";
  await page.evaluate(() => { window.__cairnSamePage = true; });
  await page.waitForTimeout(2200);
  const later = (await page.textContent(clock)) || "";
  const same = await page.evaluate(() => window.__cairnSamePage === true);
  if (!same) fail("the page reloaded");
  if (first === later) fail("the clock did not count: " + first);
  if (!/^\d+h\d\dm\d\ds left$/.test(later)) fail("the clock reads " + later);
  console.log(`clock counted without a reload: "${first.trim()}" → "${later.trim()}"`);
  await page.screenshot({ path: shots + "/exposures.png", fullPage: true });
  if (violations.length) fail("console errors (CSP or script): " + violations.join(" | "));
} finally {
  await browser.close();
}
