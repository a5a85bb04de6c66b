// Streams one reply through Tollgate with the official TypeScript SDK and prints the final
// usage as JSON. Usage: node stream.mjs BASE_URL KEY
import Anthropic from "@anthropic-ai/sdk";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new Anthropic({ baseURL, apiKey, maxRetries: 0 });
const stream = client.messages.stream({
  model: "claude-sonnet-4-6",
  max_tokens: 64,
  messages: [{ role: "user", content: "Hello from TypeScript" }],
  metadata: { user_id: "ts-user" },
});
let text = "";
stream.on("text", (t) => { text += t; });
const final = await stream.finalMessage();
console.log(JSON.stringify({ text, usage: final.usage }));
