// Single sign-on in a real browser: Debian's chromium (headless) driven by
// playwright-core logs in to cairn through a real OpenID Connect provider
// (npm oidc-provider, its login and consent pages), and ends on the runs page
// as the identity org.toml maps the account to, with that identity's roles.
// An account no mapping names sees why it has no role, and gets no session.
//
// Env: CAIRN_URL, PLAYWRIGHT (playwright-core's path), SCREENSHOTS, USERS
// (JSON: [[login, expected identity or ""], ...]).
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT);
const base = process.env.CAIRN_URL;
const shots = process.env.SCREENSHOTS;
mkdirSync(shots, { recursive: true });
const users = JSON.parse(process.env.USERS);

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
  for (const [login, expected] of users) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    // A page that needs a session sends the browser to /login, keeping where it was going.
    await page.goto(base + "/runs");
    if (!page.url().startsWith(base + "/login")) fail(`not sent to /login: ${page.url()}`);
    await page.screenshot({ path: `${shots}/sso-login.png` });
    await page.click("#sso");
    // The provider's own login page, then its consent page.
    await page.waitForSelector("input[name=login]", { timeout: 15000 });
    if (page.url().startsWith(base)) fail(`the SSO button did not lead to the provider: ${page.url()}`);
    await page.fill("input[name=login]", login);
    await page.fill("input[name=password]", "any password");
    await page.click("button[type=submit]");
    await page.waitForLoadState();
    if (!page.url().startsWith(base)) {
      await page.click("button[type=submit]"); // consent: Continue
    }
    await page.waitForURL((u) => u.toString().startsWith(base), { timeout: 15000 });
    if (expected) {
      await page.waitForURL(base + "/runs", { timeout: 15000 });
      await page.waitForSelector("#identity");
      const who = (await page.textContent("#identity")).trim();
      if (who !== expected) fail(`logged in as ${who}, not ${expected}`);
      const whoami = await page.evaluate(async () => {
        const r = await fetch("/api/whoami");
        return { status: r.status, body: await r.json() };
      });
      if (whoami.status !== 200) fail(`whoami: ${JSON.stringify(whoami)}`);
      const roles = whoami.body.roles
        .map((r) => r.role + (r.workload ? `@${r.workload}` : "") + (r.environment ? `/${r.environment}` : ""))
        .join(", ");
      const cookies = await context.cookies(base);
      const session = cookies.find((c) => c.name === "cairn_session");
      if (!session || !session.httpOnly || session.sameSite !== "Strict") fail(`session cookie: ${JSON.stringify(session && { ...session, value: "…" })}`);
      if (cookies.find((c) => c.name === "cairn_oidc")) fail("the login's cookie outlived the login");
      await page.screenshot({ path: `${shots}/sso-runs-${login}.png` });
      console.log(`${login}: logged in through the provider, on ${new URL(page.url()).pathname} as ${who} (via ${whoami.body.via}) with roles ${roles}`);
    } else {
      await page.waitForSelector("#reason");
      const reason = (await page.textContent("#reason")).replace(/\s+/g, " ").trim();
      const title = (await page.textContent("h1")).trim();
      await page.screenshot({ path: `${shots}/sso-no-role.png` });
      await page.goto(base + "/runs");
      const landed = new URL(page.url()).pathname;
      if (landed !== "/login") fail(`an unmapped account reached ${landed}`);
      console.log(`${login}: ${title}: ${reason} Then /runs sent it to ${landed}.`);
    }
    if (errors.length) fail(`script errors: ${errors.join("; ")}`);
    await context.close();
  }
} finally {
  await browser.close();
}
