// One event as a one-line row of the live tail and the search results.

import { el, firstLine, formatTime, levelClass } from "./text.js";

export function eventRow(ev) {
  if (ev.skipped) {
    // The server's own account of events this view did not get (a slow reader).
    const row = el("div", "row skipped", `⋯ ${ev.skipped} events skipped (${ev.reason})`);
    return row;
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
