/* The operator's console: signs in with the admin token (shared with the dashboard), finds the
   caller's role, and draws the view the path names. Every view is its own small module. */

import { ApiError, adminJson, forgetToken, rememberToken, storedToken } from "../admin-api.js";
import { h, setStatus, showError } from "./ui.js";

const UUID = "[0-9a-fA-F-]{36}";
const ROUTES = [
  [/^\/console\/?$/, "tenants"],
  [new RegExp(`^/console/tenants/(${UUID})/?$`), "tenant"],
  [/^\/console\/plans\/?$/, "plans"],
  [/^\/console\/prices\/?$/, "prices"],
  [/^\/console\/billing\/?$/, "billing"],
  [/^\/console\/audit\/?$/, "audit"],
  [/^\/console\/tokens\/?$/, "tokens"],
];
const SECTION = { tenant: "tenants" };

function route(path) {
  for (const [pattern, name] of ROUTES) {
    const match = path.match(pattern);
    if (match) return { name, args: match.slice(1) };
  }
  return { name: "notfound", args: [] };
}

/** Who the token belongs to: GET /admin/whoami, or (on a server without it) any admin read. */
async function whoami() {
  try {
    return await adminJson("/admin/whoami");
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    await adminJson("/admin/plans"); // the token works; its role is not known: offer writes
    return { actor: null, role: "admin" };
  }
}

function showWho(who) {
  const el = document.getElementById("whoami");
  el.dataset.role = who ? who.role : "";
  el.textContent = who
    ? `Signed in${who.actor ? ` as ${who.actor}` : ""} · role: ${who.role}.`
    : "";
  document.body.dataset.role = who ? who.role : "";
  document.getElementById("access").dataset.signed = who ? "yes" : "no";
}

async function draw(view, current) {
  const ctx = { role: "", actor: null, canWrite: false };
  view.replaceChildren();
  if (!storedToken()) {
    showWho(null);
    setStatus("idle", "Enter the admin token to use the console.");
    document.getElementById("token").focus();
    return;
  }
  setStatus("loading", "Loading…");
  try {
    const who = await whoami();
    Object.assign(ctx, { role: who.role, actor: who.actor, canWrite: who.role === "admin" });
    showWho(who);
    if (current.name === "notfound") {
      view.append(h("section", { class: "panel" }, h("h1", {}, "Not found"),
        h("p", {}, "No console page at this address. "), h("a", { href: "/console" }, "Tenants")));
      setStatus("error", "Not found.");
      return;
    }
    const module = await import(`./${current.name}.js`);
    await module.render(view, ctx, ...current.args);
    if (document.getElementById("status").dataset.state === "loading") setStatus("loaded", "");
  } catch (err) {
    showWho(null);
    showError(err, "Loading");
  }
}

function start() {
  const view = document.getElementById("view");
  const token = document.getElementById("token");
  const current = route(location.pathname);
  const section = SECTION[current.name] || current.name;
  for (const link of document.querySelectorAll("nav.sub a")) {
    if (link.dataset.section === section) link.setAttribute("aria-current", "page");
  }
  token.value = storedToken();
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    rememberToken(token.value);
    draw(view, current);
  });
  document.getElementById("forget-token").addEventListener("click", () => {
    forgetToken();
    token.value = "";
    draw(view, current);
  });
  draw(view, current);
}

start();
