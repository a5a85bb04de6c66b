/* The admin token and calls to /admin/*, shared by the dashboard and the console.

   The token is kept only in this tab's sessionStorage (one key for every admin page, so signing
   in on the dashboard also signs in the console) and sent as `Authorization: Bearer …`. */

export const TOKEN_STORAGE = "tollgate.admin.token";

export const storedToken = () => sessionStorage.getItem(TOKEN_STORAGE) || "";

export function rememberToken(token) {
  const value = String(token || "").trim();
  if (value) sessionStorage.setItem(TOKEN_STORAGE, value);
  else sessionStorage.removeItem(TOKEN_STORAGE);
  return value;
}

export const forgetToken = () => sessionStorage.removeItem(TOKEN_STORAGE);

/** An error answer of the admin API: `status`, the error `type` and its message. */
export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

async function errorOf(response) {
  let type = `http_${response.status}`;
  let message = `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body && body.error) {
      type = body.error.type || type;
      message = body.error.message || message;
    } else if (body && Array.isArray(body.detail)) {
      message = body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    }
  } catch (_) {
    /* keep the status */
  }
  if (response.status === 401) message = "the admin token was rejected";
  return new ApiError(response.status, type, message);
}

/**
 * Call the admin API with the stored token (or `options.token`). `params` become the query
 * string; a `body` is sent as JSON. Resolves to the Response when it is OK, else throws ApiError.
 */
export async function adminFetch(path, { method = "GET", params, body, token } = {}) {
  const query = new URLSearchParams(
    Object.entries(params || {}).filter(([, v]) => v !== undefined && v !== null && v !== ""),
  );
  const url = query.toString() ? `${path}?${query}` : path;
  const headers = { authorization: `Bearer ${token ?? storedToken()}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (!response.ok) throw await errorOf(response);
  return response;
}

/** adminFetch, then the JSON body (null for 204). */
export async function adminJson(path, options) {
  const response = await adminFetch(path, options);
  return response.status === 204 ? null : response.json();
}
