/* Small DOM helpers shared by the console's views. Everything is built with createElement and
   textContent (never innerHTML), so no server value is ever parsed as markup. */

import { ApiError } from "../admin-api.js";

/** h("td", {class: "num", title: "…", onclick: fn}, "text", child, …) */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function setStatus(state, text) {
  const el = document.getElementById("status");
  el.dataset.state = state;
  el.textContent = text || "";
}

/** Report a failed action in the status line: the API's message, with its error type. */
export function showError(err, doing) {
  const detail = err instanceof ApiError ? `${err.message} (${err.type})` : String(err);
  setStatus("error", `${doing} failed: ${detail}`);
}

/** The confirmation dialog (a real <dialog>, modal: focus stays inside, Escape cancels). */
export function confirmAction(title, text, okLabel = "Confirm") {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = okLabel;
  const opener = document.activeElement;
  return new Promise((resolve) => {
    dialog.returnValue = "cancel";
    dialog.addEventListener(
      "close",
      () => {
        if (opener && opener.isConnected) opener.focus();
        resolve(dialog.returnValue === "ok");
      },
      { once: true },
    );
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  });
}

/** A decimal string as dollars, exact, with at least cents: "2.5" → "$2.50", "0.004215" kept. */
export function money(value) {
  if (value === null || value === undefined) return "–";
  const [int, frac = ""] = String(value).split(".");
  return `$${int}.${frac.padEnd(2, "0")}`;
}

/** An ISO time as "YYYY-MM-DD HH:MM UTC" (the full value in a tooltip). */
export function when(iso, never = "never") {
  if (!iso) return h("span", { class: "muted" }, never);
  const date = new Date(iso);
  const text = Number.isNaN(date.getTime())
    ? String(iso)
    : `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
  return h("time", { datetime: iso, title: iso }, text);
}

/** A value from a datetime-local input (read as UTC) as ISO 8601, or null when empty. */
export function utcFromInput(value) {
  return value ? `${value.length === 16 ? value + ":00" : value}Z` : null;
}

/** A panel with a heading; returns the panel (append the content to it). */
export function panel(title, attrs = {}, ...children) {
  const id = attrs.id ? `${attrs.id}-title` : undefined;
  return h(
    "section",
    { class: "panel", "aria-labelledby": id, ...attrs },
    h("h2", { id }, title),
    ...children,
  );
}

/**
 * A table in a horizontally scrolling box (narrow screens scroll the table, not the page).
 * `columns`: [{title, class?}]; `rows`: arrays of cells (text or nodes).
 */
export function table(id, caption, columns, rows, empty = "Nothing yet.") {
  const head = h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class }, c.title)));
  const body = rows.length
    ? rows.map((cells) =>
        h(
          "tr",
          {},
          cells.map((cell, i) => h("td", { class: columns[i] && columns[i].class, "data-label": columns[i] && columns[i].title }, cell)),
        ),
      )
    : [h("tr", {}, h("td", { colspan: String(columns.length), class: "empty" }, empty))];
  return h(
    "div",
    { class: "scroll", tabindex: "0", role: "region", "aria-label": caption },
    h("table", { id, class: "stack" }, h("caption", { class: "visually-hidden" }, caption), h("thead", {}, head), h("tbody", {}, body)),
  );
}

/** A labelled control: label text above the input. */
export function field(label, control, hint) {
  return h("label", { class: "field" }, h("span", {}, label), control, hint ? h("small", {}, hint) : null);
}

export const input = (attrs) => h("input", { type: "text", ...attrs });

export function select(attrs, options, selected) {
  return h(
    "select",
    attrs,
    options.map(([value, text]) => h("option", { value, selected: value === selected }, text)),
  );
}

/** Run `action` when `form` is submitted, with its submit button disabled meanwhile. */
export function onSubmit(form, doing, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    try {
      await action(new FormData(form));
    } catch (err) {
      showError(err, doing);
    } finally {
      if (button) button.disabled = false;
    }
  });
  return form;
}

/** A secret shown once: read-only text with a Copy button and a warning. */
export function shownOnce(id, label, secret, note) {
  const value = h("input", { id, class: "mono secret", readonly: true, value: secret, "aria-label": label });
  const copy = h("button", { type: "button", class: "copy" }, "Copy");
  copy.addEventListener("click", async () => {
    value.select();
    try {
      await navigator.clipboard.writeText(secret);
    } catch (_) {
      document.execCommand("copy"); // clipboard API unavailable (plain http): copy the selection
    }
    copy.textContent = "Copied";
  });
  return h(
    "div",
    { class: "once", role: "alert" },
    h("strong", {}, label),
    h("div", { class: "row" }, value, copy),
    h("p", { class: "hint" }, note || "Shown once: it is stored hashed and cannot be shown again."),
  );
}

/** Trimmed text of a form field, or undefined when empty. */
export function given(data, name) {
  const value = String(data.get(name) ?? "").trim();
  return value === "" ? undefined : value;
}

export function badge(text, kind) {
  return h("span", { class: `badge ${kind || text}` }, text);
}

export function readOnlyNote(ctx) {
  return ctx.canWrite
    ? null
    : h("p", { class: "hint readonly" }, "Read-only: this admin token has the viewer role.");
}

/**
 * A panel whose body `build(refresh)` draws (async); `refresh(extra)` draws it again, with
 * `extra` (e.g. a key shown once) put above the new body. A failure shows in the panel only.
 */
export function liveSection(title, id, build) {
  const body = h("div", { class: "body" });
  const section = panel(title, { id }, body);
  const refresh = async (extra) => {
    try {
      const nodes = await build(refresh);
      body.replaceChildren(...[extra, nodes].flat().filter(Boolean));
    } catch (err) {
      body.replaceChildren(h("p", { class: "error" }, `Could not load: ${err.message}`));
    }
  };
  section.refresh = refresh;
  section.ready = refresh();
  return section;
}

/**
 * A modal form in a <dialog>: resolves to its FormData when submitted with OK, else null.
 * The dialog is removed when closed; focus returns to what opened it.
 */
export function formDialog(id, title, fields, okLabel = "Save", danger = false) {
  const opener = document.activeElement;
  const ok = h("button", { type: "submit", value: "ok", class: danger ? "danger" : "primary" }, okLabel);
  const cancel = h("button", { type: "submit", value: "cancel", formnovalidate: true }, "Cancel");
  const form = h("form", { method: "dialog", autocomplete: "off" }, h("h2", { id: `${id}-title` }, title), ...fields, h("div", { class: "row end" }, cancel, ok));
  const dialog = h("dialog", { id, "aria-labelledby": `${id}-title` }, form);
  document.body.append(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const data = dialog.returnValue === "ok" ? new FormData(form) : null;
      dialog.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve(data);
    });
    dialog.showModal();
    const first = form.querySelector("input, select");
    (first || cancel).focus();
  });
}
