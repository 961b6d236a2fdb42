// The web UI in a real browser: Debian's chromium, headless, driven by
// playwright-core. Logs in with the admin's token, queues the example app's
// run and watches it go green on its page without reloading, then opens a
// failed run and reads why. Keeps a screenshot of each main page.
//
// Then the delivery view, each person in their own session: the pipeline
// shows the commit waiting for review with the rule, a viewer sees no
// buttons, a promotion without approval is denied and changes nothing, a
// maintainer approves, a release manager promotes to staging and production
// after reading the gate's answer, and the overview shows the digest.
//
// Env: CAIRN_URL, CAIRN_TOKEN (an admin's), RELEASE_TOKEN (a release
// manager's), MAINTAINER_TOKEN, VIEWER_TOKEN, SCREENSHOTS (a directory), GREEN (workload whose run passes and
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

// A new browser session logged in with `t`: its page.
async function session(t) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const p = await context.newPage();
  p.on("pageerror", (e) => violationsAll.push(String(e)));
  await p.goto(base + "/login");
  await p.fill("#token", t);
  await Promise.all([p.waitForNavigation(), p.click("form#login button[type=submit], form#login input[type=submit]")]);
  if (p.url() !== base + "/") fail("logging in led to " + p.url());
  return p;
}
const violationsAll = [];

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

  // The delivery view. Each person in their own browser session.
  const digestOf = async () => {
    const evidence = await api("GET", `/api/runs/${green}/evidence`, token);
    const image = evidence.body.evidence.find(
      (e) => e.predicate_type === "https://slsa.dev/provenance/v1" && e.subject_digest.startsWith("sha256:"),
    );
    if (!image) fail("run " + green + " has no provenance about an image");
    return image.subject_digest;
  };
  const digest = await digestOf();
  const W = process.env.GREEN;
  const release = await session(process.env.RELEASE_TOKEN);
  const maintainer = await session(process.env.MAINTAINER_TOKEN);
  const viewer = await session(process.env.VIEWER_TOKEN);
  const lane = (env) => `.lane.environment[data-environment="${env}"]`;

  // The release manager opens the pipeline: the commit is not reviewed; staging
  // (no approval needed there) would take it.
  await release.goto(`${base}/workloads/${W}`);
  const commitCard = `.card.commit[data-run="${green}"]`;
  const review = (await release.textContent(`${commitCard} .review`)) || "";
  if (!review.includes("not reviewed")) fail("the commit's review state: " + review);
  const stagingAnswer = (await release.textContent(`${lane("staging")} .candidate .gate`)) || "";
  if (!stagingAnswer.includes("gate: allowed")) fail("staging's candidate: " + stagingAnswer);
  // Promote to staging: the confirm page shows the gate's answer first.
  await Promise.all([release.waitForNavigation(), release.click(`${lane("staging")} a.promote`)]);
  const confirmStaging = ((await release.textContent("#gate-answer")) || "").trim();
  if (!confirmStaging.includes("gate: allowed")) fail("confirm staging: " + confirmStaging);
  await Promise.all([release.waitForNavigation({ timeout: 120_000 }), release.click("form#confirm button[type=submit]")]);
  if (!release.url().endsWith(`/workloads/${W}`)) fail("after promoting to staging: " + release.url());
  const stagingRuns = await release.getAttribute(`${lane("staging")} .running a[href^="/artifacts/"]`, "href");
  if (!stagingRuns || !stagingRuns.endsWith(digest)) fail("staging runs " + stagingRuns + ", not " + digest);
  console.log(`promoted in the UI to staging: ${confirmStaging.replace(/\s+/g, " ")}; staging runs ${digest}`);

  // Production waits for review: the pipeline names the rule.
  const prodGate = `${lane("production")} .candidate .gate`;
  const rule = ((await release.textContent(`${prodGate} li[data-rule="review"]`)) || "").trim();
  if (!rule.includes("approval")) fail("production's candidate does not wait for review: " + (await release.textContent(lane("production"))));
  console.log(`waiting for review: ${rule.replace(/\s+/g, " ")}`);
  await release.screenshot({ path: shots + "/workload-pipeline.png", fullPage: true });

  // On a phone the lanes stack and nothing widens the page.
  await release.setViewportSize({ width: 390, height: 844 });
  await release.reload();
  const overflow = await release.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 1) fail(`the pipeline is ${overflow}px wider than a phone`);
  await release.screenshot({ path: shots + "/workload-pipeline-phone.png", fullPage: true });
  await release.setViewportSize({ width: 1280, height: 900 });
  console.log("on a phone the pipeline fits its width");

  // A viewer sees the same pipeline and no button.
  await viewer.goto(`${base}/workloads/${W}`);
  const buttons = await viewer.locator("#pipeline form, #pipeline a.button").count();
  if (buttons !== 0) fail(`a viewer sees ${buttons} buttons`);
  if (!((await viewer.textContent(prodGate)) || "").includes("gate: denied")) fail("the viewer does not see the gate's answer");
  console.log("a viewer sees no buttons, and the gate's answer");

  // A promotion to production without approval: the confirm page shows the
  // denial; a submission without an override (as a stale page would send)
  // is denied with the rule and changes nothing.
  await Promise.all([release.waitForNavigation(), release.click(`${lane("production")} a.promote`)]);
  const confirmDenied = ((await release.textContent("#gate-answer")) || "").trim();
  if (!confirmDenied.includes("gate: denied") || !confirmDenied.includes("review")) fail("confirm production: " + confirmDenied);
  if (!(await release.locator("form#confirm textarea[name=override][required]").count())) fail("no override reason asked for");
  await release.evaluate(() => document.querySelector("form#confirm textarea[name=override]").remove());
  await Promise.all([release.waitForNavigation(), release.click("form#confirm button[type=submit]")]);
  const denied = ((await release.textContent("#denied")) || "").replace(/\s+/g, " ");
  const deniedRules = await release.$$eval("#denied li[data-rule]", (els) => els.map((e) => e.getAttribute("data-rule")));
  if (!deniedRules.includes("review")) fail("the denial does not name the review rule: " + denied);
  const deployedNow = await api("GET", "/api/environments", token);
  if (deployedNow.body.some((e) => e.workload === W && e.environment === "production")) fail("a denied promotion deployed something");
  console.log(`without approval: denied (${deniedRules.join(", ")}); nothing in production`);

  // The maintainer approves the commit in the UI.
  await maintainer.goto(`${base}/workloads/${W}`);
  await Promise.all([maintainer.waitForNavigation(), maintainer.click(`${commitCard} form.approve button`)]);
  const approved = ((await maintainer.textContent(`${commitCard} .review`)) || "").trim();
  if (!approved.includes("approved by mae@example.org")) fail("after approving: " + approved);
  console.log("approved in the UI by mae@example.org");

  // The release manager promotes to production, seeing the gate's answer first.
  await release.goto(`${base}/workloads/${W}`);
  await Promise.all([release.waitForNavigation(), release.click(`${lane("production")} a.promote`)]);
  const confirmProd = ((await release.textContent("#gate-answer")) || "").trim();
  if (!confirmProd.includes("gate: allowed")) fail("confirm production after approval: " + confirmProd);
  await release.screenshot({ path: shots + "/confirm-production.png", fullPage: true });
  await Promise.all([release.waitForNavigation({ timeout: 120_000 }), release.click("form#confirm button[type=submit]")]);
  if (!release.url().endsWith(`/workloads/${W}`)) fail("after promoting to production: " + release.url());
  console.log(`promoted in the UI to production: ${confirmProd.replace(/\s+/g, " ")}`);

  // The overview shows the new digest in production.
  await release.goto(base + "/");
  const cell = await release.getAttribute(`#matrix tr[data-matrix-workload="${W}"] td[data-environment="production"]`, "data-digest");
  if (cell !== digest) fail(`the overview's production cell holds ${cell}, not ${digest}`);
  console.log(`the overview shows ${digest} in production`);
  await release.screenshot({ path: shots + "/overview.png", fullPage: true });
  // The artifact page: every signed statement verified on the server; the
  // SBOM's components searchable.
  await release.goto(`${base}/artifacts/${digest}`);
  const checks = await release.$$eval("#evidence tr[data-verified]", (els) => els.map((e) => e.getAttribute("data-verified")));
  if (!checks.length || checks.some((c) => c !== "true")) fail("artifact statements: " + checks);
  const total = Number(await release.getAttribute("#sbom-count", "data-total"));
  await release.screenshot({ path: shots + "/artifact.png", fullPage: true });
  if (total > 0) {
    await release.fill("#sbom-search input[name=q]", "zzz-no-such-component");
    await Promise.all([release.waitForNavigation(), release.click("#sbom-search button")]);
    const shown = Number(await release.getAttribute("#sbom-count", "data-shown"));
    if (shown !== 0) fail("a search for no component showed " + shown);
  }
  console.log(`artifact: ${checks.length} statements, each verified; the verified SBOM lists ${total} components`);

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

  for (const [name, path] of [["runs", "/runs"], ["environments", "/environments"], ["audit", "/audit"]]) {
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
  if (violations.length || violationsAll.length) fail("console errors (CSP or script): " + violations.concat(violationsAll).join(" | "));
  // What the test deployed stops with it.
  for (const env of ["production", "staging"]) {
    const stopped = await api("POST", "/api/undeploys", process.env.RELEASE_TOKEN, { workload: W, env });
    if (stopped.status !== 200) fail(`undeploy ${env}: ${stopped.status} ${JSON.stringify(stopped.body)}`);
  }
  console.log("undeployed staging and production");
  console.log("screenshots in " + shots);
} finally {
  await browser.close();
}
