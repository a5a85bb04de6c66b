/* A tenant's budget alerts: the webhook URL and thresholds, and the deliveries made. */

import { ApiError, adminJson } from "../admin-api.js";
import { badge, field, given, h, input, liveSection, onSubmit, setStatus, shownOnce, table, when } from "./ui.js";

/** The current settings, or null where none are set (or the server has no such route). */
async function settings(tenantId) {
  try {
    return await adminJson(`/admin/tenants/${tenantId}/alerts`);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return null;
    throw err;
  }
}

function alertForm(tenantId, current, refresh) {
  const form = h("form", { id: "alerts-form", class: "row", autocomplete: "off" },
    field("Webhook URL", input({ id: "alert-url", name: "url", type: "url", required: true, value: current ? current.url : "", placeholder: "https://example.com/tollgate" }), ""),
    field("Thresholds (%)", input({ id: "alert-thresholds", name: "thresholds", value: current ? current.thresholds.join(", ") : "50, 80, 100" }), "of the period budget, comma-separated"),
    h("button", { type: "submit" }, "Save alerts"));
  form.firstChild.classList.add("grow");
  return onSubmit(form, "Saving the alerts", async (data) => {
    const thresholds = (given(data, "thresholds") || "").split(",").map((t) => t.trim()).filter(Boolean).map(Number);
    const saved = await adminJson(`/admin/tenants/${tenantId}/alerts`, { method: "PUT", body: { url: given(data, "url"), thresholds } });
    setStatus("done", "Alert settings saved.");
    await refresh(saved.secret ? shownOnce("alert-secret", "Signing secret (Tollgate-Signature)", saved.secret, "Verify each delivery with it: HMAC-SHA256 of \"<t>.<body>\".") : null);
  });
}

const COLUMNS = [
  { title: "Created" }, { title: "Threshold", class: "num" }, { title: "User" }, { title: "State" },
  { title: "Attempts", class: "num" }, { title: "Last attempt" }, { title: "Last answer" }, { title: "Event id" },
];

async function deliveries(tenantId) {
  try {
    return (await adminJson(`/admin/tenants/${tenantId}/alerts/deliveries`)).data;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return [];
    throw err;
  }
}

function deliveryRow(d) {
  const delivered = d.delivered_at || d.status === "delivered";
  return [
    when(d.created_at),
    `${d.threshold_pct ?? "–"}%`,
    d.user || h("span", { class: "muted" }, "tenant"),
    badge(delivered ? "delivered" : d.status || "pending"),
    String(d.attempts ?? 0),
    when(d.last_attempt_at, "–"),
    d.last_status ? String(d.last_status) : d.last_error || "–",
    h("span", { class: "mono", title: d.id }, String(d.id).slice(0, 8)),
  ];
}

export function alertsSection(ctx, tenantId) {
  return liveSection("Budget alerts", "alerts", async (refresh) => {
    const [current, sent] = await Promise.all([settings(tenantId), deliveries(tenantId)]);
    const now = current
      ? h("p", {}, "Alerts go to ", h("span", { class: "mono" }, current.url), ` at ${current.thresholds.join(", ")} % of the budget.`)
      : h("p", { class: "muted" }, "No alert webhook set.");
    return [
      now,
      ctx.canWrite ? alertForm(tenantId, current, refresh) : null,
      h("h3", {}, "Deliveries"),
      table("delivery-list", "Alert deliveries", COLUMNS, sent.map(deliveryRow), "No alerts sent yet."),
    ];
  });
}
