// The web UI in a real browser: Debian's chromium, headless, driven by
// playwright-core. Logs in with the admin's token, queues the example app's
// run and watches it go green on its page without reloading, then opens a
// failed run and reads why. Keeps a screenshot of each main page.
//
// Env: CAIRN_URL, CAIRN_TOKEN (an admin's), RELEASE_TOKEN (a release
// manager's), SCREENSHOTS (a directory), GREEN (workload whose run passes and
// builds an image), RED (workload whose run fails), PLAYWRIGHT (the
// playwright-core module's path).
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.PLAYWRIGHT);
const base = process.env.CAIRN_URL;
const token = process.env.CAIRN_TOKEN;
const shots = process.env.SCREENSHOTS;
mkdirSync(shots, { recursive: true });

function fail(message) {
  console.error("FAIL: " + message);
  process.exit(1);
}

async function api(method, path, tokenToUse, body) {
  const response = await fetch(base + path, {
    method,
    headers: { authorization: "Bearer " + tokenToUse, "content-type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, body: await response.json() };
}

async function queue(workload) {
  const response = await fetch(base + "/api/runs", {
    method: "POST",
    headers: { authorization: "Bearer " + token, "content-type": "application/json" },
    body: JSON.stringify({ workload }),
  });
  if (response.status !== 202) fail(`queueing ${workload}: ${response.status} ${await response.text()}`);
  return (await response.json()).id;
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const violations = [];
  // Content-Security-Policy violations and script errors; a 401 page for a bad
  // token is expected and is not one.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) violations.push(m.text());
  });
  page.on("pageerror", (e) => violations.push(String(e)));

  // Not logged in: the UI sends us to the login page.
  await page.goto(base + "/");
  if (!page.url().includes("/login")) fail("an anonymous visit was not sent to /login: " + page.url());
  await page.screenshot({ path: shots + "/login.png", fullPage: true });
  const submit = "form#login button[type=submit], form#login input[type=submit]";
  await page.fill("#token", "not-a-token");
  await Promise.all([page.waitForNavigation(), page.click(submit)]);
  if (!(await page.locator("#login-error").count())) fail("a bad token showed no error");
  await page.fill("#token", token);
  await Promise.all([page.waitForNavigation(), page.click(submit)]);
  if (page.url() !== base + "/") fail("logging in led to " + page.url());
  const who = (await page.textContent("#identity")) || "";
  if (!who.includes("admin")) fail("the header does not name the identity: " + who);
  console.log("logged in as " + who.trim());

  // The green run, watched live: the page is opened while the run is queued
  // or running, and turns green without a reload.
  // The run is queued from the workloads page's form (with the session's CSRF
  // token), which leads to the run's page.
  await Promise.all([
    page.waitForNavigation(),
    page.click(`tr[data-workload="${process.env.GREEN}"] form.run-now button`),
  ]);
  const green = Number((page.url().match(/\/runs\/(\d+)$/) || [])[1]);
  if (!green) fail("the Run button led to " + page.url());
  const first = await page.getAttribute("#run-status", "data-status");
  if (!["queued", "running"].includes(first)) fail(`run ${green} was already ${first} when its page opened`);
  await page.evaluate(() => { window.__cairnSamePage = true; });
  const seen = new Set([first]);
  const deadline = Date.now() + 180_000;
  let status = first;
  while (status !== "succeeded") {
    if (Date.now() > deadline) fail(`run ${green} did not go green in time (last: ${status})`);
    if (status === "failed" || status === "interrupted") fail(`run ${green} ended ${status}`);
    await page.waitForTimeout(100);
    status = await page.getAttribute("#run-status", "data-status");
    seen.add(status);
  }
  const same = await page.evaluate(() => window.__cairnSamePage === true);
  if (!same) fail("the page reloaded: the run did not go green live");
  const stages = await page.$$eval("tr[data-stage] .status", (els) => els.map((e) => e.getAttribute("data-status")));
  if (!stages.length || stages.some((s) => s !== "passed" && s !== "skipped")) fail("stages after green: " + stages);
  const lines = await page.locator("#log .line").count();
  if (lines === 0) fail("no log lines arrived on the live page");
  // Filled in live, as people read it ("just now"), the exact time (RFC 3339)
  // in its datetime and, in the viewer's zone, on hover.
  const finished = (await page.textContent("#run-finished")) || "";
  const finishedAt = (await page.getAttribute("#run-finished time", "datetime")) || "";
  const finishedTitle = (await page.getAttribute("#run-finished time", "title")) || "";
  if (!/ago|just now/.test(finished) || !/^\d{4}-\d\d-\d\dT/.test(finishedAt) || !finishedTitle.includes(finishedAt))
    fail(`the finish time was not filled in live: "${finished}" datetime=${finishedAt} title=${finishedTitle}`);
  console.log(`run ${green} went green live: ${[...seen].join(" -> ")}; ${stages.length} stages; ${lines} log lines`);
  await page.screenshot({ path: shots + "/run-green.png", fullPage: true });

  // Its image goes to staging through the gate (as a release manager, over the
  // API); the environments and audit pages show it, the change proven in the log.
  const evidence = await api("GET", `/api/runs/${green}/evidence`, token);
  const image = evidence.body.evidence.find(
    (e) => e.predicate_type === "https://slsa.dev/provenance/v1" && e.subject_digest.startsWith("sha256:"),
  );
  if (!image) fail("run " + green + " has no provenance about an image");
  const promoted = await api("POST", "/api/promotions", process.env.RELEASE_TOKEN, {
    workload: process.env.GREEN, image: image.subject_digest, to: "staging",
  });
  if (promoted.status !== 200) fail("promotion to staging: " + promoted.status + " " + JSON.stringify(promoted.body));
  console.log(`promoted ${image.subject_digest} to staging: change ${promoted.body.change}, log entry ${promoted.body.log_index}`);

  // The failed run: its page says why.
  const red = await queue(process.env.RED);
  await page.goto(`${base}/runs/${red}`);
  await page.waitForSelector("#why", { timeout: 180_000 });
  const redStatus = await page.getAttribute("#run-status", "data-status");
  if (redStatus !== "failed") fail(`run ${red} is ${redStatus}, not failed`);
  const stage = (await page.textContent("#why-stage")) || "";
  const reason = (await page.textContent("#why-reason")) || "";
  const tests = (await page.locator("#why-tests").count()) ? await page.textContent("#why-tests") : "";
  if (!reason.trim()) fail("the failed run's page gives no reason");
  console.log(`run ${red} failed; why: stage ${stage.trim()}: ${reason.trim()}; failed tests: ${(tests || "").trim()}`);
  await page.screenshot({ path: shots + "/run-failed.png", fullPage: true });

  for (const [name, path] of [["workloads", "/"], ["runs", "/runs"], ["environments", "/environments"], ["audit", "/audit"]]) {
    const response = await page.goto(base + path);
    if (response.status() !== 200) fail(`${path}: ${response.status()}`);
    await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  }
  await page.goto(base + "/environments");
  const current = (await page.textContent("#current")) || "";
  if (!current.includes(process.env.GREEN) || !current.includes("staging")) fail("environments page: " + current);
  await page.goto(base + "/audit");
  const proofs = await page.$$eval("#changes .proof", (els) => els.map((e) => e.textContent.trim()));
  if (!proofs.length || proofs.some((p) => !p.startsWith("proven"))) fail("audit proofs: " + proofs);
  console.log("audit: " + proofs.length + " change records, each " + proofs[0]);
  if (violations.length) fail("console errors (CSP or script): " + violations.join(" | "));
  console.log("screenshots in " + shots);
} finally {
  await browser.close();
}
