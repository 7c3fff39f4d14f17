// The dashboard's start: sign-in, the views and which one shows (the URL's
// hash: #live, #search?..., #charts), and the detail panel they share.

import { ApiError, getJson, setToken, token } from "./api.js";

const CONTEXT = 10; // events shown before and after one, from its source

// The events around `ev` from the same source, oldest first: two queries by
// event time from it, one back and one forward, joined at it.
async function contextOf(ev) {
  const origin = ["origin", ev.source];
  const limit = ["limit", String(CONTEXT + 1)];
  const [before, after] = await Promise.all([
    getJson("/api/v1/query", [origin, ["time_to", String(ev.ts)], ["order", "desc"], limit]),
    getJson("/api/v1/query", [origin, ["time_from", String(ev.ts)], ["order", "asc"], limit]),
  ]);
  const byId = new Map();
  for (const other of [...before.events, ...after.events]) byId.set(other.id, other);
  const all = [...byId.values()].sort((a, b) => a.ts - b.ts || a.id - b.id);
  const at = all.findIndex((other) => other.id === ev.id);
  return at < 0 ? all : all.slice(Math.max(0, at - CONTEXT), at + CONTEXT + 1);
}
import { ChartsView } from "./charts.js";
import { Detail } from "./detail.js";
import { LiveView } from "./live.js";
import { SearchView } from "./search.js";

const $ = (id) => document.getElementById(id);

function notice(text) {
  const node = $("notice");
  node.textContent = text || "";
  node.hidden = !text;
}

// Whether the API lets this tab read logs: 401 asks for a token, 403 says why not.
async function canRead() {
  try {
    await getJson("/api/v1/stats");
    return true;
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    authError(err);
    return false;
  }
}

function authError(err) {
  if (err.status === 401) {
    if (token()) notice("That token was refused (unknown, revoked or expired). Sign in again.");
    setToken(null);
    showSignIn();
  } else if (err.status === 403) {
    // Signed in, but not allowed to read: say so, and offer another token.
    setToken(null);
    showSignIn();
    notice("This token may not read logs: it needs a role with READ_LOGS (viewer, operator or admin).");
  } else {
    notice(`The server answered ${err.status}: ${err.message}`);
  }
}

function showSignIn() {
  $("signin").hidden = false;
  for (const view of document.querySelectorAll(".view")) view.hidden = true;
  $("signout").hidden = true;
  $("signin").elements.token.focus();
}

const views = {};
let current = "live";

function route() {
  const name = (location.hash.slice(1).split("?")[0] || "live").toLowerCase();
  current = views[name] ? name : "live";
  for (const [key, view] of Object.entries(views)) {
    const section = $("view-" + key);
    section.hidden = key !== current;
    // The live tail keeps streaming behind another view (it is cheap, and its
    // events are there when one comes back); a search runs when shown; the
    // charts poll only while shown.
    if (key === current) view.start();
    else if (key === "charts") view.stop();
  }
  for (const a of document.querySelectorAll(".tabs a")) {
    a.setAttribute("aria-current", a.dataset.view === current ? "page" : "false");
  }
}

async function main() {
  // A click on a value in the detail filters the view it was opened from.
  const addFilter = (name, value) => views[current].filters.addField(name, value);
  const showRequest = (name, value) => views.search.showRequest(name, value);
  const detail = new Detail($("detail"), addFilter, showRequest, contextOf);
  views.live = new LiveView($("view-live"), detail, authError);
  views.search = new SearchView($("view-search"), detail, authError, notice);
  views.charts = new ChartsView($("view-charts"), authError);
  $("signin").addEventListener("submit", async (e) => {
    e.preventDefault();
    setToken($("signin").elements.token.value.trim());
    $("signin").elements.token.value = "";
    if (await canRead()) {
      $("signin").hidden = true;
      notice("");
      $("signout").hidden = false;
      route();
    }
  });
  $("signout").addEventListener("click", () => {
    setToken(null);
    for (const view of Object.values(views)) view.stop();
    location.reload();
  });
  window.addEventListener("hashchange", route);
  if (await canRead()) {
    $("signout").hidden = !token();
    route();
  }
}

main();
