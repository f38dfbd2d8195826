// The baseline's MCP server: the same tool list as the gateway (read from TOOLS_FILE, which the
// harness writes from the gateway's own tools/list) and the same upstream call per tool.
import { readFileSync } from "node:fs";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const tools = JSON.parse(readFileSync(process.env.TOOLS_FILE, "utf8"));
const upstream = process.env.UPSTREAM_URL;
const botToken = process.env.BOT_TOKEN;
const methods = {
  telegram_get_me: "getMe",
  telegram_send_message: "sendMessage",
  telegram_send_photo: "sendPhoto",
  telegram_get_updates: "getUpdates",
  telegram_get_chat: "getChat",
};

export function makeServer() {
  const server = new Server({ name: "ts-baseline", version: "1.0.0" }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools }));
  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    const method = methods[request.params.name];
    if (!method) throw new Error(`Unknown tool: ${request.params.name}`);
    const { account, ...args } = request.params.arguments ?? {};
    const response = await fetch(`${upstream}/bot${botToken}/${method}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(args),
    });
    const envelope = await response.json();
    if (!envelope.ok) {
      return { content: [{ type: "text", text: envelope.description }], isError: true };
    }
    return {
      content: [{ type: "text", text: JSON.stringify(envelope.result) }],
      structuredContent: envelope.result,
      isError: false,
    };
  });
  return server;
}
