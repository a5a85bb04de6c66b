/* The audit log: every change made through the admin API, the CLI or the console, newest first,
   with filters (action, actor, target id, time range). It is append-only: nothing here edits. */

import { adminJson } from "../admin-api.js";
import { field, given, h, input, onSubmit, panel, setStatus, table, utcFromInput, when } from "./ui.js";

const COLUMNS = [
  { title: "When" }, { title: "Actor" }, { title: "Action" }, { title: "Target" }, { title: "Change" }, { title: "Request id" },
];
const FILTERS = ["action", "actor", "target_id", "from", "to"];

function change(entry) {
  const summary = (entry.before && entry.after ? "changed" : entry.after ? "created" : "removed");
  return h("details", {}, h("summary", {}, summary),
    h("pre", { class: "json" }, JSON.stringify({ before: entry.before, after: entry.after }, null, 2)));
}

function rows(entries) {
  return entries.map((e) => [
    when(e.at), e.actor, h("span", { class: "mono action" }, e.action),
    h("span", { class: "target", title: e.target_id }, `${e.target_type} ${String(e.target_id ?? "").slice(0, 8)}`),
    change(e), h("span", { class: "mono", title: e.request_id }, String(e.request_id ?? "").slice(0, 12)),
  ]);
}

function filterForm(params, apply) {
  const value = (name) => params.get(name) || "";
  const form = h("form", { id: "audit-filters", class: "row", autocomplete: "off" },
    field("Action", input({ id: "audit-action", name: "action", value: value("action"), placeholder: "e.g. key.revoke" })),
    field("Actor", input({ id: "audit-actor", name: "actor", value: value("actor"), placeholder: "token name" })),
    field("Target id", input({ id: "audit-target", name: "target_id", value: value("target_id") })),
    field("From (UTC)", input({ id: "audit-from", name: "from", type: "datetime-local", value: value("from").slice(0, 16) })),
    field("To (UTC)", input({ id: "audit-to", name: "to", type: "datetime-local", value: value("to").slice(0, 16) })),
    h("button", { type: "submit", class: "primary" }, "Filter"));
  return onSubmit(form, "Filtering", async (data) => {
    const next = new URLSearchParams();
    for (const name of FILTERS) {
      const raw = given(data, name);
      if (raw) next.set(name, name === "from" || name === "to" ? utcFromInput(raw) : raw);
    }
    history.replaceState(null, "", next.toString() ? `?${next}` : location.pathname);
    await apply(next);
  });
}

export async function render(view) {
  const params = new URLSearchParams(location.search);
  const box = h("div", {});
  const apply = async (filter) => {
    const query = Object.fromEntries([...filter].filter(([k]) => FILTERS.includes(k)));
    const entries = (await adminJson("/admin/audit", { params: query })).data;
    box.replaceChildren(h("p", { class: "hint", id: "audit-count" }, `${entries.length} entries.`), table("audit-list", "Audit log", COLUMNS, rows(entries), "No entries match."));
    setStatus("loaded", "");
  };
  view.append(h("h1", {}, "Audit log"), panel("Filters", { id: "audit-filter-panel" }, filterForm(params, apply)), panel("Entries", { id: "audit-entries" }, box));
  await apply(params);
}
