/* A tenant's end users: their monthly limits and this period's spend; set or clear a limit. */

import { adminJson } from "../admin-api.js";
import { field, given, h, input, liveSection, money, onSubmit, setStatus, table, when } from "./ui.js";

const COLUMNS = [
  { title: "User" }, { title: "Limit / month", class: "num" }, { title: "Spent this period", class: "num" },
  { title: "Requests", class: "num" }, { title: "Period ends" }, { title: "First seen" },
];

function limitForm(tenantId, refresh) {
  const form = h("form", { id: "user-limit", class: "row", autocomplete: "off" },
    field("End user", input({ id: "limit-user", name: "user", required: true, placeholder: "user id" })),
    field("Limit / month (USD)", input({ id: "limit-budget", name: "budget", inputmode: "decimal", placeholder: "empty: tenant default" })),
    h("button", { type: "submit" }, "Set limit"));
  return onSubmit(form, "Setting the limit", async (data) => {
    const user = given(data, "user");
    const budget = given(data, "budget") ?? null;
    await adminJson(`/admin/tenants/${tenantId}/users/${encodeURIComponent(user)}/limit`, { method: "PUT", body: { monthly_budget_usd: budget } });
    setStatus("done", budget === null ? `${user}'s limit cleared.` : `${user}'s limit is now $${budget}.`);
    form.reset();
    await refresh();
  });
}

export function usersSection(ctx, tenantId) {
  let form = null;
  return liveSection("End users", "users", async (refresh) => {
    const users = (await adminJson(`/admin/tenants/${tenantId}/users`)).data;
    const rows = users.map((u) => [
      h("span", { class: "name", title: u.user }, u.user),
      u.monthly_budget_usd === null ? h("span", { class: "muted" }, "default") : money(u.monthly_budget_usd),
      money(u.spent_usd),
      String(u.requests),
      when(u.period_end, "–"),
      when(u.created_at),
    ]);
    if (ctx.canWrite && !form) form = limitForm(tenantId, refresh);
    return [table("user-list", "End users", COLUMNS, rows, "No end users yet: they appear with their first request."), form];
  });
}
