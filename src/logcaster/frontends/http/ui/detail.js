// The event detail panel: every attribute and field, the whole body (a stack
// trace stays readable), and a click on a value adds it as a filter.

import { eventRow } from "./rows.js";
import { el, formatTime } from "./text.js";

const ATTRIBUTES = ["level", "service", "version", "host", "pod"];
const REQUEST_KEYS = ["request_id", "correlation_id", "trace_id"];

export class Detail {
  // addFilter(name, value); showRequest(name, value) lists one request's events
  // (null until a view can list them: then no such button is shown);
  // context(ev) -> a promise of the events around `ev` from its source, in order.
  constructor(node, addFilter, showRequest, context) {
    this.node = node;
    this.addFilter = addFilter;
    this.showRequest = showRequest;
    this.context = context;
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape") this.close();
    });
  }

  close() {
    this.node.hidden = true;
    this.node.replaceChildren();
  }

  show(ev) {
    const close = el("button", "close", "✕");
    close.type = "button";
    close.title = "close (Esc)";
    close.addEventListener("click", () => this.close());
    const head = el("h2", "", `Event ${ev.id}`);
    const table = el("table", "fields");
    const add = (name, value, clickable) => {
      if (value === null || value === undefined || value === "") return;
      const tr = el("tr");
      tr.append(el("th", "", name));
      const text = typeof value === "object" ? JSON.stringify(value) : String(value);
      const td = el("td");
      if (clickable && typeof value !== "object") {
        const b = el("button", "value", text);
        b.type = "button";
        b.title = "filter on this value";
        b.addEventListener("click", () => this.addFilter(name, text));
        td.append(b);
      } else {
        td.append(el("span", "value", text));
      }
      tr.append(td);
      table.append(tr);
    };
    add("time", formatTime(ev.ts), false);
    add("received", formatTime(ev.received_at), false);
    for (const name of ATTRIBUTES) add(name, ev[name], true);
    add("source", ev.source, false);
    const fields = ev.fields || {};
    for (const name of Object.keys(fields).sort()) add(name, fields[name], true);
    const actions = el("p", "actions");
    for (const key of this.showRequest ? REQUEST_KEYS : []) {
      if (fields[key] === undefined || typeof fields[key] === "object") continue;
      const b = el("button", "request", `Show this request (${key})`);
      b.type = "button";
      b.addEventListener("click", () => {
        this.close();
        this.showRequest(key, String(fields[key]));
      });
      actions.append(b);
    }
    const body = el("pre", "body", ev.body || ev.message || "");
    const around = el("div", "context");
    if (this.context && ev.source) {
      const b = el("button", "show-context", "Show the events around it (same source)");
      b.type = "button";
      b.addEventListener("click", () => this._context(ev, around));
      around.append(b);
    }
    this.node.replaceChildren(close, head, table, actions, el("h3", "", "Body"), body, around);
    this.node.hidden = false;
  }

  async _context(ev, into) {
    into.replaceChildren(el("p", "muted", "loading…"));
    let events;
    try {
      events = await this.context(ev);
    } catch (err) {
      into.replaceChildren(el("p", "muted", `No context: ${err.message}`));
      return;
    }
    const list = el("div", "context-list");
    for (const other of events) {
      const row = eventRow(other);
      row.classList.add("static");
      if (other.id === ev.id) row.classList.add("current");
      else row.addEventListener("click", () => this.show(other));
      list.append(row);
    }
    into.replaceChildren(el("h3", "", `Context: ${ev.source}`), list);
  }
}
