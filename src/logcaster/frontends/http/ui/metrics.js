// /metrics (the Prometheus text format) read into samples, and the deltas the
// charts draw. Only what the charts use is kept: name, labels, value.

// `name{a="x",b="y"} 12.5` -> {name, labels: {a: "x", b: "y"}, value: 12.5}.
const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[2]) for (const l of m[2].matchAll(LABEL)) labels[l[1]] = l[2].replace(/\\(.)/g, "$1");
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

// The sum of a metric's samples, grouped by one label (or all together: key null).
export function sumBy(samples, name, key) {
  const out = new Map();
  for (const s of samples) {
    if (s.name !== name) continue;
    const group = key === null ? "" : s.labels[key] ?? "";
    out.set(group, (out.get(group) || 0) + s.value);
  }
  return out;
}

export function value(samples, name, labels = {}) {
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
  }
  return null;
}

// Per-second rates between two readings of a counter grouped by a label.
export function rates(before, after, seconds) {
  const out = new Map();
  for (const [group, now] of after) {
    const then = before.get(group);
    // A counter that went down was reset (a restart): no rate for this step.
    out.set(group, then === undefined || now < then ? 0 : (now - then) / seconds);
  }
  return out;
}
