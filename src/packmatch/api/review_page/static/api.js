// The public JSON API, called with the key from sessionStorage (never a URL, cookie or log).
const KEY = "packmatch.reviewKey";

export const key = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  forget: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code || "http_error";
  }
}

async function call(path, { method = "GET", body, etag } = {}) {
  const headers = { Authorization: `Bearer ${key.get()}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (etag) headers["If-Match"] = etag;
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit", cache: "no-store",
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return { data, etag: response.headers.get("ETag") };
}

const RUNS = "/v1/matching/packages/runs";

export const api = {
  configs: () => call("/v1/matching/packages/configs?limit=100").then((r) => r.data.data),
  queue({ decided, config, cursor, limit = 100 }) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (decided) q.set("reviewed", "true");
    else { q.set("status", "review"); q.set("reviewed", "false"); }
    if (config) q.set("package_config_id", config);
    if (cursor) q.set("cursor", cursor);
    return call(`${RUNS}?${q}`).then((r) => r.data);
  },
  run: (id) => call(`${RUNS}/${id}`),
  packageConfig: (id) => call(`/v1/matching/packages/configs/${id}`).then((r) => r.data),
  matchingConfig: (id) => call(`/v1/matching/configs/${id}`).then((r) => r.data),
  results: (mr) => call(`/v1/matching/runs/${mr}/results?limit=100`).then((r) => r.data),
  result: (mr, id) => call(`/v1/matching/runs/${mr}/results/${id}`),
  reviewRun: (id, decision, notes, etag) =>
    call(`${RUNS}/${id}/review`, { method: "POST", body: { decision, notes }, etag }),
  reviewResult: (mr, id, body, etag) =>
    call(`/v1/matching/runs/${mr}/results/${id}/review`, { method: "POST", body, etag }),
};

export function describe(error) {
  if (!(error instanceof ApiError)) return `The API could not be reached (${error.message}).`;
  if (error.status === 401) return "This API key was not accepted (401 unauthorized). Check it and sign in again.";
  if (error.status === 403) return "This API key may not do this (403 insufficient scope): it needs read and review.";
  if (error.status === 412) return "Someone else decided this first; their decision is shown below and yours was not recorded.";
  if (error.status === 429) return "Too many requests for this key (429); wait a moment and try again.";
  return `${error.message} (${error.status} ${error.code})`;
}
