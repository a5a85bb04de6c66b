/* The usage dashboard: GET /admin/usage (group_by day, user, model) with the admin token. */
import { ApiError, adminFetch, forgetToken, rememberToken, storedToken } from "./admin-api.js";

(function () {
  "use strict";

  const TOP = 10;
  const DEFAULT_DAYS = 30;
  const $ = (id) => document.getElementById(id);
  const els = {
    tokenForm: $("token-form"),
    token: $("token"),
    forget: $("forget-token"),
    filters: $("filters"),
    tenant: $("tenant"),
    from: $("from"),
    to: $("to"),
    csvGroup: $("csv-group"),
    csv: $("csv"),
    status: $("status"),
    canvas: $("spend-chart"),
  };
  let chart = null;
  let loads = 0; // answers to an older load are dropped
  let tenantsLoaded = false;
  let tenantNames = new Map(); // id → name, for the tenant column of the top users

  // -- dates (UTC, YYYY-MM-DD) -----------------------------------------------------------
  const isoDay = (date) => date.toISOString().slice(0, 10);
  function addDays(day, n) {
    const date = new Date(day + "T00:00:00Z");
    date.setUTCDate(date.getUTCDate() + n);
    return isoDay(date);
  }
  function daysFrom(from, to) {
    const out = [];
    for (let day = from; day <= to && out.length < 3700; day = addDays(day, 1)) out.push(day);
    return out;
  }

  // -- exact decimal strings (money never goes through a float, except to draw bars) --------
  function compareDecimal(a, b) {
    const [ai, af = ""] = String(a).split(".");
    const [bi, bf = ""] = String(b).split(".");
    const scale = Math.max(af.length, bf.length);
    try {
      const x = BigInt(ai + af.padEnd(scale, "0"));
      const y = BigInt(bi + bf.padEnd(scale, "0"));
      return x < y ? -1 : x > y ? 1 : 0;
    } catch (_) {
      return Number(a) - Number(b);
    }
  }
  // On screen every cost has 4 decimal places (rounded half up, from the exact decimal string);
  // the exact amount is in the element's title (a tooltip) and in the CSV.
  const SHOWN_PLACES = 4;
  function usd(value) {
    const text = String(value ?? "0");
    const negative = text.startsWith("-");
    const [int, frac = ""] = text.replace(/^[-+]/, "").split(".");
    let units = BigInt((int || "0") + frac.slice(0, SHOWN_PLACES).padEnd(SHOWN_PLACES, "0"));
    if ((frac[SHOWN_PLACES] || "0") >= "5") units += 1n;
    const digits = units.toString().padStart(SHOWN_PLACES + 1, "0");
    const whole = digits.slice(0, -SHOWN_PLACES).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    const sign = negative && units !== 0n ? "-" : "";
    return `${sign}$${whole}.${digits.slice(-SHOWN_PLACES)}`;
  }
  /** Show `value` rounded in `el`, with the exact amount as its tooltip. */
  function showUsd(el, value) {
    el.textContent = usd(value);
    el.title = `$${value ?? "0"} (exact)`;
    return el;
  }
  const count = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : "–");

  // -- API -------------------------------------------------------------------------------
  function setStatus(state, text) {
    els.status.dataset.state = state;
    els.status.textContent = text;
    els.status.classList.toggle("error", state === "error");
  }

  async function api(path, params) {
    try {
      return await adminFetch(path, { params, token: els.token.value.trim() });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404 && path === "/admin/usage") {
        throw new ApiError(404, err.type, "this server has no GET /admin/usage yet");
      }
      throw err;
    }
  }

  function filters() {
    const out = { from: els.from.value, to: addDays(els.to.value, 1) }; // `to` is exclusive
    if (els.tenant.value) out.tenant_id = els.tenant.value;
    return out;
  }

  async function usage(groupBy) {
    const response = await api("/admin/usage", { ...filters(), group_by: groupBy, format: "json" });
    return response.json();
  }

  async function loadTenants() {
    const tenants = await (await api("/admin/tenants")).json();
    const keep = els.tenant.value;
    const options = [new Option("All tenants", "")];
    tenantNames = new Map(tenants.map((t) => [t.id, t.name]));
    for (const t of tenants) options.push(new Option(`${t.name} (${t.plan})`, t.id));
    els.tenant.replaceChildren(...options);
    els.tenant.value = keep;
    tenantsLoaded = true;
  }

  // -- rendering -------------------------------------------------------------------------
  function renderTotals(total) {
    total = total || {};
    showUsd($("total-cost"), total.cost_usd);
    $("total-requests").textContent = count(total.requests);
    $("total-input").textContent = count(total.input_tokens);
    $("total-output").textContent = count(total.output_tokens);
    $("total-cache").textContent =
      `${count(total.cache_creation_input_tokens)} / ${count(total.cache_read_input_tokens)}`;
  }

  function renderChart(rows, from, to) {
    const byDay = new Map(rows.map((row) => [String(row.day).slice(0, 10), row]));
    const labels = daysFrom(from, to);
    const exact = labels.map((day) => (byDay.get(day) || {}).cost_usd || "0");
    const requests = labels.map((day) => (byDay.get(day) || {}).requests || 0);
    const data = {
      labels,
      datasets: [
        {
          label: "Spend (USD)",
          data: exact.map(Number),
          backgroundColor: "#c15f3c",
          borderRadius: 3,
          maxBarThickness: 28,
        },
      ],
    };
    if (chart) {
      chart.data = data;
      chart.options.plugins.tooltip.callbacks.label = (ctx) =>
        `${usd(exact[ctx.dataIndex])} · ${requests[ctx.dataIndex]} requests`;
      chart.update();
      return;
    }
    chart = new window.Chart(els.canvas, {
      type: "bar",
      data,
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: (ctx) => `${usd(exact[ctx.dataIndex])} · ${requests[ctx.dataIndex]} requests`,
            },
          },
        },
        scales: {
          x: {
            grid: { display: false },
            ticks: {
              maxRotation: 0,
              autoSkip: true,
              callback(value) {
                return this.getLabelForValue(value).slice(5);
              },
            },
          },
          y: {
            beginAtZero: true,
            ticks: {
              callback(value, index, ticks) {
                return "$" + window.Chart.Ticks.formatters.numeric.call(this, value, index, ticks);
              },
            },
          },
        },
      },
    });
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  /** The top rows by cost; `extra(row)`, if given, fills a third column. */
  function renderTable(tableId, rows, key, emptyName, extra) {
    const top = [...rows].sort((a, b) => compareDecimal(b.cost_usd, a.cost_usd)).slice(0, TOP);
    const body = document.querySelector(`#${tableId} tbody`);
    if (top.length === 0) {
      const tr = document.createElement("tr");
      const td = cell("No usage in this range.", "empty");
      td.colSpan = extra ? 6 : 5;
      tr.append(td);
      body.replaceChildren(tr);
      return;
    }
    body.replaceChildren(
      ...top.map((row, i) => {
        const tr = document.createElement("tr");
        const name = row[key] === null || row[key] === undefined ? emptyName : String(row[key]);
        const nameCell = cell("", "name");
        const label = document.createElement("span");
        label.textContent = name;
        label.title = name;
        nameCell.append(label);
        tr.append(cell(String(i + 1)), nameCell);
        if (extra) tr.append(cell(extra(row), "muted"));
        tr.append(
          cell(count(row.requests), "num"),
          cell(`${count(row.input_tokens)} / ${count(row.output_tokens)}`, "num"),
          showUsd(cell("", "num cost"), row.cost_usd),
        );
        return tr;
      }),
    );
  }

  async function load() {
    if (!els.token.value.trim()) {
      setStatus("error", "Enter the admin token first.");
      els.token.focus();
      return;
    }
    if (els.from.value > els.to.value) {
      setStatus("error", "The range starts after it ends.");
      return;
    }
    const mine = ++loads;
    setStatus("loading", "Loading…");
    try {
      if (!tenantsLoaded) await loadTenants();
      const [days, users, models] = await Promise.all(["day", "user", "model"].map(usage));
      if (mine !== loads) return;
      renderTotals(days.total);
      renderChart(days.rows, els.from.value, els.to.value);
      const tenantOf = (row) => tenantNames.get(row.tenant) || String(row.tenant ?? "–");
      renderTable("top-users", users.rows, "user", "(no end user)", tenantOf);
      renderTable("top-models", models.rows, "model", "(unknown)");
      const when = new Date().toISOString().slice(11, 19);
      setStatus("loaded", `Loaded at ${when} UTC: ${days.rows.length} day(s) with usage.`);
    } catch (err) {
      if (mine !== loads) return;
      setStatus("error", err instanceof ApiError ? `Error: ${err.message}` : `Error: ${err}`);
    }
  }

  async function downloadCsv() {
    const group = els.csvGroup.value;
    try {
      const response = await api("/admin/usage", { ...filters(), group_by: group, format: "csv" });
      const url = URL.createObjectURL(await response.blob());
      const link = document.createElement("a");
      link.href = url;
      link.download = `tollgate-usage-by-${group}-${els.from.value}-to-${els.to.value}.csv`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      setStatus("error", `CSV download failed: ${err.message}`);
    }
  }

  // -- wiring ----------------------------------------------------------------------------
  const today = isoDay(new Date());
  els.to.value = today;
  els.from.value = addDays(today, 1 - DEFAULT_DAYS);
  els.token.value = storedToken();

  els.tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    rememberToken(els.token.value);
    tenantsLoaded = false;
    load();
  });
  els.forget.addEventListener("click", () => {
    forgetToken();
    els.token.value = "";
    tenantsLoaded = false;
    setStatus("idle", "Token forgotten.");
  });
  els.filters.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  els.csv.addEventListener("click", downloadCsv);
  if (els.token.value) load();
})();
