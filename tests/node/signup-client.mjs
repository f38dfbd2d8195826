// Sign-up and password reset in a real browser (headless Debian Chromium driven by
// playwright-core), with JavaScript turned off to prove the pages need none. The mailed links
// are read by the Rust test from the SMTP sink, so the run is split into steps:
//
//   node signup-client.mjs signup      <base> <artifacts> <email> <password>
//   node signup-client.mjs verify      <base> <artifacts> <link> <email> <password>
//   node signup-client.mjs reset       <base> <artifacts> <email>
//   node signup-client.mjs newpassword <base> <artifacts> <link> <email> <password>
//
// Each prints one JSON report on stdout; screenshots (desktop and mobile) go to <artifacts>.
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import { chromium } from "playwright-core";

const [step, base, artifacts, ...rest] = process.argv.slice(2);
if (!step || !base || !artifacts) {
  console.error("usage: node signup-client.mjs <signup|verify|reset|newpassword> <base-url> <artifacts-dir> ...");
  process.exit(2);
}
await mkdir(artifacts, { recursive: true });

const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const report = {};
const userDataDir = await mkdtemp(path.join(os.tmpdir(), "squaremcp-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: CHROMIUM_FLAGS,
  viewport: { width: 1280, height: 800 },
  javaScriptEnabled: false,
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  async function shoot(name) {
    await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(artifacts, `${name}-mobile.png`), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
  }
  const text = async () => (await page.textContent("main")) ?? "";
  async function signIn(email, password) {
    await page.fill('input[name="email"]', email);
    await page.fill('input[name="password"]', password);
    await Promise.all([page.waitForURL(/\/account$/), page.click('button[type="submit"]')]);
    report.account = { url: page.url(), text: await text() };
  }

  if (step === "signup") {
    const [email, password] = rest;
    await page.goto(`${base}/login`);
    await shoot("login-with-signup");
    await Promise.all([page.waitForURL(/\/signup$/), page.click('a[href="/signup"]')]);
    report.signupForm = { title: await page.title(), hasCsrf: Boolean(await page.getAttribute('input[name="csrf"]', "value")) };
    await shoot("signup");
    await page.fill('input[name="email"]', email);
    await page.fill('input[name="password"]', password);
    const [response] = await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    report.sent = { status: response?.status(), text: await text() };
    await shoot("signup-sent");
  } else if (step === "verify") {
    const [link, email, password] = rest;
    await page.goto(link);
    report.confirm = { text: await text() };
    await shoot("signup-confirm");
    const [response] = await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    report.verified = { status: response?.status(), text: await text() };
    await shoot("signup-verified");
    await Promise.all([page.waitForURL(/\/login/), page.click("a.button")]);
    await signIn(email, password);
    await shoot("account-after-signup");
  } else if (step === "reset") {
    const [email] = rest;
    await page.goto(`${base}/login`);
    await Promise.all([page.waitForURL(/\/reset$/), page.click('a[href="/reset"]')]);
    await shoot("reset");
    await page.fill('input[name="email"]', email);
    const [response] = await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    report.sent = { status: response?.status(), text: await text() };
    await shoot("reset-sent");
  } else if (step === "newpassword") {
    const [link, email, password] = rest;
    await page.goto(link);
    await shoot("reset-new-password");
    await page.fill('input[name="password"]', password);
    const [response] = await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    report.changed = { status: response?.status(), text: await text() };
    await shoot("reset-done");
    await Promise.all([page.waitForURL(/\/login/), page.click("a.button")]);
    await signIn(email, password);
  } else {
    throw new Error(`unknown step ${step}`);
  }
} finally {
  await context.close();
  await rm(userDataDir, { recursive: true, force: true });
}

console.log(JSON.stringify(report));
