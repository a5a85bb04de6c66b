/* One tenant: its status (suspend/resume), plan and limit overrides, keys, end users,
   subscription and budget alerts. Each part is its own panel and reloads on its own. */

import { adminJson } from "../admin-api.js";
import { alertsSection } from "./alerts.js";
import { keysSection } from "./keys.js";
import { planOptions, plansList } from "./tenants.js";
import { badge, confirmAction, field, given, h, input, liveSection, money, onSubmit, select, setStatus, showError, when } from "./ui.js";
import { usersSection } from "./users.js";

const getTenant = (id) => adminJson(`/admin/tenants/${id}`);
const patch = (id, body) => adminJson(`/admin/tenants/${id}`, { method: "PATCH", body });

function statusButton(ctx, tenant, refresh) {
  if (!ctx.canWrite) return null;
  const suspend = tenant.status === "active";
  const button = h("button", { type: "button", id: "toggle-status", class: suspend ? "danger" : "" }, suspend ? "Suspend tenant" : "Resume tenant");
  button.addEventListener("click", async () => {
    if (suspend) {
      const text = `${tenant.name}'s keys will be refused (403) until it is resumed.`;
      if (!(await confirmAction(`Suspend ${tenant.name}?`, text, "Suspend"))) return;
    }
    try {
      await patch(tenant.id, { status: suspend ? "suspended" : "active" });
      setStatus("done", `${tenant.name} is ${suspend ? "suspended" : "active"}.`);
      await refresh();
    } catch (err) {
      showError(err, suspend ? "Suspending" : "Resuming");
    }
  });
  return button;
}

function summary(ctx, id) {
  return liveSection("Overview", "overview", async (refresh) => {
    const t = await getTenant(id);
    document.getElementById("tenant-title").textContent = t.name;
    return [
      h("dl", { class: "facts" },
        h("div", {}, h("dt", {}, "Id"), h("dd", { class: "mono" }, t.id)),
        h("div", {}, h("dt", {}, "Status"), h("dd", {}, badge(t.status))),
        h("div", {}, h("dt", {}, "Plan"), h("dd", {}, t.plan)),
        h("div", {}, h("dt", {}, "Budget / month"), h("dd", {}, money(t.limits.monthly_budget_usd))),
        h("div", {}, h("dt", {}, "Requests / minute"), h("dd", {}, String(t.limits.rpm_limit))),
        h("div", {}, h("dt", {}, "Concurrent"), h("dd", {}, String(t.limits.max_concurrent))),
        h("div", {}, h("dt", {}, "Quota mode"), h("dd", {}, t.limits.quota_mode)),
        h("div", {}, h("dt", {}, "User default budget"), h("dd", {}, money(t.limits.user_default_budget_usd))),
      ),
      statusButton(ctx, t, refresh),
    ];
  });
}

/** Overrides: an empty field clears the tenant's own value (the plan's applies). */
function limitsForm(t, plans, done) {
  const o = t.overrides;
  const num = (name, label, value, placeholder) =>
    field(label, input({ name, id: `limit-${name}`, inputmode: "decimal", value: value ?? "", placeholder: `plan: ${placeholder}` }));
  const form = h("form", { id: "limits", class: "row", autocomplete: "off" },
    field("Plan", select({ name: "plan", id: "limit-plan" }, planOptions(plans), t.plan)),
    num("monthly_budget_usd", "Budget / month (USD)", o.monthly_budget_usd, t.limits.monthly_budget_usd),
    num("rpm_limit", "Requests / minute", o.rpm_limit, t.limits.rpm_limit),
    num("max_concurrent", "Concurrent", o.max_concurrent, t.limits.max_concurrent),
    field("Quota mode", select({ name: "quota_mode", id: "limit-quota_mode" }, [["", "plan's"], ["hard", "hard"], ["soft", "soft"]], o.quota_mode || "")),
    num("user_default_budget_usd", "User default budget (USD)", t.limits.user_default_budget_usd, "none"),
    h("button", { type: "submit", class: "primary" }, "Save limits"),
  );
  return onSubmit(form, "Saving the limits", async (data) => {
    const body = { plan: data.get("plan") };
    for (const name of ["monthly_budget_usd", "user_default_budget_usd", "quota_mode"]) body[name] = given(data, name) ?? null;
    for (const name of ["rpm_limit", "max_concurrent"]) {
      const value = given(data, name);
      body[name] = value === undefined ? null : Number(value);
    }
    await patch(t.id, body);
    setStatus("done", "Limits saved.");
    await done();
  });
}

function limits(ctx, id, plans, onSaved) {
  return liveSection("Plan and limit overrides", "limits-panel", async (refresh) => {
    const t = await getTenant(id);
    if (!ctx.canWrite) return h("p", { class: "hint" }, "Overrides (empty: the plan's): ", JSON.stringify(t.overrides));
    return [h("p", { class: "hint" }, "Leave a field empty to use the plan's value."), limitsForm(t, plans, async () => { await refresh(); await onSaved(); })];
  });
}

function subscription(ctx, id, plans) {
  return liveSection("Subscription", "subscription", async (refresh) => {
    const t = await getTenant(id);
    const s = t.subscription;
    const facts = s
      ? h("dl", { class: "facts" },
          h("div", {}, h("dt", {}, "Id"), h("dd", { class: "mono" }, s.id)),
          h("div", {}, h("dt", {}, "Status"), h("dd", {}, badge(s.status, "sub"))),
          h("div", {}, h("dt", {}, "Current cycle"), h("dd", {}, when(s.current_start, "–"), " → ", when(s.current_end, "–"))),
          h("div", {}, h("dt", {}, "Payment page"), h("dd", {}, s.short_url ? h("a", { href: s.short_url, rel: "noreferrer", target: "_blank", id: "short-url" }, s.short_url) : "–")),
        )
      : h("p", { class: "muted" }, "No Razorpay subscription.");
    const billable = plans.filter((p) => p.razorpay_plan_id);
    if (!ctx.canWrite) return facts;
    if (!billable.length) return [facts, h("p", { class: "hint" }, "No plan has a Razorpay plan id yet: set one on the ", h("a", { href: "/console/plans" }, "Plans"), " page to offer a subscription.")];
    const form = h("form", { id: "subscribe", class: "row" },
      field("Plan", select({ name: "plan", id: "subscribe-plan" }, planOptions(billable), billable[0].code)),
      h("button", { type: "submit" }, "Create subscription"));
    onSubmit(form, "Creating the subscription", async (data) => {
      const made = await adminJson(`/admin/tenants/${id}/subscription`, { method: "POST", body: { plan: data.get("plan") } });
      setStatus("done", `Subscription ${made.subscription_id} created: send the customer to ${made.short_url}.`);
      await refresh();
    });
    return [facts, h("p", { class: "hint" }, "Plans with a Razorpay plan id can be subscribed to; the customer authorizes at the payment page."), form];
  });
}

export async function render(view, ctx, id) {
  const plans = await plansList();
  const title = h("h1", { id: "tenant-title" }, "Tenant");
  const overview = summary(ctx, id);
  const sections = [
    overview,
    limits(ctx, id, plans, () => overview.refresh()),
    keysSection(ctx, id),
    usersSection(ctx, id),
    subscription(ctx, id, plans),
    alertsSection(ctx, id),
  ];
  view.append(h("p", { class: "crumbs" }, h("a", { href: "/console" }, "Tenants"), " / "), title, ...sections);
  await Promise.all(sections.map((s) => s.ready));
}
