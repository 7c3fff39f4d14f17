// One event as a one-line row of the live tail and the search results.

import { el, firstLine, formatTime, levelClass } from "./text.js";

// Why the server did not send events (the tail's `skipped` reasons), in words.
const WHY = {
  rate: "more than this view shows a second",
  slow: "this view fell behind",
  not_in_memory: "too old to replay",
};

export function eventRow(ev) {
  if (ev.skipped) {
    // The server's own account of events this view did not get.
    const why = WHY[ev.reason] || ev.reason;
    return el("div", "row skipped", `⋯ ${ev.skipped.toLocaleString()} events not shown: ${why}`);
  }
  const row = el("div", "row " + levelClass(ev.level));
  row.append(
    el("span", "c-time", formatTime(ev.ts)),
    el("span", "c-level", ev.level || "-"),
    el("span", "c-service", ev.service || ""),
    el("span", "c-message", firstLine(ev.message || ev.body)),
  );
  if ((ev.body || "").includes("\n")) row.append(el("span", "c-more", "⏎"));
  return row;
}
