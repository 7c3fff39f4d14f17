// The search's histogram: its matches counted by time bucket and level
// (/api/v1/histogram), as stacked bars above the results.

import uPlot from "./vendor/uPlot.esm.js";
import { getJson } from "./api.js";
import { el, LEVELS } from "./text.js";

const BUCKETS = 60;
const HEIGHT = 110;
// Bottom to top: the quiet levels first, so the errors sit on top where they show.
const STACK = ["none", ...LEVELS];
const COLORS = { none: "--muted", TRACE: "--trace", DEBUG: "--debug", INFO: "--info", WARN: "--warn", ERROR: "--error", FATAL: "--fatal" };

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

export class SearchHistogram {
  constructor(parent) {
    this.node = el("div", "histogram");
    this.caption = el("span", "caption", "");
    this.plotNode = el("div", "plot");
    this.node.append(this.plotNode, this.caption);
    parent.append(this.node);
    this.plot = null;
    this.doc = null;
    window.addEventListener("resize", () => this.doc && this._draw(this.doc));
  }

  async load(params, signal) {
    const doc = await getJson("/api/v1/histogram", [...params, ["buckets", String(BUCKETS)]], signal);
    this.doc = doc;
    this._draw(doc);
    return doc;
  }

  failed(message) {
    this.caption.textContent = message;
  }

  _draw(doc) {
    const edges = doc.edges;
    const width = edges.length > 1 ? edges[1] - edges[0] : 1;
    const xs = edges.slice(0, -1).map((t) => t + width / 2);
    // Cumulative series, drawn tallest first so each level's band shows.
    const totals = xs.map(() => 0);
    const stacked = STACK.map((level) => {
      const counts = doc.levels[level] || [];
      return counts.map((n, i) => (totals[i] += n));
    });
    const order = STACK.map((_, i) => i).reverse();
    const data = [xs, ...order.map((i) => stacked[i])];
    const series = [{}, ...order.map((i) => ({
      label: STACK[i],
      stroke: css(COLORS[STACK[i]]),
      fill: css(COLORS[STACK[i]]),
      paths: uPlot.paths.bars({ size: [0.9, 64] }),
      points: { show: false },
    }))];
    const chartWidth = Math.max(300, this.plotNode.clientWidth);
    if (this.plot) this.plot.destroy();
    const axis = { stroke: css("--muted"), grid: { stroke: css("--line") }, ticks: { stroke: css("--line") } };
    this.plot = new uPlot(
      {
        width: chartWidth,
        height: HEIGHT,
        legend: { show: false },
        cursor: { show: false },
        scales: { x: { time: true, range: [edges[0], edges[edges.length - 1]] }, y: { range: (u, min, max) => [0, Math.max(max, 1)] } },
        axes: [axis, { ...axis, size: 44 }],
        series,
      },
      data,
      this.plotNode,
    );
    const per = width >= 3600 ? `${(width / 3600).toFixed(1)} h` : width >= 60 ? `${Math.round(width / 60)} min` : `${Math.round(width)} s`;
    const noun = doc.total === 1 ? "event" : "events";
    this.caption.textContent = `${doc.total} ${noun} by level, ${per} a bar`;
  }
}
