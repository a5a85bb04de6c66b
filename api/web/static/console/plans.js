/* Plans: the list, and a form that creates a plan or sets the fields given on an existing one. */

import { adminJson } from "../admin-api.js";
import { field, given, h, input, liveSection, money, onSubmit, readOnlyNote, select, setStatus, table } from "./ui.js";

const COLUMNS = [
  { title: "Code" }, { title: "Name" }, { title: "Budget / month", class: "num" }, { title: "Requests / min", class: "num" },
  { title: "Concurrent", class: "num" }, { title: "Quota mode" }, { title: "Razorpay plan" }, { title: "Models" },
];

function planForm(refresh) {
  const form = h("form", { id: "plan-form", class: "row", autocomplete: "off" },
    field("Code", input({ id: "plan-code", name: "code", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}" })),
    field("Name", input({ id: "plan-name", name: "name" })),
    field("Budget / month (USD)", input({ id: "plan-budget", name: "monthly_budget_usd", inputmode: "decimal" }), "required for a new plan"),
    field("Requests / min", input({ id: "plan-rpm", name: "rpm_limit", inputmode: "numeric" })),
    field("Concurrent", input({ id: "plan-concurrent", name: "max_concurrent", inputmode: "numeric" })),
    field("Quota mode", select({ id: "plan-mode", name: "quota_mode" }, [["", "unchanged"], ["hard", "hard"], ["soft", "soft"]], "")),
    field("Razorpay plan id", input({ id: "plan-razorpay", name: "razorpay_plan_id", placeholder: "plan_…" })),
    h("button", { type: "submit", class: "primary" }, "Save plan"));
  return onSubmit(form, "Saving the plan", async (data) => {
    const body = {};
    for (const name of ["name", "monthly_budget_usd", "quota_mode", "razorpay_plan_id"]) body[name] = given(data, name);
    for (const name of ["rpm_limit", "max_concurrent"]) body[name] = given(data, name) && Number(given(data, name));
    const code = given(data, "code");
    const saved = await adminJson(`/admin/plans/${encodeURIComponent(code)}`, { method: "PUT", body });
    setStatus("done", `Plan ${saved.code} saved.`);
    form.reset();
    await refresh();
  });
}

export async function render(view, ctx) {
  let form = null;
  const list = liveSection("Plans", "plans", async (refresh) => {
    const plans = (await adminJson("/admin/plans")).data;
    const rows = plans.map((p) => [
      h("span", { class: "mono" }, p.code), p.name, money(p.monthly_budget_usd), String(p.rpm_limit),
      String(p.max_concurrent), p.quota_mode, p.razorpay_plan_id || h("span", { class: "muted" }, "–"),
      p.allowed_models ? p.allowed_models.join(", ") : h("span", { class: "muted" }, "all priced"),
    ]);
    if (ctx.canWrite && !form) form = planForm(refresh);
    return [readOnlyNote(ctx), table("plan-list", "Plans", COLUMNS, rows, "No plans."),
      form ? h("h3", {}, "Create or change a plan") : null,
      form ? h("p", { class: "hint" }, "Only the fields filled in are changed; a new code creates the plan.") : null, form];
  });
  view.append(h("h1", {}, "Plans"), list);
  await list.ready;
}
