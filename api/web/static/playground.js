/* The chat playground: POST /chat with fetch() and render its SSE events as they arrive. */
(function () {
  "use strict";

  const KEY_STORAGE = "tollgate.playground.key";
  const $ = (id) => document.getElementById(id);
  const els = {
    key: $("key"),
    forget: $("forget-key"),
    model: $("model"),
    maxTokens: $("max-tokens"),
    user: $("user"),
    system: $("system"),
    conversation: $("conversation"),
    empty: $("empty"),
    form: $("chat-form"),
    message: $("message"),
    send: $("send"),
    stop: $("stop"),
    clear: $("clear"),
    status: $("status"),
    usagePanel: $("usage-panel"),
  };

  let history = []; // completed turns: [{role, content}]
  let controller = null;

  els.key.value = sessionStorage.getItem(KEY_STORAGE) || "";
  els.key.addEventListener("input", () => {
    const key = els.key.value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  });
  els.forget.addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    els.key.value = "";
    els.key.focus();
  });
  els.form.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  els.message.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      send();
    }
  });
  els.stop.addEventListener("click", () => controller && controller.abort());
  els.clear.addEventListener("click", () => {
    if (controller) controller.abort();
    history = [];
    els.conversation.replaceChildren(els.empty);
    els.empty.hidden = false;
    els.usagePanel.hidden = true;
    setStatus("idle", "");
  });

  function setStatus(state, text) {
    els.status.dataset.state = state;
    els.status.textContent = text;
  }

  function setBusy(busy) {
    els.send.disabled = busy;
    els.stop.disabled = !busy;
  }

  function appendTurn(role, text) {
    els.empty.hidden = true;
    const turn = document.createElement("div");
    turn.className = "turn " + role;
    const who = document.createElement("div");
    who.className = "who";
    who.textContent = role === "user" ? "You" : "Claude";
    const body = document.createElement("div");
    body.className = "text";
    const node = document.createTextNode(text);
    body.append(node);
    turn.append(who, body);
    els.conversation.append(turn);
    return { turn, node };
  }

  function requestBody(text) {
    const body = { messages: [...history, { role: "user", content: text }] };
    const model = els.model.value.trim();
    const maxTokens = els.maxTokens.value.trim();
    const user = els.user.value.trim();
    const system = els.system.value.trim();
    if (model) body.model = model;
    if (maxTokens) body.max_tokens = Number.parseInt(maxTokens, 10);
    if (user) body.user = user;
    if (system) body.system = system;
    return body;
  }

  function showUsage(usage, model, requestId) {
    const set = (id, value) => ($(id).textContent = value);
    const fmt = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : "–");
    set("usage-input", fmt(usage.input_tokens));
    set("usage-output", fmt(usage.output_tokens));
    set("usage-cache-write", fmt(usage.cache_creation_input_tokens));
    set("usage-cache-read", fmt(usage.cache_read_input_tokens));
    set("usage-cost", "$" + usage.cost_usd); // a decimal string, shown exactly as billed
    set("usage-model", model || "–");
    set("request-id", requestId || "–");
    els.usagePanel.hidden = false;
  }

  async function httpError(response) {
    let message = `HTTP ${response.status}`;
    try {
      const body = await response.json();
      if (body && body.error) message = `${body.error.type}: ${body.error.message}`;
    } catch (_) {
      /* not JSON: keep the status */
    }
    const retry = response.headers.get("retry-after");
    return retry ? `${message} (retry after ${retry} s)` : message;
  }

  async function send() {
    const key = els.key.value.trim();
    const text = els.message.value.trim();
    if (!key) {
      setStatus("error", "Paste a tenant API key first.");
      els.key.focus();
      return;
    }
    if (!text || controller) return;
    sessionStorage.setItem(KEY_STORAGE, key);
    const body = requestBody(text);
    const userTurn = appendTurn("user", text);
    const reply = appendTurn("assistant", "");
    reply.turn.classList.add("streaming");
    els.message.value = "";
    setBusy(true);
    setStatus("streaming", "Waiting for the first token…");
    controller = new AbortController();
    const started = { model: null, requestId: null };
    let outcome = null; // "done" | error message
    try {
      const response = await fetch("/chat", {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": key },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (!response.ok) {
        outcome = await httpError(response);
      } else {
        for await (const ev of window.TollgateSSE.readEvents(response.body)) {
          const data = JSON.parse(ev.data);
          if (ev.event === "start") {
            started.model = data.model;
            started.requestId = data.request_id;
          } else if (ev.event === "delta") {
            reply.node.appendData(data.text);
            setStatus("streaming", "Streaming…");
          } else if (ev.event === "usage") {
            showUsage(data, started.model, started.requestId);
          } else if (ev.event === "done") {
            outcome = "done";
            setStatus("done", `Done (${data.stop_reason || "stop"})`);
          } else if (ev.event === "error") {
            outcome = `${data.type}: ${data.message}`;
          }
        }
        if (outcome === null) outcome = "the stream ended before the reply was complete";
      }
    } catch (err) {
      outcome = err.name === "AbortError" ? "stopped" : `network error: ${err.message}`;
    } finally {
      controller = null;
      setBusy(false);
      reply.turn.classList.remove("streaming");
    }
    if (outcome === "done") {
      history.push({ role: "user", content: text }, { role: "assistant", content: reply.node.data });
    } else {
      // A failed turn stays on screen but not in the conversation sent next time.
      userTurn.turn.classList.add("failed");
      reply.turn.classList.add("failed");
      if (!reply.node.data) reply.turn.remove();
      setStatus("error", outcome === "stopped" ? "Stopped." : `Error — ${outcome}`);
    }
    els.message.focus();
  }
})();
