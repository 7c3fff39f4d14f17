// The API the dashboard reads, with the signed-in token.
//
// The token lives in sessionStorage (this tab only, gone when it closes) and is
// sent as a Bearer header; never in a URL, where logs and history would keep it.
// The live tail is read with fetch() rather than EventSource, which cannot send
// headers; the Server-Sent Events format is parsed here (readEvents).

const TOKEN_KEY = "logcaster.token";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra = {}) {
  const out = { Accept: "application/json", ...extra };
  const t = token();
  if (t) out.Authorization = "Bearer " + t;
  return out;
}

// "/api/v1/query" + [["level", "ERROR"], ...] -> a same-origin URL.
export function url(path, params = []) {
  const u = new URL(path, location.origin);
  for (const [k, v] of params) u.searchParams.append(k, v);
  return u;
}

async function failure(response) {
  let message = response.statusText;
  try {
    const doc = await response.json();
    if (doc && doc.error) message = doc.error;
  } catch {
    // not JSON: keep the status text
  }
  return new ApiError(response.status, message);
}

// GET a JSON document; ApiError on any non-2xx answer.
export async function getJson(path, params = [], signal = undefined) {
  const response = await fetch(url(path, params), { headers: headers(), signal });
  if (!response.ok) throw await failure(response);
  return response.json();
}

// GET a text body (/metrics).
export async function getText(path, params = [], signal = undefined) {
  const response = await fetch(url(path, params), { headers: headers({ Accept: "text/plain" }), signal });
  if (!response.ok) throw await failure(response);
  return response.text();
}

// GET a body as a Blob (the NDJSON download).
export async function getBlob(path, params = [], signal = undefined) {
  const response = await fetch(url(path, params), { headers: headers(), signal });
  if (!response.ok) throw await failure(response);
  return response.blob();
}

// Read /api/v1/tail: calls onItem({type, id, data}) for each SSE item until the
// stream ends or `signal` aborts. `lastId` resumes after an event (Last-Event-ID).
export async function readEvents(path, params, onItem, signal, lastId = null) {
  const extra = { Accept: "text/event-stream" };
  if (lastId !== null) extra["Last-Event-ID"] = String(lastId);
  const response = await fetch(url(path, params), { headers: headers(extra), signal });
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let rest = ""; // a line not ended yet, from the last read
  let item = { type: "message", id: null, data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    // One split per read, not a slice per line: a read holds hundreds of lines.
    const lines = (rest + value).split("\n");
    rest = lines.pop();
    for (let line of lines) {
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line === "") {
        // A blank line ends an item (SSE): dispatch what it held.
        if (item.data.length || item.id !== null) {
          onItem({ type: item.type, id: item.id, data: item.data.join("\n") });
        }
        item = { type: "message", id: null, data: [] };
        continue;
      }
      if (line.startsWith(":")) continue; // a heartbeat comment
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let text = colon < 0 ? "" : line.slice(colon + 1);
      if (text.startsWith(" ")) text = text.slice(1);
      if (field === "data") item.data.push(text);
      else if (field === "event") item.type = text;
      else if (field === "id") item.id = text;
    }
  }
}
