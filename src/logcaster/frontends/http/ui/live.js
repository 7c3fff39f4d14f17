// The live tail: /api/v1/tail read as a stream, filtered by the server, drawn
// into a virtualised list. Scrolling up pauses the view (new events wait,
// counted in the badge); Resume, or scrolling back to the end, goes on.

import { readEvents } from "./api.js";
import { Filters } from "./filters.js";
import { eventRow } from "./rows.js";
import { el } from "./text.js";
import { VirtualList } from "./vlist.js";

const MAX_ROWS = 20000; // events the view keeps; older ones go
const MAX_WAITING = 20000; // events held while paused; past it, the oldest go (counted)
const RETRY_MS = 2000;
// Events a second the server sends this view at most; the rest it counts as
// skipped (reason "rate"). Nobody reads faster, and past it the browser and the
// server would work for nothing (docs/dashboard.md).
const MAX_RATE = 2000;
// How often arrived events are drawn: ten times a second, or four once each draw
// brings a screenful or more. Then every draw replaces the whole screen, which
// nobody reads between draws, and each draw is most of a page's CPU (style,
// layout, paint; on the server's machine it is taken from ingest).
const FLUSH_MS = 100;
const BUSY_FLUSH_MS = 250;

export class LiveView {
  constructor(node, detail, onAuthError) {
    this.node = node;
    this.detail = detail;
    this.onAuthError = onAuthError;
    this.filters = new Filters(() => this.restart());
    this.list = new VirtualList(eventRow, (ev) => ev.id !== undefined && detail.show(ev), MAX_ROWS);
    this.paused = false;
    this.waiting = [];
    this.waitingDropped = 0;
    this.incoming = [];
    this._flushing = false;
    this._busy = false; // the last draw brought a screenful
    this.lastId = null;
    this.abort = null;
    this.running = false;

    this.state = el("span", "state", "connecting…");
    this.badge = el("button", "badge", "");
    this.badge.type = "button";
    this.badge.hidden = true;
    this.badge.addEventListener("click", () => this.resume());
    const clear = el("button", "clear", "Clear");
    clear.type = "button";
    clear.addEventListener("click", () => {
      this.list.clear();
      this.waiting = [];
      this.waitingDropped = 0;
      this._badge();
    });
    const bar = el("div", "bar");
    bar.append(this.filters.node, this.state, this.badge, clear);
    node.append(bar, this.list.node);

    this.list.node.addEventListener("scroll", () => {
      const bottom = this.list.atBottom();
      if (!bottom && !this.paused) this.pause();
      else if (bottom && this.paused) this.resume();
    });
  }

  start() {
    if (this.running) return;
    this.running = true;
    this._connect();
  }

  stop() {
    this.running = false;
    if (this.abort) this.abort.abort();
    this.abort = null;
  }

  // Filters changed: a new stream from now (the old events stay in view).
  restart() {
    this.lastId = null;
    this.stop();
    this.start();
  }

  pause() {
    this.paused = true;
    this._badge();
  }

  resume() {
    this.paused = false;
    if (this.waitingDropped) {
      this.list.append([{ skipped: this.waitingDropped, reason: "held too long while paused" }]);
    }
    this.list.append(this.waiting);
    this.waiting = [];
    this.waitingDropped = 0;
    this.list.scrollToBottom();
    this._badge();
  }

  _badge() {
    const n = this.waiting.length + this.waitingDropped;
    this.badge.hidden = !this.paused;
    this.badge.textContent = `Paused, ${n} new · Resume`;
  }

  async _connect() {
    const abort = new AbortController();
    this.abort = abort;
    while (this.running && this.abort === abort) {
      try {
        this.state.textContent = "connecting…";
        const params = [...this.filters.params(), ["max_rate", String(MAX_RATE)]];
        await readEvents("/api/v1/tail", params, (item) => this._item(item), abort.signal, this.lastId);
        this.state.textContent = "ended";
      } catch (err) {
        if (abort.signal.aborted) return;
        if (err.status === 401 || err.status === 403) {
          this.running = false;
          this.onAuthError(err);
          return;
        }
        this.state.textContent = err.status === 400 ? `filter: ${err.message}` : "disconnected, retrying…";
        if (err.status === 400) return; // a bad regex: wait for the user to change it
      }
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }

  _item(item) {
    if (item.id !== null && item.id !== "") this.lastId = item.id;
    if (item.type === "message") {
      this.incoming.push(JSON.parse(item.data));
    } else if (item.type === "skipped") {
      // One row per run of skips within a frame, not one per notice.
      const s = JSON.parse(item.data);
      const last = this.incoming[this.incoming.length - 1];
      if (last && last.skipped && last.reason === s.reason) last.skipped += s.count;
      else this.incoming.push({ skipped: s.count, reason: s.reason });
    } else if (item.type === "live") {
      this.state.textContent = "live";
    } else if (item.type === "end") {
      this.state.textContent = "the server is stopping";
    }
    if (!this._flushing) {
      this._flushing = true;
      setTimeout(() => this._flush(), this._busy ? BUSY_FLUSH_MS : FLUSH_MS);
    }
  }

  // Four to ten times a second: the events that came since, into the view or
  // the waiting room. Smooth to read, and a tenth of the drawing of every frame.
  _flush() {
    this._flushing = false;
    const batch = this.incoming;
    this.incoming = [];
    this._busy = batch.length >= this.list.rowsOnScreen();
    if (!batch.length) return;
    if (this.paused) {
      this.waiting.push(...batch);
      const over = this.waiting.length - MAX_WAITING;
      if (over > 0) {
        this.waiting.splice(0, over);
        this.waitingDropped += over;
      }
      this._badge();
      return;
    }
    this.list.append(batch);
    this.list.scrollToBottom();
  }
}
