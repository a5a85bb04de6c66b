// Streams one reply and makes one tool call through Tollgate's /v1/chat/completions with the
// official OpenAI TypeScript SDK; prints what it saw as JSON. Usage: node openai_stream.mjs BASE_URL KEY
import OpenAI from "openai";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0 });
const stream = await client.chat.completions.create({
  model: "claude-sonnet-4-6",
  max_completion_tokens: 64,
  messages: [{ role: "user", content: "Hello from TypeScript" }],
  stream: true,
  stream_options: { include_usage: true },
  user: "ts-user",
});
let text = "";
let usage = null;
let finish = null;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  const choice = chunk.choices[0];
  if (choice?.delta?.content) text += choice.delta.content;
  if (choice?.finish_reason) finish = choice.finish_reason;
}
const tools = [{
  type: "function",
  function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
}];
const called = await client.chat.completions.create({
  model: "claude-sonnet-4-6",
  messages: [{ role: "user", content: "Weather in Paris?" }],
  tools,
  tool_choice: "required",
});
const call = called.choices[0].message.tool_calls[0];
console.log(JSON.stringify({ text, usage, finish, tool: call.function.name, args: JSON.parse(call.function.arguments) }));
