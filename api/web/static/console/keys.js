/* A tenant's API keys: list, create (the key shown once, with a Copy button), edit the policy
   (expiry, allowed models, monthly budget), rotate, revoke. */

import { adminJson } from "../admin-api.js";
import { badge, confirmAction, field, formDialog, given, h, input, liveSection, money, onSubmit, setStatus, shownOnce, showError, table, utcFromInput, when } from "./ui.js";

const ROTATE_GRACE = [
  ["0", "now"],
  ["3600", "in 1 hour"],
  ["86400", "in 24 hours"],
  ["604800", "in 7 days"],
];

function state(key) {
  if (key.revoked_at && new Date(key.revoked_at) <= new Date()) return "revoked";
  if (key.expires_at && new Date(key.expires_at) <= new Date()) return "expired";
  if (key.revoked_at) return "revoking";
  return "active";
}

const models = (list) => (list && list.length ? list.join(", ") : h("span", { class: "muted" }, "plan's"));

/** The policy fields of a create or edit form; `key` gives current values. */
function policyFields(prefix, key = {}) {
  const expires = key.expires_at ? key.expires_at.slice(0, 16) : "";
  return [
    field("Expires (UTC)", input({ id: `${prefix}-expires`, name: "expires_at", type: "datetime-local", value: expires }), "empty: never"),
    field("Allowed models", input({ id: `${prefix}-models`, name: "allowed_models", value: (key.allowed_models || []).join(", "), placeholder: "claude-haiku-*, claude-sonnet-4-6" }), "comma-separated ids or patterns; empty: the plan's"),
    field("Budget / month (USD)", input({ id: `${prefix}-budget`, name: "monthly_budget_usd", inputmode: "decimal", value: key.monthly_budget_usd ?? "" }), "empty: none"),
  ];
}

/** The policy a form holds; with `all`, empty fields are sent as null (to clear them). */
function policy(data, all) {
  const list = (given(data, "allowed_models") || "").split(",").map((m) => m.trim()).filter(Boolean);
  const out = {
    expires_at: utcFromInput(given(data, "expires_at")),
    allowed_models: list.length ? list : null,
    monthly_budget_usd: given(data, "monthly_budget_usd") ?? null,
  };
  return all ? out : Object.fromEntries(Object.entries(out).filter(([, v]) => v !== null));
}

function createForm(tenantId, refresh) {
  const form = h("form", { id: "create-key", class: "row", autocomplete: "off" },
    field("Name", input({ id: "key-name", name: "name", placeholder: "e.g. production" })),
    field("End user", input({ id: "key-user", name: "user", placeholder: "optional" })),
    ...policyFields("key"),
    h("button", { type: "submit", class: "primary" }, "Create key"),
  );
  return onSubmit(form, "Creating the key", async (data) => {
    const body = { ...policy(data, false), name: given(data, "name"), user: given(data, "user") };
    const made = await adminJson(`/admin/tenants/${tenantId}/keys`, { method: "POST", body });
    form.reset();
    setStatus("done", `Key ${made.prefix}… created. Copy it now: it is shown once.`);
    await refresh(shownOnce("new-key", `New key ${made.prefix}…`, made.key));
  });
}

async function edit(key, refresh) {
  const data = await formDialog("edit-key", `Policy of ${key.prefix}…`, policyFields("edit", key), "Save policy");
  if (!data) return;
  try {
    await adminJson(`/admin/keys/${key.id}`, { method: "PATCH", body: policy(data, true) });
    setStatus("done", `Policy of ${key.prefix}… saved.`);
    await refresh();
  } catch (err) {
    showError(err, "Saving the policy");
  }
}

async function rotate(key, refresh) {
  const grace = h("select", { id: "rotate-grace", name: "grace" }, ROTATE_GRACE.map(([v, t]) => h("option", { value: v, selected: v === "86400" }, t)));
  const fields = [
    h("p", {}, `A new key replaces ${key.prefix}…; both work until the old one is revoked.`),
    field("Revoke the old key", grace),
  ];
  const data = await formDialog("rotate-key", `Rotate ${key.prefix}…?`, fields, "Rotate", true);
  if (!data) return;
  const at = new Date(Date.now() + 1000 * Number(data.get("grace"))).toISOString();
  try {
    const made = await adminJson(`/admin/keys/${key.id}/rotate`, { method: "POST", body: { revoke_at: at } });
    setStatus("done", `Key ${key.prefix}… rotated: the new key is ${made.prefix}…, shown once.`);
    await refresh(shownOnce("new-key", `New key ${made.prefix}… (replaces ${key.prefix}…)`, made.key));
  } catch (err) {
    showError(err, "Rotating the key");
  }
}

async function revoke(key, refresh) {
  const text = `Requests with ${key.prefix}… will be refused (401) from now on. This cannot be undone.`;
  if (!(await confirmAction(`Revoke key ${key.prefix}…?`, text, "Revoke"))) return;
  try {
    await adminJson(`/admin/keys/${key.id}`, { method: "DELETE" });
    setStatus("done", `Key ${key.prefix}… revoked.`);
    await refresh();
  } catch (err) {
    showError(err, "Revoking the key");
  }
}

function actions(ctx, key, refresh) {
  if (!ctx.canWrite || state(key) === "revoked") return "";
  const button = (label, action, cls) => h("button", { type: "button", class: `small ${cls || ""}`, "aria-label": `${label} ${key.prefix}`, onclick: () => action(key, refresh) }, label);
  return h("div", { class: "actions" }, button("Edit", edit), button("Rotate", rotate), button("Revoke", revoke, "danger"));
}

const COLUMNS = [
  { title: "Key" }, { title: "Name" }, { title: "User" }, { title: "State" }, { title: "Created" },
  { title: "Last used" }, { title: "Expires" }, { title: "Models" }, { title: "Budget", class: "num" }, { title: "Actions" },
];

export function keysSection(ctx, tenantId) {
  let form = null;
  return liveSection("API keys", "keys", async (refresh) => {
    const keys = (await adminJson(`/admin/tenants/${tenantId}/keys`)).data;
    const rows = keys.map((k) => [
      h("span", { class: "mono", title: k.id }, `${k.prefix}…`),
      k.name || h("span", { class: "muted" }, "–"),
      k.user || h("span", { class: "muted" }, "–"),
      state(k) === "revoking" ? h("span", {}, badge("revoking"), " at ", when(k.revoked_at)) : badge(state(k)),
      when(k.created_at),
      when(k.last_used_at),
      when(k.expires_at),
      models(k.allowed_models),
      money(k.monthly_budget_usd),
      actions(ctx, k, refresh),
    ]);
    if (ctx.canWrite && !form) form = createForm(tenantId, refresh);
    return [table("key-list", "API keys", COLUMNS, rows, "No keys yet."), ctx.canWrite ? h("h3", {}, "New key") : null, form];
  });
}
