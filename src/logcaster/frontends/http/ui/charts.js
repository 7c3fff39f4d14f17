// Charts of the server's own state, from /metrics every POLL_MS over the last
// WINDOW points: events per second by level, the error rate, the queue against
// its capacity, drops by reason, the store's indexing lag, query latency, and
// the sinks' health and breaker states. Each card also prints its latest value
// (what the tests compare with /api/v1/stats).

import uPlot from "./vendor/uPlot.esm.js";
import { ApiError, getText } from "./api.js";
import { parseMetrics, rates, sumBy, value } from "./metrics.js";
import { el, LEVELS } from "./text.js";

const POLL_MS = 2000;
const WINDOW = 150; // points kept: 5 minutes at POLL_MS
const HEIGHT = 150;
const M = "logcaster_";

const COMPACT = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

function compact(n) {
  return COMPACT.format(n);
}

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

// One chart card: a title, the latest value, a uPlot with fixed series.
class Card {
  constructor(parent, id, title, series) {
    this.series = series; // [{label, color}]
    this.node = el("section", "card");
    this.node.dataset.chart = id;
    this.now = el("span", "now", "…");
    const head = el("h3", "", title);
    head.append(this.now);
    this.plotNode = el("div", "plot");
    this.node.append(head, this.plotNode);
    parent.append(this.node);
    this.data = [[], ...series.map(() => [])];
    this.plot = null;
  }

  push(t, values, now) {
    this.data[0].push(t);
    values.forEach((v, i) => this.data[i + 1].push(v));
    if (this.data[0].length > WINDOW) for (const column of this.data) column.shift();
    this.now.textContent = now;
    this.draw();
  }

  draw() {
    const width = Math.max(240, this.plotNode.clientWidth);
    if (!this.plot) {
      const axis = { stroke: css("--muted"), grid: { stroke: css("--line") }, ticks: { stroke: css("--line") } };
      this.plot = new uPlot(
        {
          width,
          height: HEIGHT,
          legend: { show: true, live: false },
          cursor: { show: false },
          // Every chart counts something: its y axis starts at 0.
          scales: {
            // The last WINDOW polls, however few points there are yet.
            x: { time: true, range: (u, min, max) => [max - (WINDOW * POLL_MS) / 1000, max] },
            y: { range: (u, min, max) => [0, Math.max(max, 1) * 1.1] },
          },
          axes: [axis, { ...axis, size: 52, values: (u, ticks) => ticks.map(compact) }],
          series: [{}, ...this.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, points: { show: false } }))],
        },
        this.data,
        this.plotNode,
      );
    } else {
      if (this.plot.width !== width) this.plot.setSize({ width, height: HEIGHT });
      this.plot.setData(this.data);
    }
  }
}

export class ChartsView {
  constructor(node, onAuthError) {
    this.node = node;
    this.onAuthError = onAuthError;
    this.timer = null;
    this.last = null; // {t, samples}
    const grid = el("div", "cards");
    node.append(grid);
    const levelColors = { TRACE: "--trace", DEBUG: "--debug", INFO: "--info", WARN: "--warn", ERROR: "--error", FATAL: "--fatal" };
    this.levels = new Card(grid, "levels", "Events/s by level", LEVELS.map((l) => ({ label: l, color: css(levelColors[l]) })));
    this.errors = new Card(grid, "errors", "Error rate (ERROR and FATAL)", [{ label: "% of events", color: css("--error") }]);
    this.queue = new Card(grid, "queue", "Queue", [
      { label: "events", color: css("--accent") },
      { label: "capacity", color: css("--muted") },
    ]);
    this.drops = new Card(grid, "drops", "Drops/s by reason", [
      { label: "queue full (newest)", color: css("--warn") },
      { label: "queue full (oldest)", color: css("--error") },
      { label: "rejected", color: css("--fatal") },
      { label: "UDP queue full", color: css("--debug") },
    ]);
    this.lag = new Card(grid, "lag", "Store lag (events not indexed yet)", [{ label: "events", color: css("--accent") }]);
    this.latency = new Card(grid, "latency", "Query latency", [
      { label: "mean ms", color: css("--accent") },
      { label: "p95 ms", color: css("--warn") },
    ]);
    this.sinks = el("section", "card sinks");
    this.sinks.dataset.chart = "sinks";
    grid.append(this.sinks);
    window.addEventListener("resize", () => {
      for (const card of [this.levels, this.errors, this.queue, this.drops, this.lag, this.latency]) card.draw();
    });
  }

  start() {
    if (this.timer !== null) return;
    this.poll();
    this.timer = setInterval(() => this.poll(), POLL_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async poll() {
    let samples;
    try {
      samples = parseMetrics(await getText("/metrics"));
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        this.stop();
        this.onAuthError(err);
      }
      return;
    }
    const t = Date.now() / 1000;
    const last = this.last;
    this.last = { t, samples };
    this._sinks(samples);
    const queued = value(samples, M + "queue_events") ?? 0;
    const capacity = value(samples, M + "queue_capacity_events") ?? 0;
    this.queue.push(t, [queued, capacity], `${queued} / ${capacity}`);
    const lag = value(samples, M + "store_lag_events");
    this.lag.push(t, [lag ?? 0], lag === null ? "no store (start with -P DIR)" : String(lag));
    if (last === null) return; // rates need two readings
    const dt = t - last.t;
    const byLevel = rates(sumBy(last.samples, M + "logging_entries_total", "level"), sumBy(samples, M + "logging_entries_total", "level"), dt);
    const perLevel = LEVELS.map((l) => byLevel.get(l) || 0);
    const all = [...byLevel.values()].reduce((a, b) => a + b, 0);
    this.levels.push(t, perLevel, `${Math.round(all)} ev/s`);
    const bad = (byLevel.get("ERROR") || 0) + (byLevel.get("FATAL") || 0);
    const pct = all > 0 ? (100 * bad) / all : 0;
    this.errors.push(t, [pct], `${pct.toFixed(1)} %`);
    const drops = rates(sumBy(last.samples, M + "events_dropped_total", "reason"), sumBy(samples, M + "events_dropped_total", "reason"), dt);
    const reasons = ["queue_full_newest", "queue_full_oldest", "rejected", "udp_queue_full"];
    const dropped = reasons.map((r) => drops.get(r) || 0);
    this.drops.push(t, dropped, `${Math.round(dropped.reduce((a, b) => a + b, 0))} /s`);
    this._latency(t, last.samples, samples);
  }

  _latency(t, before, after) {
    const name = M + "query_duration_seconds";
    const count = (s) => sumBy(s, name + "_count", null).get("") || 0;
    const sum = (s) => sumBy(s, name + "_sum", null).get("") || 0;
    const n = count(after) - count(before);
    const mean = n > 0 ? (1000 * (sum(after) - sum(before))) / n : 0;
    // p95 from the buckets' increase: the first bound holding 95% of the new queries.
    const buckets = (s) => sumBy(s, name + "_bucket", "le");
    const was = buckets(before);
    let p95 = 0;
    if (n > 0) {
      const bounds = [...buckets(after).entries()]
        .map(([le, c]) => [le === "+Inf" ? Infinity : Number(le), c - (was.get(le) || 0)])
        .sort((a, b) => a[0] - b[0]);
      const hit = bounds.find(([, c]) => c >= 0.95 * n);
      p95 = hit && isFinite(hit[0]) ? 1000 * hit[0] : mean;
    }
    this.latency.push(t, [mean, p95], n > 0 ? `${mean.toFixed(1)} ms mean` : "no queries");
  }

  // The sinks' state now, as a table: local sinks up or down, forward sinks'
  // breakers closed, open or half open.
  _sinks(samples) {
    const rows = [];
    for (const s of samples) {
      if (s.name === M + "sink_up") rows.push([s.labels.sink, s.value ? "up" : "down"]);
      if (s.name === M + "forward_sink_breaker_state" && s.value === 1) {
        rows.push([`${s.labels.group} → ${s.labels.sink}`, `breaker ${s.labels.state.replace("_", " ")}`]);
      }
    }
    const table = el("table", "fields");
    for (const [name, state] of rows) {
      const tr = el("tr");
      const cell = el("td", "state-" + (state === "up" || state === "breaker closed" ? "ok" : "bad"), state);
      tr.append(el("th", "", name), cell);
      table.append(tr);
    }
    this.sinks.replaceChildren(el("h3", "", "Sinks"), table);
  }
}
