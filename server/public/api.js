// Calls to this server's API: the bearer token when the server asks for one, JSON answers, and
// failures as ApiError carrying the API's error `code` (the kind) and `reason` (the specific code),
// so that wording.js can turn them into sentences.

/** A failed call: `status` 0 when the server could not be reached at all. */
export class ApiError extends Error {
  constructor(status, code, reason, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.reason = reason;
  }
}

// With SIGHTLINE_PROTECT=all every API call needs the bearer token (with only SIGHTLINE_API_TOKEN,
// the write routes do): asked once on the first 401, kept for this tab only (sessionStorage), sent
// on every call, thumbnails included.
const TOKEN_KEY = 'sightline-token';

export const hasToken = () => sessionStorage.getItem(TOKEN_KEY) !== null;

function authHeaders(headers = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...headers, authorization: `Bearer ${token}` } : headers;
}

export async function authedFetch(path, init = {}) {
  const send = async () => {
    try {
      return await fetch(path, { ...init, headers: authHeaders(init.headers) });
    } catch (err) {
      // fetch rejects only when no answer came back (server down, connection reset).
      throw new ApiError(0, 'network', 'network', err instanceof Error ? err.message : String(err));
    }
  };
  let res = await send();
  if (res.status === 401) {
    const token = window.prompt('This server needs its API token (SIGHTLINE_API_TOKEN):');
    if (token) {
      sessionStorage.setItem(TOKEN_KEY, token.trim());
      res = await send();
    }
  }
  return res;
}

/** JSON from the API, or an ApiError with the server's `{ error: { code, reason?, message } }`. */
export async function api(path, init) {
  const res = await authedFetch(path, init);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = body?.error ?? {};
    const code = typeof e.code === 'string' ? e.code : 'http';
    throw new ApiError(res.status, code, typeof e.reason === 'string' ? e.reason : code, e.message ?? `${res.status} ${res.statusText}`);
  }
  return body;
}

/**
 * The request init that uploads `file` as multipart field `image`: the server then judges the
 * bytes themselves (a PDF named .jpg, a HEIC the browser types as nothing) and knows the file name.
 * A function, because a FormData body is consumed by one request.
 */
export function uploadInit(file) {
  const form = new FormData();
  form.append('image', file, file.name);
  return { method: 'POST', body: form };
}

/** An <img> cannot send a header: with a token, thumbnails are fetched and shown as blob URLs. */
export function setImage(img, url) {
  if (!hasToken()) {
    img.src = url;
    return;
  }
  void authedFetch(url)
    .then((res) => (res.ok ? res.blob() : undefined))
    .then((blob) => {
      if (blob) img.src = URL.createObjectURL(blob);
    })
    .catch(() => undefined);
}
