// api.js: calls to the admin API with the session cookie and CSRF token.
// Every failure becomes an APIError whose message is meant for people.

let csrfToken = '';
let unauthorized = () => {};

/** setCSRF keeps the token from login in memory (never in storage). */
export function setCSRF(token) { csrfToken = token || ''; }

/** onUnauthorized sets what happens when the session is gone (401). */
export function onUnauthorized(fn) { unauthorized = fn; }

export class APIError extends Error {
  constructor(status, code, message, requestID, path) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestID = requestID || '';
    this.path = path || '';
  }
  /** missing says the route does not exist on this server (yet). */
  get missing() { return this.status === 404 && (this.code === 'ROUTE_NOT_FOUND' || this.code === 'HTTP_404'); }
}

/**
 * api calls the admin API. body, when given, is sent as JSON. Changes
 * carry X-CSRF-Token. opts.signal aborts; opts.quiet401 skips the global
 * log-out handling (for the session probe at start).
 */
export async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store', signal: opts.signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new APIError(0, 'NETWORK', 'apiwarden could not be reached. Check that the server is running and that this machine can reach it, then try again.', '', path);
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const e = data && data.error;
    const err = new APIError(res.status, (e && e.code) || 'HTTP_' + res.status,
      (e && e.message) || `The server answered ${res.status} ${res.statusText || ''} without an explanation.`,
      (e && e.request_id) || res.headers.get('X-Request-Id'), path);
    if (res.status === 401 && !opts.quiet401) unauthorized(err);
    throw err;
  }
  if (data === null && text) throw new APIError(res.status, 'BAD_RESPONSE', 'The server answered with something that is not JSON.', res.headers.get('X-Request-Id'), path);
  return data;
}

/** query builds "?a=1&b=2" from the non-empty entries of an object. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== '' && v != null) q.set(k, String(v));
  const s = q.toString();
  return s ? '?' + s : '';
}
