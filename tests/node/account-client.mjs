// The account page in a real browser (headless Debian Chromium driven by playwright-core), with
// JavaScript turned off to prove the page needs none: sign in, read the page, create an API key
// and use it, revoke it, disconnect a connected MCP client, and (when a platform to connect is
// given) connect it through its OAuth consent page and come back to /account.
//
// Usage: node account-client.mjs <base-url> <email> <password> <artifacts-dir> [connect-platform]
// Prints one JSON report on stdout; screenshots of the pages go to <artifacts-dir>.
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import { chromium } from "playwright-core";

const [base, email, password, artifacts, connectPlatform] = process.argv.slice(2);
if (!base || !email || !password || !artifacts) {
  console.error("usage: node account-client.mjs <base-url> <email> <password> <artifacts-dir> [connect-platform]");
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

async function mcpStatus(key) {
  const response = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "x-api-key": key },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
  });
  return response.status;
}

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
  async function rows(selector, attributes) {
    return page.$$eval(
      selector,
      (elements, names) => elements.map((e) => Object.fromEntries([...names.map((n) => [n, e.getAttribute(`data-${n}`)]), ["text", e.textContent]])),
      attributes,
    );
  }
  async function readAccount() {
    return {
      url: page.url(),
      title: await page.title(),
      text: (await page.textContent("main")) ?? "",
      notice: (await page.textContent(".notice").catch(() => null)) ?? null,
      connections: await rows("tr[data-platform]", ["platform", "account"]),
      health: await page.$$eval("[data-health]", (els) => els.map((e) => e.getAttribute("data-health"))),
      keys: await rows("tr[data-key]", ["key"]),
      clients: await rows("tr[data-grant]", ["grant"]),
      forms: await page.$$eval("form", (forms) => forms.map((f) => ({ action: f.getAttribute("action"), method: f.getAttribute("method"), csrf: Boolean(f.querySelector('input[name="csrf"]')?.value) }))),
    };
  }

  // 1. Signed out: /account sends the browser to the login form, which comes back to /account.
  await page.goto(`${base}/account`);
  await page.waitForSelector('input[name="email"]');
  report.loginUrl = page.url();
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForURL(/\/account$/), page.click('button[type="submit"]')]);

  // 2. The page itself, with its headers.
  const response = await page.goto(`${base}/account`);
  report.status = response?.status();
  report.headers = response ? await response.allHeaders() : {};
  report.account = await readAccount();
  await shoot("account");

  // 3. A new API key: shown once, works, then revoked and refused.
  await page.fill("#key-name", "browser key");
  await Promise.all([page.waitForLoadState("load"), page.click('form[action="/account/keys"] button[type="submit"]')]);
  const key = ((await page.textContent("#new-key code.secret")) ?? "").trim();
  report.newKey = { prefix: key.slice(0, 8), shown: key.startsWith("sqm_"), statusBeforeRevoke: await mcpStatus(key) };
  await shoot("key-created");
  // Back to the page (a GET; reloading the POST's answer would send the form again).
  await page.goto(`${base}/account`);
  report.newKey.shownAgain = (await page.textContent("main"))?.includes(key) ?? true;
  const keyRow = page.locator("tr[data-key]", { hasText: "browser key" });
  await Promise.all([page.waitForURL(/done=key-revoked/), keyRow.locator('button[type="submit"]').click()]);
  report.newKey.statusAfterRevoke = await mcpStatus(key);
  report.afterKeyRevoke = await readAccount();

  // 4. Disconnect the connected MCP client.
  const clientRow = page.locator("tr[data-grant]").first();
  if ((await clientRow.count()) > 0) {
    await Promise.all([page.waitForURL(/done=client-revoked/), clientRow.locator('button[type="submit"]').click()]);
  }
  report.afterClientRevoke = await readAccount();
  await shoot("after-revoke");

  // 5. Connect a platform through its OAuth consent page (the mock provider's).
  if (connectPlatform) {
    const button = page.locator(`a[data-connect="${connectPlatform}"]`);
    await Promise.all([page.waitForURL(/\/oauth2\/authorize/), button.click()]);
    report.providerConsent = { url: page.url(), text: (await page.textContent("body")) ?? "" };
    await shoot("provider-consent");
    await Promise.all([page.waitForURL(/\/account\?done=connected/), page.click('button[name="decision"][value="allow"]')]);
    report.afterConnect = await readAccount();
    await shoot("connected");
  }
} finally {
  await context.close();
  await rm(userDataDir, { recursive: true, force: true });
}

console.log(JSON.stringify(report));
