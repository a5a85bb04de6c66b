/* An incremental Server-Sent Events parser for fetch() response streams (EventSource cannot
 * POST or send headers). It follows the HTML "event stream" rules:
 *
 * - bytes are decoded as UTF-8 with a streaming TextDecoder, so a character split across two
 *   chunks is decoded once, whole; a leading BOM is dropped;
 * - lines end with CRLF, LF or CR, and a CRLF split across two chunks counts once;
 * - a blank line dispatches the event; `data:` lines are joined with "\n"; one space after the
 *   colon is dropped; a line without a colon is a field with an empty value; lines starting with
 *   ":" are comments; the event name defaults to "message"; an event without data is not
 *   dispatched; `id` is kept, `retry` and unknown fields are ignored;
 * - an event not followed by its blank line when the stream ends is dropped.
 *
 * A classic script (window.TollgateSSE in the browser) that is also a CommonJS module (node's
 * test runner: tests/web/sse.test.mjs).
 */
(function (root, factory) {
  "use strict";
  const api = factory();
  if (typeof module === "object" && module.exports) {
    module.exports = api;
  } else {
    root.TollgateSSE = api;
  }
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  class SSEParser {
    constructor() {
      this._decoder = new TextDecoder("utf-8");
      this._buffer = "";
      this._started = false;
      this._skipLF = false; // the previous chunk ended with CR: a LF opening this one is its pair
      this._event = "";
      this._data = [];
      this.lastEventId = "";
    }

    /** Feed bytes (Uint8Array) or text; returns the events this chunk completed, in order. */
    feed(chunk) {
      const text =
        typeof chunk === "string" ? chunk : this._decoder.decode(chunk, { stream: true });
      return this._push(text);
    }

    /** The stream ended: whatever is not a complete event is dropped, as the spec says. */
    end() {
      const events = this._push(this._decoder.decode());
      this._buffer = "";
      this._event = "";
      this._data = [];
      return events;
    }

    _push(text) {
      let buf = this._buffer + text;
      if (!this._started && buf.length > 0) {
        this._started = true;
        if (buf.charCodeAt(0) === 0xfeff) buf = buf.slice(1);
      }
      const events = [];
      let pos = 0;
      if (this._skipLF && buf.length > 0) {
        if (buf.charCodeAt(0) === 10) pos = 1;
        this._skipLF = false;
      }
      let lf = buf.indexOf("\n", pos);
      let cr = buf.indexOf("\r", pos);
      while (lf !== -1 || cr !== -1) {
        let end;
        let next;
        if (cr === -1 || (lf !== -1 && lf < cr)) {
          end = lf;
          next = lf + 1;
        } else if (cr + 1 < buf.length) {
          end = cr;
          next = buf.charCodeAt(cr + 1) === 10 ? cr + 2 : cr + 1;
        } else {
          end = cr; // a CR closing the chunk: a LF may follow in the next one
          next = cr + 1;
          this._skipLF = true;
        }
        this._line(buf.slice(pos, end), events);
        pos = next;
        if (lf !== -1 && lf < pos) lf = buf.indexOf("\n", pos);
        if (cr !== -1 && cr < pos) cr = buf.indexOf("\r", pos);
      }
      this._buffer = buf.slice(pos);
      return events;
    }

    _line(line, events) {
      if (line === "") {
        this._dispatch(events);
        return;
      }
      if (line.charCodeAt(0) === 58) return; // ":" comment (e.g. keep-alive pings)
      const colon = line.indexOf(":");
      let field = line;
      let value = "";
      if (colon !== -1) {
        field = line.slice(0, colon);
        value = line.slice(colon + 1);
        if (value.charCodeAt(0) === 32) value = value.slice(1);
      }
      if (field === "data") {
        this._data.push(value);
      } else if (field === "event") {
        this._event = value;
      } else if (field === "id" && !value.includes("\0")) {
        this.lastEventId = value;
      }
    }

    _dispatch(events) {
      if (this._data.length > 0) {
        events.push({
          event: this._event || "message",
          data: this._data.join("\n"),
          id: this.lastEventId,
        });
      }
      this._data = [];
      this._event = "";
    }
  }

  /** Every event of a ReadableStream of bytes (e.g. `response.body`), as they complete.
   * Leaving the loop early cancels the stream (which closes the connection). */
  async function* readEvents(stream) {
    const reader = stream.getReader();
    const parser = new SSEParser();
    let finished = false;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        yield* parser.feed(value);
      }
      finished = true;
      yield* parser.end();
    } finally {
      if (!finished) reader.cancel().catch(() => {});
      reader.releaseLock();
    }
  }

  return { SSEParser, readEvents };
});
