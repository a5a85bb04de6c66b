/* Billing: the Razorpay webhook inbox's health, and every tenant's subscription. */

import { adminJson } from "../admin-api.js";
import { badge, h, liveSection, table, when } from "./ui.js";

const card = (id, label, value, bad) => h("div", { class: `card${bad ? " bad" : ""}`, id }, h("div", { class: "label" }, label), h("div", { class: "value" }, String(value)));

function inbox() {
  return liveSection("Webhook inbox", "inbox", async () => {
    const s = await adminJson("/admin/billing/inbox");
    const last = s.last_event;
    return [
      s.enabled ? null : h("p", { class: "hint" }, "Billing is off on this server (RAZORPAY_* unset): /webhooks/razorpay answers 503."),
      h("div", { class: "cards" },
        card("inbox-received", "Events received", s.received),
        card("inbox-pending", "Pending (being retried)", s.pending, s.pending > 0),
        card("inbox-failing", "Failing", s.failing, s.failing > 0),
        card("inbox-attempts", "Background attempts", s.attempts)),
      h("p", {}, "Last event: ", last ? [h("span", { class: "mono" }, last.event), " received ", when(last.received_at), last.processed_at ? ", applied." : ", not applied yet."] : h("span", { class: "muted" }, "none yet")),
      s.oldest_pending_at ? h("p", { class: "error" }, "Oldest pending event received ", when(s.oldest_pending_at), ".") : null,
      h("h3", {}, "Failing events"),
      table("inbox-failures", "Failing webhook events", [{ title: "Event id" }, { title: "Event" }, { title: "Subscription" }, { title: "Received" }, { title: "Attempts", class: "num" }, { title: "Error" }],
        s.failures.map((f) => [h("span", { class: "mono" }, f.event_id), f.event, f.subscription_id || "–", when(f.received_at), String(f.attempts), f.error || "–"]),
        "No failing events."),
    ];
  });
}

function subscriptions() {
  return liveSection("Subscriptions", "subscriptions", async () => {
    const tenants = (await adminJson("/admin/tenants")).filter((t) => t.subscription);
    return table("subscription-list", "Subscriptions", [{ title: "Tenant" }, { title: "Plan" }, { title: "Status" }, { title: "Cycle ends" }, { title: "Payment page" }],
      tenants.map((t) => [
        h("a", { href: `/console/tenants/${t.id}` }, t.name), t.plan, badge(t.subscription.status, "sub"), when(t.subscription.current_end, "–"),
        t.subscription.short_url ? h("a", { href: t.subscription.short_url, rel: "noreferrer", target: "_blank" }, t.subscription.short_url) : "–",
      ]), "No subscriptions yet.");
  });
}

export async function render(view) {
  const parts = [inbox(), subscriptions()];
  view.append(h("h1", {}, "Billing"), ...parts);
  await Promise.all(parts.map((p) => p.ready));
}
