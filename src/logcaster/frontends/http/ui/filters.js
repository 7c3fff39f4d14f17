// The filter bar shared by the live tail and the search: levels, service,
// keyword, regex and field=value chips. They become the API's own query
// parameters (docs/query.md), so the server does all the filtering.

import { el, LEVELS, levelClass } from "./text.js";

const TYPING_MS = 300; // text fields apply after the typist pauses
const MAX_CHIPS = 16; // field=value filters; the server bounds its own too

export class Filters {
  constructor(onChange) {
    this.onChange = onChange;
    this.levels = new Set();
    this.fields = []; // [name, value] pairs
    this.node = el("form", "filters");
    this.node.setAttribute("role", "search");
    this.node.addEventListener("submit", (e) => e.preventDefault());
    this._timer = null;

    const levels = el("span", "levels");
    this.levelButtons = new Map();
    for (const level of LEVELS) {
      const b = el("button", "level " + levelClass(level), level);
      b.type = "button";
      b.setAttribute("aria-pressed", "false");
      b.addEventListener("click", () => this.toggleLevel(level));
      this.levelButtons.set(level, b);
      levels.append(b);
    }
    this.service = this._input("service", "service");
    this.keyword = this._input("keyword", "keyword");
    this.regex = this._input("regex", "regex (RE2)");
    this.chips = el("span", "chips");
    this.fieldInput = this._input("field", "field=value ⏎", false);
    this.fieldInput.addEventListener("keydown", (e) => {
      if (e.key !== "Enter") return;
      e.preventDefault();
      const text = this.fieldInput.value.trim();
      const eq = text.indexOf("=");
      if (eq > 0) {
        this.addField(text.slice(0, eq).trim(), text.slice(eq + 1).trim());
        this.fieldInput.value = "";
      }
    });
    this.node.append(levels, this.service, this.keyword, this.regex, this.chips, this.fieldInput);
  }

  _input(name, placeholder, live = true) {
    const input = el("input", "filter-" + name);
    input.name = name;
    input.placeholder = placeholder;
    input.setAttribute("aria-label", placeholder);
    input.autocomplete = "off";
    if (live) input.addEventListener("input", () => this._later());
    return input;
  }

  _later() {
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this.onChange(), TYPING_MS);
  }

  toggleLevel(level) {
    if (this.levels.has(level)) this.levels.delete(level);
    else this.levels.add(level);
    this.levelButtons.get(level).setAttribute("aria-pressed", String(this.levels.has(level)));
    this.onChange();
  }

  // Click-to-filter from an event: service, level, host and fields alike.
  addField(name, value) {
    if (!name || value === undefined || value === null) return;
    if (name === "level") {
      if (!this.levels.has(value)) this.toggleLevel(String(value));
      return;
    }
    if (name === "service") {
      this.service.value = String(value);
      this.onChange();
      return;
    }
    if (this.fields.some(([n, v]) => n === name && v === String(value))) return;
    if (this.fields.length >= MAX_CHIPS) return;
    this.fields.push([name, String(value)]);
    this._drawChips();
    this.onChange();
  }

  _drawChips() {
    this.chips.replaceChildren();
    for (const [name, value] of this.fields) {
      const chip = el("button", "chip", `${name}=${value} ✕`);
      chip.type = "button";
      chip.title = "remove this filter";
      chip.addEventListener("click", () => {
        this.fields = this.fields.filter(([n, v]) => !(n === name && v === value));
        this._drawChips();
        this.onChange();
      });
      this.chips.append(chip);
    }
  }

  // The API's query parameters for these filters.
  params() {
    const out = [];
    if (this.levels.size) out.push(["level", [...this.levels].join(",")]);
    const service = this.service.value.trim();
    if (service) out.push(["service", service]);
    const keyword = this.keyword.value.trim();
    if (keyword) out.push(["keyword", keyword]);
    const regex = this.regex.value.trim();
    if (regex) out.push(["regex", regex]);
    for (const [name, value] of this.fields) out.push([name, value]);
    return out;
  }

  // Set from parameters (a shared search URL); unknown names become field chips.
  load(params, ignore = []) {
    this.levels.clear();
    this.fields = [];
    this.service.value = this.keyword.value = this.regex.value = "";
    for (const [name, value] of params) {
      if (ignore.includes(name)) continue;
      if (name === "level") value.split(",").forEach((l) => l && this.levels.add(l.toUpperCase()));
      else if (name === "service") this.service.value = value;
      else if (name === "keyword") this.keyword.value = value;
      else if (name === "regex") this.regex.value = value;
      else if (this.fields.length < MAX_CHIPS) this.fields.push([name, value]);
    }
    for (const [level, b] of this.levelButtons) b.setAttribute("aria-pressed", String(this.levels.has(level)));
    this._drawChips();
  }
}
