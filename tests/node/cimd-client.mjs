// A client that identifies itself with a Client ID Metadata Document instead of registering:
// the document is served here on loopback, the authorization URL and the code exchange are the
// TypeScript SDK's own (discoverAuthorizationServerMetadata, startAuthorization,
// exchangeAuthorization) with the document's URL as client_id, and headless Chromium signs in
// and clicks Allow on the consent page, which must name the document's host.
//
// The SDK's provider flow insists on an https document URL; the server under test accepts
// http on loopback only because it runs with SQUAREMCP_ALLOW_PRIVATE_HOSTS=1, so the SDK's
// lower-level functions are used directly.
//
// Usage: node cimd-client.mjs <issuer> <mcp-url> <email> <password> <artifacts-dir>
// Prints one JSON report on stdout; screenshots of the consent page go to <artifacts-dir>.
import crypto from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";

import { discoverAuthorizationServerMetadata, exchangeAuthorization, startAuthorization } from "@modelcontextprotocol/sdk/client/auth.js";
import { chromium } from "playwright-core";

const [issuer, mcpUrl, email, password, artifacts] = process.argv.slice(2);
if (!issuer || !mcpUrl || !email || !password || !artifacts) {
  console.error("usage: node cimd-client.mjs <issuer> <mcp-url> <email> <password> <artifacts-dir>");
  process.exit(2);
}
await mkdir(artifacts, { recursive: true });

function listen(handler) {
  return new Promise((resolve) => {
    const server = http.createServer(handler);
    server.listen(0, "127.0.0.1", () => resolve({ server, base: `http://127.0.0.1:${server.address().port}` }));
  });
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// The loopback redirect URI: receives the authorization response.
let deliver;
const received = new Promise((r) => (deliver = r));
const callback = await listen((req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  if (url.pathname !== "/callback") {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  res.end("<!doctype html><title>Connected</title><p>Connected. You can close this window.</p>");
  deliver(url.searchParams);
});
const redirectUri = `${callback.base}/callback`;

// The client's metadata document, at the URL that is its client_id.
let documentFetches = 0;
const documentHost = await listen((req, res) => {
  if (req.url !== "/oauth/client-metadata.json") {
    res.writeHead(404).end();
    return;
  }
  documentFetches += 1;
  res.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=300" });
  res.end(
    JSON.stringify({
      client_id: `${documentHost.base}/oauth/client-metadata.json`,
      client_name: "CIMD end-to-end test",
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    }),
  );
});
const clientInformation = { client_id: `${documentHost.base}/oauth/client-metadata.json` };

const report = { clientId: clientInformation.client_id };
const metadata = await discoverAuthorizationServerMetadata(new URL(issuer));
report.metadata = {
  client_id_metadata_document_supported: metadata.client_id_metadata_document_supported,
  authorization_response_iss_parameter_supported: metadata.authorization_response_iss_parameter_supported,
};
const state = crypto.randomBytes(16).toString("hex");
const { authorizationUrl, codeVerifier } = await startAuthorization(new URL(issuer), {
  metadata,
  clientInformation,
  redirectUrl: redirectUri,
  scope: "mcp",
  state,
  resource: new URL(mcpUrl),
});

const userDataDir = await mkdtemp(path.join(os.tmpdir(), "squaremcp-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"],
  viewport: { width: 1280, height: 800 },
});
let params;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(authorizationUrl.href);
  await page.waitForSelector('input[name="email"]');
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForURL(/\/oauth\/authorize\?/), page.click('button[type="submit"]')]);
  await page.waitForSelector('button[name="action"][value="allow"]');
  report.consent = {
    heading: (await page.textContent("h1")) ?? "",
    strong: (await page.textContent("h1 strong")) ?? "",
    text: (await page.textContent("main")) ?? "",
  };
  await page.screenshot({ path: path.join(artifacts, "consent-cimd.png"), fullPage: true });
  await page.click('button[name="action"][value="allow"]');
  params = await withTimeout(received, 15000, "the redirect to the loopback callback");
} finally {
  await context.close();
  await rm(userDataDir, { recursive: true, force: true });
  callback.server.close();
}
report.callback = { stateEchoed: params.get("state") === state, iss: params.get("iss"), code: Boolean(params.get("code")) };

const tokens = await exchangeAuthorization(new URL(issuer), {
  metadata,
  clientInformation,
  authorizationCode: params.get("code"),
  codeVerifier,
  redirectUri,
  resource: new URL(mcpUrl),
});
report.tokens = { token_type: tokens.token_type, scope: tokens.scope, refresh: Boolean(tokens.refresh_token) };

// The access token works on /mcp (stateless: tools/list needs no initialize).
const listed = await fetch(mcpUrl, {
  method: "POST",
  headers: { authorization: `Bearer ${tokens.access_token}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
  body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
});
report.toolsStatus = listed.status;
report.tools = ((await listed.json()).result?.tools ?? []).map((t) => t.name);
report.documentFetches = documentFetches;
documentHost.server.close();

console.log(JSON.stringify(report));
