// The playground's SSE parser (api/web/static/sse.js), fed the same stream cut at every
// possible point. Run with `node --test tests/web/sse.test.mjs` (tests/web/test_sse_js.py
// does, from pytest). With TOLLGATE_SSE_SAMPLE / TOLLGATE_SSE_EXPECTED set, it also parses a
// real /chat stream and compares with what Tollgate's Python scanner found in it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import sse from "../../api/web/static/sse.js";

const { SSEParser, readEvents } = sse;

// A /chat stream as sse-starlette writes it (CRLF), with LF and CR endings mixed in, a ping
// comment, multi-byte characters, multi-line data, an event without data and a cut-off tail.
const STREAM = [
  ": ping - 2026-11-01 10:00:00\r\n\r\n",
  'event: start\r\ndata: {"request_id":"7d0c","model":"claude-sonnet-4-6"}\r\n\r\n',
  'event: delta\r\ndata: {"text":" Hello"}\r\n\r\n',
  'event: delta\r\ndata: {"text":"\\n"}\r\n\r\n',
  'event: delta\r\ndata: {"text":" naïve — 日本語 🙂"}\r\n\r\n',
  'event: delta\ndata: {"text":" lf only"}\n\n',
  'event: delta\rdata: {"text":" cr only"}\r\r',
  "event: note\ndata: line one\ndata:line two\ndata\n\n",
  "id: 7\nevent: nothing\n\n",
  "data: no name\r\n\r\n",
  "event: usage\r\n" +
    'data: {"input_tokens":12,"output_tokens":4,"cache_creation_input_tokens":0,' +
    '"cache_read_input_tokens":0,"cost_usd":"0.0000960000"}\r\n\r\n',
  'event: done\r\ndata: {"stop_reason":"end_turn"}\r\n\r\n',
  'event: delta\r\ndata: {"text":"never finished"}\r\n',
].join("");

const EXPECTED = [
  ["start", '{"request_id":"7d0c","model":"claude-sonnet-4-6"}'],
  ["delta", '{"text":" Hello"}'],
  ["delta", '{"text":"\\n"}'],
  ["delta", '{"text":" naïve — 日本語 🙂"}'],
  ["delta", '{"text":" lf only"}'],
  ["delta", '{"text":" cr only"}'],
  ["note", "line one\nline two\n"],
  ["message", "no name"],
  [
    "usage",
    '{"input_tokens":12,"output_tokens":4,"cache_creation_input_tokens":0,' +
      '"cache_read_input_tokens":0,"cost_usd":"0.0000960000"}',
  ],
  ["done", '{"stop_reason":"end_turn"}'],
];

const BYTES = new TextEncoder().encode(STREAM);

function parseChunks(chunks) {
  const parser = new SSEParser();
  const out = [];
  for (const chunk of chunks) {
    for (const ev of parser.feed(chunk)) out.push([ev.event, ev.data]);
  }
  for (const ev of parser.end()) out.push([ev.event, ev.data]);
  return out;
}

function splitsOf(whole) {
  const cuts = [];
  for (let i = 0; i <= whole.length; i++) cuts.push([whole.slice(0, i), whole.slice(i)]);
  return cuts;
}

function assertEveryCut(whole, expected) {
  for (const [i, chunks] of splitsOf(whole).entries()) {
    assert.deepEqual(parseChunks(chunks), expected, `split at ${i}`);
  }
}

test("the whole stream parses to the expected events", () => {
  assert.deepEqual(parseChunks([BYTES]), EXPECTED);
});

test("cutting the bytes at every point gives the same events", () => {
  assertEveryCut(BYTES, EXPECTED);
});

test("cutting the text at every point gives the same events", () => {
  assertEveryCut(STREAM, EXPECTED);
});

test("one byte at a time gives the same events", () => {
  const chunks = Array.from(BYTES, (b) => Uint8Array.of(b));
  assert.deepEqual(parseChunks(chunks), EXPECTED);
});

test("random chunkings give the same events", () => {
  let seed = 20261101;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (let run = 0; run < 300; run++) {
    const chunks = [];
    for (let i = 0; i < BYTES.length; ) {
      const size = 1 + Math.floor(random() * 24);
      chunks.push(BYTES.subarray(i, i + size));
      i += size;
    }
    assert.deepEqual(parseChunks(chunks), EXPECTED, `run ${run}`);
  }
});

test("a leading BOM is dropped and the last id is kept", () => {
  const parser = new SSEParser();
  const bom = Uint8Array.of(0xef, 0xbb, 0xbf);
  assert.deepEqual(parser.feed(bom), []);
  const [ev] = parser.feed(new TextEncoder().encode("id: 42\ndata: x\n\n"));
  assert.deepEqual(ev, { event: "message", data: "x", id: "42" });
});

test("readEvents reads a ReadableStream of byte chunks", async () => {
  const pieces = [BYTES.subarray(0, 101), BYTES.subarray(101, 102), BYTES.subarray(102)];
  const stream = new ReadableStream({
    start(controller) {
      for (const piece of pieces) controller.enqueue(piece);
      controller.close();
    },
  });
  const out = [];
  for await (const ev of readEvents(stream)) out.push([ev.event, ev.data]);
  assert.deepEqual(out, EXPECTED);
});

const sample = process.env.TOLLGATE_SSE_SAMPLE;
const expectedPath = process.env.TOLLGATE_SSE_EXPECTED;

test("a real /chat stream parses like Tollgate's own scanner, at every cut", {
  skip: sample && expectedPath ? false : "TOLLGATE_SSE_SAMPLE not set",
}, () => {
  const bytes = new Uint8Array(readFileSync(sample));
  const expected = JSON.parse(readFileSync(expectedPath, "utf-8"));
  assert.ok(expected.length > 3);
  assertEveryCut(bytes, expected);
});
