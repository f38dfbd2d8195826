// A Node.js Lambda doing what the gateway's mcp function does, on the TypeScript SDK: poll the
// Lambda Runtime API, turn the API Gateway v2 event into a web Request, answer it with the SDK's
// stateless web-standard transport, post the result back.
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { makeServer } from "./tools.mjs";

const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime`;
const apiKey = process.env.API_KEY;

async function handler(event) {
  if (event.headers["x-api-key"] !== apiKey) return { statusCode: 401, body: "" };
  const request = new Request(`https://${event.requestContext.domainName}${event.rawPath}`, {
    method: event.requestContext.http.method,
    headers: event.headers,
    body: event.body,
  });
  const server = makeServer();
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  await server.connect(transport);
  const response = await transport.handleRequest(request);
  const result = { statusCode: response.status, headers: Object.fromEntries(response.headers), body: await response.text() };
  await server.close();
  return result;
}

for (;;) {
  const next = await fetch(`${api}/invocation/next`);
  const id = next.headers.get("lambda-runtime-aws-request-id");
  const event = await next.json();
  const result = await handler(event);
  await fetch(`${api}/invocation/${id}/response`, { method: "POST", body: JSON.stringify(result) });
}
