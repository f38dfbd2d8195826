// The official TypeScript SDK client connecting with OAuth, the way claude.ai or Claude Code
// would: discovery from the 401, dynamic client registration, PKCE S256, a real browser
// (headless Debian Chromium driven by playwright-core) that signs in and clicks Allow, the
// redirect caught on a loopback redirect URI, the code exchange, tools/list, a refresh, and
// tools/list again with the refreshed token.
//
// Usage: node oauth-client.mjs <mcp-url> <email> <password> <artifacts-dir>
// Prints one JSON report on stdout; screenshots of the pages go to <artifacts-dir>.
import crypto from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { UnauthorizedError, auth } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { chromium } from "playwright-core";

const [mcpUrl, email, password, artifacts] = process.argv.slice(2);
if (!mcpUrl || !email || !password || !artifacts) {
  console.error("usage: node oauth-client.mjs <mcp-url> <email> <password> <artifacts-dir>");
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

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// The loopback redirect URI: a one-shot listener that receives the authorization response.
const callback = await new Promise((resolve) => {
  let deliver;
  const received = new Promise((r) => (deliver = r));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    if (url.pathname !== "/callback") {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end("<!doctype html><title>Connected</title><p>Connected. You can close this window.</p>");
    deliver(url.searchParams);
  });
  server.listen(0, "127.0.0.1", () => {
    resolve({ server, received, uri: `http://127.0.0.1:${server.address().port}/callback` });
  });
});

// An OAuthClientProvider that keeps everything in memory, as a desktop client would on disk.
const expectedState = crypto.randomBytes(16).toString("hex");
const saved = {};
let authorizationUrl;
const provider = {
  get redirectUrl() {
    return callback.uri;
  },
  get clientMetadata() {
    return {
      client_name: "SquareMCP end-to-end test",
      redirect_uris: [callback.uri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  },
  state: () => expectedState,
  clientInformation: () => saved.client,
  saveClientInformation: (info) => {
    saved.client = info;
  },
  tokens: () => saved.tokens,
  saveTokens: (tokens) => {
    saved.tokens = tokens;
  },
  redirectToAuthorization: (url) => {
    authorizationUrl = url;
  },
  saveCodeVerifier: (verifier) => {
    saved.verifier = verifier;
  },
  codeVerifier: () => saved.verifier,
};

async function listTools() {
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
  const client = new Client({ name: "squaremcp-oauth-e2e", version: "1.0.0" });
  await client.connect(transport);
  const names = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : {});
    names.push(...page.tools.map((t) => t.name));
    cursor = page.nextCursor;
  } while (cursor);
  await client.close();
  return names;
}

const report = {};

// 1. Unauthenticated connect: 401, discovery, registration, and the authorization URL.
{
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
  const client = new Client({ name: "squaremcp-oauth-e2e", version: "1.0.0" });
  try {
    await client.connect(transport);
    throw new Error("connected without authorization: the server must answer 401");
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  }
  if (!authorizationUrl) throw new Error("the SDK did not start an authorization");
  report.authorization = Object.fromEntries(authorizationUrl.searchParams);
  report.registeredClient = { ...saved.client, client_secret: saved.client?.client_secret ? "(present)" : undefined };
}

// 2. The browser: sign in, then Allow. Screenshots of both pages, on a desktop and a phone.
const userDataDir = await mkdtemp(path.join(os.tmpdir(), "squaremcp-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: CHROMIUM_FLAGS,
  viewport: { width: 1280, height: 800 },
  // Behind the test's TLS proxy, whose certificate comes from a throwaway CA (NODE_EXTRA_CA_CERTS
  // covers the SDK's fetches, not the browser).
  ignoreHTTPSErrors: process.env.SQUAREMCP_E2E_TEST_CA === "1",
});
let params;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  async function shoot(name) {
    await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(artifacts, `${name}-mobile.png`), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
  }
  const loginResponse = await page.goto(authorizationUrl.href);
  await page.waitForSelector('input[name="email"]');
  report.login = {
    url: page.url(),
    status: loginResponse?.status(),
    headers: loginResponse ? await loginResponse.allHeaders() : {},
    title: await page.title(),
  };
  await shoot("login");
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForURL(/\/oauth\/authorize\?/), page.click('button[type="submit"]')]);
  await page.waitForSelector('button[name="action"][value="allow"]');
  report.consent = { url: page.url(), title: await page.title(), text: (await page.textContent("main")) ?? "" };
  await shoot("consent");
  await page.click('button[name="action"][value="allow"]');
  params = await withTimeout(callback.received, 15000, "the redirect to the loopback callback");
  report.callbackPage = (await page.textContent("body").catch(() => "")) ?? "";
  // What the browser keeps for the gateway's host: names and attributes, never the values.
  report.cookies = (await context.cookies()).map(({ name, domain, path, secure, httpOnly, sameSite }) => ({ name, domain, path, secure, httpOnly, sameSite }));
} finally {
  await context.close();
  await rm(userDataDir, { recursive: true, force: true });
  callback.server.close();
}
if (params.get("state") !== expectedState) throw new Error(`state not echoed: ${params.get("state")}`);
if (!params.get("code")) throw new Error(`no code in the redirect: ${params}`);
report.stateEchoed = true;

// 3. Code exchange (PKCE verifier, resource), then tools/list with the access token.
{
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
  await transport.finishAuth(params.get("code"));
}
const first = saved.tokens;
report.tokens = { token_type: first.token_type, scope: first.scope, expires_in: first.expires_in, refresh: Boolean(first.refresh_token) };
report.toolsBefore = await listTools();

// 4. Refresh (rotation), then tools/list again with the new access token.
const outcome = await auth(provider, { serverUrl: new URL(mcpUrl) });
const second = saved.tokens;
report.refresh = {
  outcome,
  newAccessToken: second.access_token !== first.access_token,
  rotatedRefreshToken: Boolean(second.refresh_token) && second.refresh_token !== first.refresh_token,
};
report.toolsAfter = await listTools();

console.log(JSON.stringify(report));
