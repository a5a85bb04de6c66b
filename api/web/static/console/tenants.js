/* Tenants: search the list, create one (then go to its page). */

import { adminJson } from "../admin-api.js";
import { badge, field, given, h, input, money, onSubmit, panel, readOnlyNote, select, setStatus, table } from "./ui.js";

export async function plansList() {
  return (await adminJson("/admin/plans")).data;
}

export const planOptions = (plans) => plans.map((p) => [p.code, `${p.name} (${p.code}, ${money(p.monthly_budget_usd)}/mo)`]);

function createForm(plans) {
  const form = h(
    "form",
    { id: "create-tenant", class: "row", autocomplete: "off" },
    field("Name", input({ id: "tenant-name", name: "name", required: true, maxlength: "200" })),
    field("Plan", select({ id: "tenant-plan", name: "plan" }, planOptions(plans), "free")),
    h("button", { type: "submit", class: "primary" }, "Create tenant"),
  );
  return onSubmit(form, "Creating the tenant", async (data) => {
    const created = await adminJson("/admin/tenants", {
      method: "POST",
      body: { name: given(data, "name"), plan: data.get("plan") },
    });
    setStatus("done", `Created tenant ${created.name}.`);
    location.assign(`/console/tenants/${created.id}`);
  });
}

function rows(tenants) {
  return tenants.map((t) => [
    h("a", { href: `/console/tenants/${t.id}`, class: "name" }, t.name),
    h("span", { class: "mono id", title: t.id }, t.id.slice(0, 8)),
    t.plan,
    badge(t.status),
    money(t.limits.monthly_budget_usd),
    t.subscription ? badge(t.subscription.status, "sub") : h("span", { class: "muted" }, "none"),
  ]);
}

const COLUMNS = [
  { title: "Name" },
  { title: "Id" },
  { title: "Plan" },
  { title: "Status" },
  { title: "Budget / month", class: "num" },
  { title: "Subscription" },
];

export async function render(view, ctx) {
  const [tenants, plans] = await Promise.all([adminJson("/admin/tenants"), plansList()]);
  const search = input({ id: "tenant-search", type: "search", placeholder: "name, id or plan" });
  const box = h("div", {}, table("tenants", "Tenants", COLUMNS, rows(tenants), "No tenants yet."));
  search.addEventListener("input", () => {
    const term = search.value.trim().toLowerCase();
    const found = tenants.filter((t) => [t.name, t.id, t.plan, t.status].some((v) => v.toLowerCase().includes(term)));
    box.replaceChildren(table("tenants", "Tenants", COLUMNS, rows(found), "No tenant matches."));
  });
  view.append(
    h("h1", {}, "Tenants"),
    ctx.canWrite ? panel("New tenant", { id: "new-tenant" }, createForm(plans)) : null,
    panel("All tenants", { id: "tenant-list" }, readOnlyNote(ctx), h("div", { class: "row" }, field("Search", search)), box),
  );
}
