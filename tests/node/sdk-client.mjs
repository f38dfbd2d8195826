// The official TypeScript SDK client over Streamable HTTP, authenticating with an API key.
// Usage: node sdk-client.mjs <mcp-url> <api-key> <tool> '<json arguments>'
// Prints one JSON object: the negotiated server info, the tool names and the call's result.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, apiKey, tool, args] = process.argv.slice(2);
if (!url || !apiKey || !tool) {
  console.error("usage: node sdk-client.mjs <mcp-url> <api-key> <tool> '<json arguments>'");
  process.exit(2);
}

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { "x-api-key": apiKey } },
});
const client = new Client({ name: "squaremcp-e2e", version: "1.0.0" });
await client.connect(transport);

const tools = [];
let cursor;
do {
  const page = await client.listTools(cursor ? { cursor } : {});
  tools.push(...page.tools.map((t) => t.name));
  cursor = page.nextCursor;
} while (cursor);

const result = await client.callTool({ name: tool, arguments: JSON.parse(args ?? "{}") });
console.log(
  JSON.stringify({
    server: client.getServerVersion(),
    protocolVersion: transport.protocolVersion,
    sessionId: transport.sessionId ?? null,
    tools,
    result,
  }),
);
await client.close();
