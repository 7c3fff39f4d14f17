// Search: the filters plus a time range, answered by /api/v1/query (newest
// first, a page at a time), counted, downloadable as NDJSON (/api/v1/export,
// which needs EXPORT_DATA). The search is in the URL (#search?level=ERROR&range=1h),
// so it can be shared and bookmarked.

import { ApiError, getBlob, getJson } from "./api.js";
import { Filters } from "./filters.js";
import { SearchHistogram } from "./histo.js";
import { eventRow } from "./rows.js";
import { el } from "./text.js";
import { VirtualList } from "./vlist.js";

const PAGE = 500; // rows a request asks for; "Load older" asks for the next
const MAX_COUNT = 10000; // "found" is exact up to this, then "10000+"
const MAX_ROWS = 20000; // rows kept in the view
export const RANGES = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800, all: 0 };
const POSITION = ["range", "from", "to"]; // URL parameters that are not filters

export class SearchView {
  constructor(node, detail, onAuthError, notice) {
    this.node = node;
    this.detail = detail;
    this.onAuthError = onAuthError;
    this.notice = notice;
    this.filters = new Filters(() => this.run());
    this.list = new VirtualList(eventRow, (ev) => detail.show(ev), MAX_ROWS);
    this.lastKey = null;
    this.abort = null;

    this.range = el("select", "range");
    this.range.setAttribute("aria-label", "time range");
    for (const [value, label] of [
      ["15m", "Last 15 min"], ["1h", "Last hour"], ["6h", "Last 6 hours"],
      ["24h", "Last 24 hours"], ["7d", "Last 7 days"], ["all", "All time"], ["custom", "Custom…"],
    ]) {
      const option = el("option", "", label);
      option.value = value;
      this.range.append(option);
    }
    this.range.value = "1h";
    this.from = this._when("from");
    this.to = this._when("to");
    this.range.addEventListener("change", () => {
      this._showCustom();
      if (this.range.value !== "custom") this.run();
    });
    const go = el("button", "go", "Search");
    go.type = "button";
    go.addEventListener("click", () => this.run(true));
    this.summary = el("span", "summary", "");
    this.download = el("button", "download", "Download NDJSON");
    this.download.type = "button";
    this.download.addEventListener("click", () => this.save());
    this.more = el("button", "more", "Load older");
    this.more.type = "button";
    this.more.hidden = true;
    this.more.addEventListener("click", () => this.older());

    const bar = el("div", "bar");
    bar.append(this.filters.node, this.range, this.from, this.to, go, this.summary, this.download);
    const foot = el("div", "foot");
    foot.append(this.more);
    node.append(bar);
    this.histogram = new SearchHistogram(node);
    node.append(this.list.node, foot);
    this._showCustom();
  }

  _when(name) {
    const input = el("input", "when");
    input.type = "datetime-local";
    input.step = "1";
    input.setAttribute("aria-label", name);
    input.addEventListener("change", () => this.run());
    return input;
  }

  _showCustom() {
    const custom = this.range.value === "custom";
    this.from.hidden = this.to.hidden = !custom;
  }

  // The view shows: take the search from the URL, run it if it changed.
  start() {
    const query = location.hash.split("?")[1] || "";
    const params = [...new URLSearchParams(query)];
    if (params.length || this.lastKey === null) this._load(params);
    this.run();
  }

  stop() {
    if (this.abort) this.abort.abort();
  }

  _load(params) {
    this.filters.load(params, POSITION);
    const get = (k) => params.find(([n]) => n === k)?.[1];
    const range = get("range");
    if (get("from") || get("to")) {
      this.range.value = "custom";
      this.from.value = toLocalInput(get("from"));
      this.to.value = toLocalInput(get("to"));
    } else if (range && range in RANGES) {
      this.range.value = range;
    }
    this._showCustom();
  }

  // "Show this request": every event with this request or correlation id.
  showRequest(name, value) {
    this._load([[name, value], ["range", "all"]]);
    location.hash = "#search?" + new URLSearchParams(this._urlParams()).toString();
  }

  // The time range as query parameters (unix seconds), and as URL parameters.
  _timeParams() {
    if (this.range.value === "custom") {
      const out = [];
      if (this.from.value) out.push(["time_from", String(Date.parse(this.from.value) / 1000)]);
      if (this.to.value) out.push(["time_to", String(Date.parse(this.to.value) / 1000)]);
      return out;
    }
    const span = RANGES[this.range.value];
    return span ? [["time_from", String(Math.floor(Date.now() / 1000) - span)]] : [];
  }

  _urlParams() {
    const out = this.filters.params();
    if (this.range.value === "custom") {
      if (this.from.value) out.push(["from", String(Date.parse(this.from.value) / 1000)]);
      if (this.to.value) out.push(["to", String(Date.parse(this.to.value) / 1000)]);
    } else {
      out.push(["range", this.range.value]);
    }
    return out;
  }

  params() {
    return [...this.filters.params(), ...this._timeParams()];
  }

  async run(force = false) {
    const urlParams = this._urlParams();
    const key = new URLSearchParams(urlParams).toString();
    // The URL follows the search (no new history entry per keystroke).
    history.replaceState(null, "", "#search?" + key);
    if (!force && key === this.lastKey) return;
    this.lastKey = key;
    this.stop();
    this.abort = new AbortController();
    this.summary.textContent = "searching…";
    try {
      const params = [...this.params(), ["limit", String(PAGE)], ["max_count", String(MAX_COUNT)]];
      const signal = this.abort.signal;
      // The counts by time and level come beside the rows; a failure of theirs
      // (a scan limit over a long range) is said in their place only.
      this.histogram.load(this.params(), signal).catch((err) => {
        if (err.name !== "AbortError") this.histogram.failed(`No histogram: ${err.message}`);
      });
      const answer = await getJson("/api/v1/query", params, signal);
      this.found = answer;
      this.list.setItems(answer.events);
      this.list.node.scrollTop = 0;
      this.more.hidden = answer.events.length < PAGE;
      this._summary();
    } catch (err) {
      this._failed(err);
    }
  }

  async older() {
    const rows = this.list.items;
    if (!rows.length) return;
    const oldest = rows[rows.length - 1].ts;
    const seen = new Set(rows.map((ev) => ev.id));
    const params = this.params().filter(([k]) => k !== "time_to");
    params.push(["time_to", String(oldest)], ["limit", String(PAGE)], ["max_count", "1"]);
    try {
      const answer = await getJson("/api/v1/query", params);
      const fresh = answer.events.filter((ev) => !seen.has(ev.id));
      this.list.append(fresh);
      this.more.hidden = answer.events.length < PAGE || !fresh.length;
      this._summary();
    } catch (err) {
      this._failed(err);
    }
  }

  _summary() {
    const a = this.found;
    if (!a) return;
    const found = a.capped ? `${a.max_count}+` : String(a.found);
    this.summary.textContent = `${found} found · ${this.list.items.length} shown`;
  }

  _failed(err) {
    if (err.name === "AbortError") return;
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      this.onAuthError(err);
      return;
    }
    this.summary.textContent = "";
    this.notice(err instanceof ApiError ? `Search refused: ${err.message}` : String(err));
  }

  // Download the search (every match up to the server's query.max_limit).
  async save() {
    try {
      const blob = await getBlob("/api/v1/export", this.params());
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = `logcaster-${new Date().toISOString().replace(/[:.]/g, "-")}.ndjson`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) {
        this.notice("Downloading needs the EXPORT_DATA permission (operator or admin).");
      } else {
        this._failed(err);
      }
    }
  }
}

// Unix seconds as a datetime-local value ("2026-12-05T14:03:07"), local time.
function toLocalInput(seconds) {
  if (!seconds) return "";
  const d = new Date(Number(seconds) * 1000);
  if (isNaN(d.getTime())) return "";
  const local = new Date(d.getTime() - d.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 19);
}
