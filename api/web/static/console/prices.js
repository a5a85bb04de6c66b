/* The price book in force (USD per million tokens); admins can add a version of a model's price. */

import { adminJson } from "../admin-api.js";
import { field, given, h, input, liveSection, onSubmit, readOnlyNote, setStatus, table, utcFromInput, when } from "./ui.js";

const RATES = ["input", "output", "cache_write_5m", "cache_write_1h", "cache_read"];
const COLUMNS = [
  { title: "Model" }, { title: "Aliases" },
  ...RATES.map((r) => ({ title: r.replaceAll("_", " "), class: "num" })),
  { title: "Effective from" }, { title: "Version" },
];

function priceForm(refresh) {
  const form = h("form", { id: "price-form", class: "row", autocomplete: "off" },
    field("Model", input({ id: "price-model", name: "model", required: true })),
    ...RATES.map((r) => field(`${r.replaceAll("_", " ")} ($/MTok)`, input({ id: `price-${r}`, name: r, inputmode: "decimal", required: r === "input" || r === "output" }))),
    field("Effective from (UTC)", input({ id: "price-from", name: "effective_from", type: "datetime-local" }), "empty: now"),
    h("button", { type: "submit", class: "primary" }, "Add price version"));
  return onSubmit(form, "Saving the price", async (data) => {
    const body = {};
    for (const r of RATES) if (given(data, r) !== undefined) body[r] = given(data, r);
    const from = utcFromInput(given(data, "effective_from"));
    if (from) body.effective_from = from;
    const model = given(data, "model");
    const saved = await adminJson(`/admin/prices/${encodeURIComponent(model)}`, { method: "PUT", body });
    setStatus("done", `Price of ${saved.model || model} saved (version ${saved.version || "new"}).`);
    form.reset();
    await refresh();
  });
}

export async function render(view, ctx) {
  let form = null;
  const book = liveSection("Prices in force", "prices", async (refresh) => {
    const models = (await adminJson("/admin/prices")).models;
    const rows = models.map((m) => [
      h("span", { class: "mono" }, m.model), (m.aliases || []).join(", "),
      ...RATES.map((r) => (m[r] === undefined || m[r] === null ? "–" : String(m[r]))),
      when(m.effective_from), h("span", { class: "mono" }, String(m.version ?? "")),
    ]);
    if (ctx.canWrite && !form) form = priceForm(refresh);
    return [readOnlyNote(ctx), h("p", { class: "hint" }, "USD per million tokens."),
      table("price-list", "Prices", COLUMNS, rows, "The price book is empty."),
      form ? h("h3", {}, "Add a price version") : null, form];
  });
  view.append(h("h1", {}, "Price book"), book);
  await book.ready;
}
