// Untrusted text, made safe to show and easy to read.
//
// Event text is only ever put in the page with textContent (never innerHTML),
// so markup in it is shown, not run. What textContent would still let through
// are characters that change how the text reads: control characters (ANSI
// colour escapes), bidi overrides that reorder a line, line and paragraph
// separators. They are shown as visible escapes, as the server's own query
// output does (security/neutralize.py).

const HIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

export function neutral(text) {
  if (text === null || text === undefined) return "";
  const s = String(text);
  return s.replace(HIDDEN, (c) => {
    const code = c.charCodeAt(0);
    // ANSI colour codes read best as the \x1b[31m a terminal user knows.
    if (code < 0x100) return "\\x" + code.toString(16).padStart(2, "0");
    return "\\u" + code.toString(16).padStart(4, "0");
  });
}

// An element with a class and (neutralised) text: the one way event data enters the DOM.
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = neutral(text);
  return node;
}

export const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

// A level's CSS class ("lv-error"); unknown levels get the plain one.
export function levelClass(level) {
  return LEVELS.includes(level) ? "lv-" + level.toLowerCase() : "lv-none";
}

function pad(n, width = 2) {
  return String(n).padStart(width, "0");
}

// Local time with milliseconds: "2026-12-05 14:03:07.123".
export function formatTime(ts) {
  if (typeof ts !== "number" || !isFinite(ts)) return "";
  const d = new Date(ts * 1000);
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
  );
}

// The first line of a text, for one-line rows.
export function firstLine(text) {
  const s = text === null || text === undefined ? "" : String(text);
  const nl = s.indexOf("\n");
  return nl < 0 ? s : s.slice(0, nl);
}
