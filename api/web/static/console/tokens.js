/* Named admin tokens: list, create (the token shown once) with a role, revoke. */

import { adminJson } from "../admin-api.js";
import { badge, confirmAction, field, given, h, input, liveSection, onSubmit, readOnlyNote, select, setStatus, shownOnce, showError, table, when } from "./ui.js";

const COLUMNS = [{ title: "Name" }, { title: "Role" }, { title: "Prefix" }, { title: "Created" }, { title: "Revoked" }, { title: "" }];

function createForm(refresh) {
  const form = h("form", { id: "create-token", class: "row", autocomplete: "off" },
    field("Name", input({ id: "token-name", name: "name", required: true, placeholder: "e.g. alice-laptop" })),
    field("Role", select({ id: "token-role", name: "role" }, [["viewer", "viewer (read only)"], ["admin", "admin"]], "viewer")),
    h("button", { type: "submit", class: "primary" }, "Create token"));
  return onSubmit(form, "Creating the token", async (data) => {
    const made = await adminJson("/admin/tokens", { method: "POST", body: { name: given(data, "name"), role: data.get("role") } });
    form.reset();
    setStatus("done", `Token ${made.name} (${made.role}) created. Copy it now: it is shown once.`);
    await refresh(shownOnce("new-token", `Admin token ${made.name}`, made.token));
  });
}

async function revoke(token, refresh) {
  const text = `Anyone using ${token.name} loses access to the admin API at once.`;
  if (!(await confirmAction(`Revoke admin token ${token.name}?`, text, "Revoke"))) return;
  try {
    await adminJson(`/admin/tokens/${token.id}`, { method: "DELETE" });
    setStatus("done", `Token ${token.name} revoked.`);
    await refresh();
  } catch (err) {
    showError(err, "Revoking the token");
  }
}

export async function render(view, ctx) {
  let form = null;
  const list = liveSection("Admin tokens", "tokens", async (refresh) => {
    const tokens = (await adminJson("/admin/tokens")).data;
    const rows = tokens.map((t) => [
      t.name, badge(t.role), h("span", { class: "mono" }, `${t.prefix}…`), when(t.created_at), when(t.revoked_at, "–"),
      ctx.canWrite && !t.revoked_at ? h("button", { type: "button", class: "small danger", "aria-label": `Revoke ${t.name}`, onclick: () => revoke(t, refresh) }, "Revoke") : "",
    ]);
    if (ctx.canWrite && !form) form = createForm(refresh);
    return [readOnlyNote(ctx), h("p", { class: "hint" }, "The bootstrap token (TOLLGATE_ADMIN_TOKEN) is not listed: it is configured, not stored."),
      table("token-list", "Admin tokens", COLUMNS, rows, "No named tokens yet."), form ? h("h3", {}, "New token") : null, form];
  });
  view.append(h("h1", {}, "Admin tokens"), list);
  await list.ready;
}
