// townsquare web UI: search, "What's happening" at any moment, story summaries with citations,
// chat.
//
// Plain ES2020, no framework and no build step. Post text is untrusted input (anyone can post
// anything), so every string from the API reaches the page through textContent or attribute
// setters, never innerHTML.
"use strict";

const KEY_STORAGE = "townsquare.apiKey";
const CHAT_MODEL = "townsquare";
const SVG_NS = "http://www.w3.org/2000/svg";

const state = {
  auth: false,          // from GET /v1/info: send a bearer key?
  search: null,         // {q, mode, cursor, controller} of the search on screen
  storyId: null,        // the story in the detail panel (guards against late responses)
  postId: null,         // the post in the post view
  chat: [],             // OpenAI-style history: [{role, content}]
  chatBusy: false,
  at: null,             // the moment "What's happening" shows (ISO, UTC); null: now
  storiesSeq: 0,        // the latest stories and trends requests (a later one wins)
  trendsSeq: 0,
  timeline: null,       // {start, width, bins: [{count, at}]} of every story's posts
  shownAt: null,        // the moment the stories on screen are from (the server's answer)
};

const $ = (sel) => document.querySelector(sel);

// ---------------------------------------------------------------------------------------------
// Small DOM helpers

/** Builds an element. `props` are set as properties (textContent, className, ...) except
 * `dataset` and `attrs`; children are nodes or strings (strings become text nodes, so text from
 * the API can never become markup). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "attrs") for (const [a, av] of Object.entries(v)) node.setAttribute(a, av);
    else node[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Shows `message` in an error element, or hides it when message is empty. */
function showError(node, message) {
  node.textContent = message || "";
  node.hidden = !message;
}

/** "2020-01-01 10:05 UTC": stream times are UTC and a fixed format keeps screenshots and tests
 * independent of the viewer's locale and time zone. */
function fmtTime(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return iso ? String(iso) : "";
  return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

function timeEl(iso) {
  return el("time", { textContent: fmtTime(iso), dateTime: iso || "" });
}

function authorLabel(post) {
  const handle = post.author || post.author_handle;
  if (handle) return "@" + String(handle).replace(/^@/, "");
  return post.author_name || "unknown author";
}

/** Only http(s) links from the API become hrefs: a post's url is data, and a "javascript:" url
 * must not turn into a clickable script. */
function safeUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

/** A citation link: opens the post view through the #/post/<id> route (shareable, and the back
 * button closes what it opened). */
function citationLink(index, postId, title) {
  return el("a", {
    className: "citation", href: "#/post/" + encodeURIComponent(postId), textContent: `[${index}]`,
    title: title || "post " + postId, dataset: { postId: String(postId) },
  });
}

// ---------------------------------------------------------------------------------------------
// API access

class ApiError extends Error {
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

function headers(extra = {}) {
  const h = { Accept: "application/json", ...extra };
  const key = localStorage.getItem(KEY_STORAGE);
  if (state.auth && key) h.Authorization = "Bearer " + key;
  return h;
}

/** Turns a failed response into an ApiError carrying the API's {"error": {code, message}}. */
async function errorFrom(res) {
  let code = "http_" + res.status;
  let message = `${res.status} ${res.statusText || "error"}`;
  try {
    const body = await res.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    } else if (body && typeof body.detail === "string") {
      message = body.detail;    // a framework error that skipped the API's error format
    }
  } catch (_) { /* not JSON: keep the status line */ }
  if (res.status === 401 && state.auth) message += "; enter it in the API key field at the top";
  return new ApiError(message, code, res.status);
}

/** fetch() for JSON endpoints: adds the key, raises ApiError with the API's message. */
async function api(path, { method = "GET", body, signal } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method, signal,
      headers: headers(body !== undefined ? { "Content-Type": "application/json" } : {}),
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError("cannot reach the server: " + e.message, "network", 0);
  }
  if (!res.ok) throw await errorFrom(res);
  return res.json();
}

// ---------------------------------------------------------------------------------------------
// Posts (search results and key posts share one rendering)

function postItem(post, extraClass) {
  const id = String(post.id);
  return el("li", { className: extraClass || "", dataset: { postId: id } },
    el("p", { className: "post-head" },
      el("span", { className: "author", textContent: authorLabel(post) }),
      timeEl(post.created_at),
      post.near_duplicates > 0 ? el("span", { className: "muted small",
        textContent: `+${post.near_duplicates} similar` }) : null,
      el("a", {
        className: "post-id mono post-link", href: "#/post/" + encodeURIComponent(id),
        textContent: id, title: "Open this post",
      })),
    el("p", { className: "post-text", textContent: post.text || "" }));
}

// ---------------------------------------------------------------------------------------------
// Search

async function runSearch(append) {
  const s = state.search;
  if (!s) return;
  s.controller?.abort();                 // a newer search replaces an older one still loading
  s.controller = new AbortController();
  const params = new URLSearchParams({ q: s.q, mode: s.mode, limit: "20" });
  if (append && s.cursor) params.set("cursor", s.cursor);
  const results = $("#results");
  const button = $("#search-button");
  const more = $("#search-more");
  showError($("#search-error"), "");
  $("#search-status").textContent = append ? "Loading more…" : "Searching…";
  results.setAttribute("aria-busy", "true");
  button.disabled = more.disabled = true;
  if (!append) { results.replaceChildren(); more.hidden = true; }
  try {
    const data = await api("/v1/search?" + params, { signal: s.controller.signal });
    if (state.search !== s) return;
    for (const r of data.results || []) results.append(postItem(r, "result"));
    s.cursor = data.next_cursor || null;
    more.hidden = !s.cursor;
    const n = results.children.length;
    const ms = data.timings_ms && data.timings_ms.total;
    $("#search-status").textContent = n === 0 ? "No results."
      : `${n} result${n === 1 ? "" : "s"}` + (ms ? ` (${Math.round(ms)} ms)` : "");
  } catch (e) {
    if (e.name === "AbortError") return;
    $("#search-status").textContent = "";
    showError($("#search-error"), e.message);
  } finally {
    if (state.search === s) {
      results.removeAttribute("aria-busy");
      button.disabled = more.disabled = false;
    }
  }
}

function onSearchSubmit(ev) {
  ev.preventDefault();
  const q = $("#search-input").value.trim();
  if (!q) return;
  state.search?.controller?.abort();
  state.search = { q, mode: $("#search-mode").value, cursor: null, controller: null };
  runSearch(false);
}

// ---------------------------------------------------------------------------------------------
// "What's happening"

function storyHeadline(story) {
  // The headline may be missing on older servers: the top terms still name the story.
  return story.headline || (story.top_terms || []).slice(0, 4).join(", ") || `Story ${story.id}`;
}

/** Loads what happened at the chosen moment: stories, trends, and the timeline's marker. */
function loadHappening() {
  loadStories();
  loadTrends();
  if (!state.timeline) loadTimeline();
}

async function loadStories() {
  const seq = ++state.storiesSeq;
  const list = $("#stories");
  $("#stories-status").textContent = "Loading…";
  showError($("#stories-error"), "");
  const params = new URLSearchParams({ limit: "10" });
  if (state.at) params.set("at", state.at);
  try {
    const data = await api("/v1/stories?" + params);
    if (seq !== state.storiesSeq) return;               // a later moment was picked meanwhile
    const stories = data.stories || [];
    list.replaceChildren(...stories.map((s) => el("li",
      { className: "story" + (String(s.id) === state.storyId ? " selected" : ""),
        dataset: { storyId: String(s.id) } },
      el("button", { type: "button", className: "story-open" },
        el("span", { className: "story-headline", textContent: storyHeadline(s) }),
        el("span", { className: "story-terms",
          textContent: (s.top_terms || []).slice(0, 6).join(" · ") }),
        el("span", { className: "story-count",
          textContent: `${s.posts} posts` + (s.authors ? `, ${s.authors} authors` : "")
            + (state.at && s.recent_posts ? `, ${s.recent_posts} in the day before` : "")
            + (s.last ? ` · last ${fmtTime(s.last)}` : "") })))));
    $("#stories-status").textContent = stories.length ? ""
      : state.at ? "No stories in the day before this moment." : "No stories yet.";
    showMoment(data);
  } catch (e) {
    if (seq !== state.storiesSeq) return;
    $("#stories-status").textContent = "";
    showError($("#stories-error"), e.message);
    if (e.status === 401) $("#api-key").focus();          // the first thing a new visitor sees
  }
}

/** Says which moment the column shows, and when the server fell back from "now" to the
 * stream's most recent active period (an archive whose last posts are a quiet tail). */
function showMoment(data) {
  const fb = data.fallback;
  state.shownAt = data.at || null;
  $("#moment-shown").textContent = state.at ? `Showing ${fmtTime(state.at)}`
    : data.at ? `Showing now (the latest post, ${fmtTime(fb ? fb.from : data.at)})` : "";
  const note = $("#moment-fallback");
  note.hidden = !fb;
  note.textContent = fb ? `Nothing active at the latest post: showing the most recent stories, `
    + `up to ${fmtTime(fb.at)}.` : "";
  note.dataset.at = fb ? fb.at : "";
  drawTimeline();
}

async function loadTrends() {
  const seq = ++state.trendsSeq;
  const list = $("#trends");
  showError($("#trends-error"), "");
  const params = new URLSearchParams({ limit: "8" });
  if (state.at) params.set("at", state.at);
  try {
    const data = await api("/v1/trends?" + params);
    if (seq !== state.trendsSeq) return;
    const trends = data.trends || [];
    list.replaceChildren(...trends.map((t) => el("li", { className: "trend" },
      el("span", { className: "trend-label", textContent: t.label }),
      el("span", { className: "muted small", textContent: ` ${t.authors} authors` }))));
    const when = data.now ? fmtTime(data.now) : "";
    $("#trends-status").textContent = !trends.length ? "No trends in the hour before this moment."
      : data.fallback ? `Nothing bursting at the latest post: these are from the hour before ${when}.`
        : `In the hour before ${when}.`;
  } catch (e) {
    if (seq !== state.trendsSeq) return;
    $("#trends-status").textContent = "";
    showError($("#trends-error"), e.message);
  }
}

// ---------------------------------------------------------------------------------------------
// The story timeline: posts in stories over the whole stream, in about TIMELINE_BINS bins of
// whole hours; a click looks at that bin's busiest hour (its end, so the hour is in the view).

const TIMELINE_BINS = 120;
const HOUR_MS = 3600000;

async function loadTimeline() {
  try {
    const data = await api("/v1/stories?all=true&limit=100");
    state.timeline = binTimeline(data.stories || []);
  } catch (_) {
    state.timeline = null;            // the stories column says what failed
  }
  drawTimeline();
}

function binTimeline(stories) {
  const hours = new Map();
  for (const s of stories) {
    for (const [t, n] of s.timeline || []) {
      const ms = Date.parse(t);
      if (!Number.isNaN(ms)) hours.set(ms, (hours.get(ms) || 0) + (Number(n) || 0));
    }
  }
  if (!hours.size) return null;
  const start = Math.min(...hours.keys());
  const span = Math.max(...hours.keys()) + HOUR_MS - start;
  const width = Math.max(1, Math.ceil(span / TIMELINE_BINS / HOUR_MS)) * HOUR_MS;
  const bins = Array.from({ length: Math.ceil(span / width) }, (_, i) =>
    ({ count: 0, peak: -1, at: start + (i + 1) * width }));
  for (const [ms, n] of hours) {
    const b = bins[Math.floor((ms - start) / width)];
    b.count += n;
    if (n > b.peak) { b.peak = n; b.at = ms + HOUR_MS; }
  }
  return { start, width, bins };
}

function drawTimeline() {
  const node = $("#timeline");
  const tl = state.timeline;
  node.closest(".timeline").hidden = !tl;
  node.replaceChildren();
  if (!tl) return;
  const W = 340, top = 4, plotH = 38, slot = W / tl.bins.length;
  const max = Math.max(1, ...tl.bins.map((b) => b.count));
  tl.bins.forEach((b, i) => {
    const iso = new Date(b.at).toISOString();
    const hit = svg("rect", { class: "tl-hit", x: (i * slot).toFixed(2), y: 0,
      width: slot.toFixed(2), height: top + plotH, "data-at": iso, "data-count": b.count });
    hit.append(svg("title", {}, `${b.count} post${b.count === 1 ? "" : "s"} in stories; `
      + `click to look at ${fmtTime(iso)}`));
    const h = (b.count / max) * plotH;
    node.append(svg("rect", { class: "tl-bar", x: (i * slot + slot * 0.1).toFixed(2),
      y: (top + plotH - h).toFixed(2), width: Math.max(0.5, slot * 0.8).toFixed(2),
      height: h.toFixed(2) }), hit);
  });
  const end = tl.start + tl.bins.length * tl.width;
  const day = (ms) => new Date(ms).toISOString().slice(0, 10);
  node.append(svg("text", { x: 0, y: 54, class: "chart-label" }, day(tl.start)),
    svg("text", { x: W, y: 54, "text-anchor": "end", class: "chart-label" }, day(end)));
  const shown = Date.parse(state.shownAt || "");
  if (!Number.isNaN(shown) && shown >= tl.start && shown <= end) {
    const x = ((shown - tl.start) / (end - tl.start)) * W;
    node.append(svg("line", { class: "tl-marker", x1: x.toFixed(2), x2: x.toFixed(2), y1: 0,
      y2: top + plotH }));
  }
}

function onTimelineClick(ev) {
  const hit = ev.target.closest("[data-at]");
  if (hit) setMoment(hit.dataset.at);
}

/** The picker's value ("2013-04-15T18:00", read as UTC like every time on the page) as ISO. */
function pickerToIso(value) {
  const d = new Date(value + (value.length === 16 ? ":00Z" : "Z"));
  return value && !Number.isNaN(d.getTime()) ? d.toISOString() : null;
}

/** Looks at `iso` (null: now), keeping it in the address (?at=...) so the view can be shared. */
function setMoment(iso) {
  state.at = iso;
  $("#at-input").value = iso ? iso.slice(0, 16) : "";
  const url = new URL(location.href);
  if (iso) url.searchParams.set("at", iso); else url.searchParams.delete("at");
  history.replaceState(null, "", url.pathname + url.search + url.hash);
  loadHappening();
}

function onStoryClick(ev) {
  const item = ev.target.closest(".story");
  if (item) openStory(item.dataset.storyId);
}

async function openStory(id) {
  state.storyId = id;
  for (const s of document.querySelectorAll(".story")) {
    s.classList.toggle("selected", s.dataset.storyId === id);
  }
  const panel = $("#story-detail");
  panel.hidden = false;
  $("#story-title").textContent = "Loading story…";
  $("#story-meta").textContent = "";
  showError($("#story-error"), "");
  $("#story-chart").replaceChildren();
  $("#story-posts").replaceChildren();
  panel.scrollIntoView({ block: "start", behavior: "smooth" });
  // Story and summary load side by side: the summary can take seconds with a local model.
  loadSummary(id);
  try {
    const story = await api("/v1/stories/" + encodeURIComponent(id));
    if (state.storyId !== id) return;
    $("#story-title").textContent = storyHeadline(story);
    const langs = Object.entries(story.languages || {}).sort((a, b) => b[1] - a[1])
      .map(([l, n]) => `${l} ${n}`).join(", ");
    $("#story-meta").textContent = [
      `${story.posts} posts`, story.authors ? `${story.authors} authors` : null,
      story.first ? `${fmtTime(story.first)} – ${fmtTime(story.last)}` : null,
      langs ? `languages: ${langs}` : null, story.active === false ? "retired" : "active",
      (story.top_terms || []).length ? `terms: ${story.top_terms.slice(0, 8).join(", ")}` : null,
    ].filter(Boolean).join(" · ");
    drawChart($("#story-chart"), story.timeline || []);
    const list = $("#story-posts");
    list.replaceChildren(...(story.key_posts || []).map((p) => postItem(p, "key-post")));
    if (!list.children.length) {
      list.append(el("li", { className: "muted", textContent: "No posts." }));
    }
  } catch (e) {
    if (state.storyId !== id) return;
    $("#story-title").textContent = "Story " + id;
    showError($("#story-error"), e.message);
  }
}

async function loadSummary(id) {
  const box = $("#summary-sentences");
  const section = box.closest(".summary");
  box.replaceChildren();
  $("#summary-headline").textContent = "";
  $("#summary-model").textContent = "";
  showError($("#summary-error"), "");
  $("#summary-status").textContent = "Summarizing…";
  section.setAttribute("aria-busy", "true");
  try {
    const sum = await api("/v1/summarize", { method: "POST", body: { story_id: String(id) } });
    if (state.storyId !== id) return;
    $("#summary-headline").textContent = sum.headline || "";
    // One number per cited post, in order of first citation, so a post cited twice keeps its
    // number and the numbers read [1], [2], ... down the summary.
    const numbers = new Map();
    for (const s of sum.sentences || []) {
      const li = el("li", { className: "summary-sentence" },
        el("span", { className: "sentence-text", textContent: s.text }));
      for (const c of s.citations || []) {
        const pid = String(c);
        if (!numbers.has(pid)) numbers.set(pid, numbers.size + 1);
        li.append(" ", citationLink(numbers.get(pid), pid));
      }
      if (s.verified === false) {
        li.append(el("span", { className: "unverified", textContent: "unverified",
          title: "The cited posts do not clearly support this sentence" }));
      }
      box.append(li);
    }
    // Stage timings; "total" when the server sends one, else their sum.
    const t = sum.timings_ms || {};
    const ms = t.total ?? Object.values(t).reduce((a, v) => a + (Number(v) || 0), 0);
    $("#summary-status").textContent = box.children.length ? "" : "No summary: too few posts.";
    $("#summary-model").textContent = sum.model
      ? `Summary by ${sum.model}` + (ms ? ` in ${ms < 1000 ? Math.round(ms) + " ms"
        : (ms / 1000).toFixed(1) + " s"}` : "") : "";
  } catch (e) {
    if (state.storyId !== id) return;
    $("#summary-status").textContent = "";
    showError($("#summary-error"), "Summary failed: " + e.message);
  } finally {
    if (state.storyId === id) section.setAttribute("aria-busy", "false");
  }
}

function closeStory() {
  state.storyId = null;
  $("#story-detail").hidden = true;
  for (const s of document.querySelectorAll(".story.selected")) s.classList.remove("selected");
}

// ---------------------------------------------------------------------------------------------
// Volume chart: bars from the story's timeline, drawn as SVG (no chart library)

/** Fills empty intervals with zeros: the timeline lists only intervals with posts, and a gap
 * must show as a gap, not as two neighbouring bars. */
function denseTimeline(timeline) {
  const pts = timeline.map(([t, n]) => [Date.parse(t), Number(n) || 0, t])
    .filter(([ms]) => !Number.isNaN(ms)).sort((a, b) => a[0] - b[0]);
  if (pts.length < 2) return pts;
  let step = Infinity;
  for (let i = 1; i < pts.length; i++) step = Math.min(step, pts[i][0] - pts[i - 1][0] || Infinity);
  const span = pts[pts.length - 1][0] - pts[0][0];
  if (!Number.isFinite(step) || span / step > 400) return pts;   // too many to fill: keep as is
  const byTime = new Map(pts.map((p) => [p[0], p]));
  const out = [];
  for (let ms = pts[0][0]; ms <= pts[pts.length - 1][0]; ms += step) {
    out.push(byTime.get(ms) || [ms, 0, new Date(ms).toISOString()]);
  }
  return out;
}

function drawChart(node, timeline) {
  const W = 600, H = 170, left = 34, right = 8, top = 10, bottom = 24;
  const pts = denseTimeline(timeline);
  node.replaceChildren();
  if (!pts.length) {
    node.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "chart-label" },
      "No timeline"));
    return;
  }
  const max = Math.max(1, ...pts.map((p) => p[1]));
  const plotW = W - left - right, plotH = H - top - bottom;
  const slot = plotW / pts.length;
  const barW = Math.max(1, slot * 0.8);
  node.append(svg("title", {}, `Posts per interval, peak ${max}`));
  node.append(svg("line", { x1: left, y1: top + plotH, x2: W - right, y2: top + plotH,
    class: "axis" }));
  node.append(svg("line", { x1: left, y1: top, x2: left, y2: top + plotH, class: "axis" }));
  pts.forEach(([, n, iso], i) => {
    const h = (n / max) * plotH;
    const bar = svg("rect", {
      class: "bar", x: (left + i * slot + (slot - barW) / 2).toFixed(2),
      y: (top + plotH - h).toFixed(2), width: barW.toFixed(2), height: Math.max(h, 0).toFixed(2),
      "data-time": iso, "data-count": n,
    });
    bar.append(svg("title", {}, `${fmtTime(iso)}: ${n} post${n === 1 ? "" : "s"}`));
    node.append(bar);
  });
  // Axis labels: the peak count, zero, and the first and last interval.
  const label = (x, y, anchor, text, cls) =>
    node.append(svg("text", { x, y, "text-anchor": anchor, class: "chart-label " + cls }, text));
  label(left - 4, top + 9, "end", String(max), "chart-max");
  label(left - 4, top + plotH, "end", "0", "chart-zero");
  label(left, H - 6, "start", fmtTime(pts[0][2]), "chart-first");
  if (pts.length > 1) label(W - right, H - 6, "end", fmtTime(pts[pts.length - 1][2]), "chart-last");
}

// ---------------------------------------------------------------------------------------------
// Post view, routed by #/post/<id>

function route() {
  const m = location.hash.match(/^#\/post\/([^/?#]+)$/);
  if (m) openPost(decodeURIComponent(m[1]));
  else if (!$("#post-view").hidden) hidePostView();
}

async function openPost(id) {
  state.postId = id;
  const view = $("#post-view");
  view.hidden = false;
  $("#post-view-body").hidden = true;
  showError($("#post-view-error"), "");
  $("#post-view-status").textContent = "Loading post " + id + "…";
  view.focus({ preventScroll: true });
  try {
    const p = await api("/v1/posts/" + encodeURIComponent(id));
    if (state.postId !== id) return;
    $("#post-view-author").textContent = authorLabel(p)
      + (p.author_name && p.author ? ` (${p.author_name})` : "");
    const t = $("#post-view-time");
    t.textContent = fmtTime(p.created_at);
    t.dateTime = p.created_at || "";
    $("#post-view-text").textContent = p.text || "";
    $("#post-view-id").textContent = String(p.id);
    $("#post-view-lang").textContent = p.lang ? ` · ${p.lang}` : "";
    const url = safeUrl(p.url);
    const link = $("#post-view-url");
    link.hidden = !url;
    if (url) link.href = url; else link.removeAttribute("href");
    $("#post-view-status").textContent = "";
    $("#post-view-body").hidden = false;
  } catch (e) {
    if (state.postId !== id) return;
    $("#post-view-status").textContent = "";
    showError($("#post-view-error"), `Post ${id}: ${e.message}`);
  }
}

function hidePostView() {
  state.postId = null;
  $("#post-view").hidden = true;
}

/** Closing drops the route from the address (without a new history entry), so the same
 * citation can be clicked again and a reload does not reopen the post. */
function closePost() {
  hidePostView();
  if (location.hash.startsWith("#/post/")) {
    history.replaceState(null, "", location.pathname + location.search);
  }
}

// ---------------------------------------------------------------------------------------------
// Chat: OpenAI-style streaming over SSE

function chatBubble(role, text) {
  const content = el("div", { className: "content", textContent: text || "" });
  const node = el("div", { className: `chat-message ${role}`, attrs: { role: "article" } },
    content);
  $("#chat-log").append(node);
  return { node, content };
}

/** The answer with its [n] markers as citation links (for the n that a citation exists for).
 * A trailing plain-text "Sources:" block (there for API clients without a UI) is dropped when
 * the citations arrived as data: the list under the answer shows them with links. */
function renderAnswer(content, text, citations) {
  if (citations.length) text = text.replace(/\n+Sources:\n(?:\[\d+\][^\n]*(?:\n|$))*$/, "");
  const byIndex = new Map(citations.map((c) => [String(c.index), c]));
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    const c = byIndex.get(m[1]);
    if (!c) continue;
    parts.push(text.slice(last, m.index), citationLink(c.index, c.id, snippet(c)));
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  content.replaceChildren(...parts.filter((p) => p !== ""));
}

function snippet(c) {
  const t = (c.text || `post ${c.id}`).replace(/\s+/g, " ");
  return (c.author ? "@" + String(c.author).replace(/^@/, "") + ": " : "")
    + (t.length > 120 ? t.slice(0, 117) + "…" : t);
}

function renderCitationList(node, citations) {
  node.querySelector(".chat-citations")?.remove();
  if (!citations.length) return;
  node.append(el("ol", { className: "chat-citations", attrs: { "aria-label": "Sources" } },
    ...citations.map((c) => el("li", {},
      citationLink(c.index, c.id, snippet(c)), " ",
      el("span", { textContent: snippet(c) }),
      c.created_at ? el("span", { textContent: " · " + fmtTime(c.created_at) }) : null))));
}

/** Reads an SSE body and calls onData with each event's data (the lines after "data:"). An
 * exception from onData cancels the download and propagates. */
async function readSSE(body, onData) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  let data = [];
  const flush = () => {
    if (data.length) onData(data.join("\n"));
    data = [];
  };
  const takeLine = (line) => {
    if (line === "") flush();                           // a blank line ends an event
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    // comments (": keep-alive"), "event:" and "id:" lines carry nothing we use
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buf += decoder.decode(value || new Uint8Array(), { stream: !done });
      let nl;
      while ((nl = buf.search(/\r?\n/)) >= 0) {
        takeLine(buf.slice(0, nl));
        buf = buf.slice(nl + (buf[nl] === "\r" ? 2 : 1));
      }
      if (done) {
        if (buf) takeLine(buf);                         // a last line without its newline
        flush();
        return;
      }
    }
  } catch (e) {
    reader.cancel().catch(() => {});
    throw e;
  }
}

async function sendChat(ev) {
  ev.preventDefault();
  const input = $("#chat-input");
  const question = input.value.trim();
  if (!question || state.chatBusy) return;
  state.chatBusy = true;
  $("#chat-send").disabled = true;
  input.value = "";
  chatBubble("user", question);
  state.chat.push({ role: "user", content: question });
  const answer = chatBubble("assistant", "");
  answer.node.classList.add("pending");
  answer.node.setAttribute("aria-busy", "true");
  let text = "";
  let citations = [];
  let frame = 0;
  // Chunks can arrive faster than the screen refreshes: re-render at most once per frame.
  const render = () => {
    frame = 0;
    renderAnswer(answer.content, text, citations);
    renderCitationList(answer.node, citations);
    $("#chat-log").scrollTop = $("#chat-log").scrollHeight;
  };
  const schedule = () => { if (!frame) frame = requestAnimationFrame(render); };
  const take = (obj) => {
    if (obj.error) throw new ApiError(obj.error.message || String(obj.error), obj.error.code, 0);
    if (Array.isArray(obj.citations)) citations = obj.citations;
    const choice = (obj.choices || [])[0] || {};
    // delta in a stream's chunks; message in a whole (non-streamed) response
    const piece = choice.delta?.content || choice.message?.content;
    if (piece) text += piece;
    schedule();
  };
  try {
    let res;
    try {
      res = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
        body: JSON.stringify({ model: CHAT_MODEL, messages: state.chat, stream: true }),
      });
    } catch (e) {
      throw new ApiError("cannot reach the server: " + e.message, "network", 0);
    }
    if (!res.ok) throw await errorFrom(res);
    if ((res.headers.get("Content-Type") || "").includes("application/json")) {
      take(await res.json());                            // a server that answered without streaming
    } else {
      let finished = false;
      await readSSE(res.body, (data) => {
        if (data.trim() === "[DONE]") { finished = true; return; }
        if (finished) return;
        let obj;
        try { obj = JSON.parse(data); } catch (_) {
          throw new ApiError("the server sent a malformed chunk", "bad_stream", 0);
        }
        take(obj);
      });
      if (!finished && !text) throw new ApiError("the answer stream ended early", "bad_stream", 0);
    }
    if (frame) cancelAnimationFrame(frame);
    render();
    if (!text.trim()) answer.content.textContent = "(no answer)";
    state.chat.push({ role: "assistant", content: text });
  } catch (e) {
    // Keep what arrived, say what failed, and drop the question from the history so the next
    // one is not sent after an unanswered turn.
    if (frame) cancelAnimationFrame(frame);
    if (text) render();
    state.chat.pop();
    answer.node.append(el("p", { className: "error chat-error", attrs: { role: "alert" },
      textContent: "Chat failed: " + e.message }));
  } finally {
    answer.node.classList.remove("pending");
    answer.node.removeAttribute("aria-busy");
    state.chatBusy = false;
    $("#chat-send").disabled = false;
    input.focus();
  }
}

function clearChat() {
  if (state.chatBusy) return;
  state.chat = [];
  $("#chat-log").replaceChildren();
}

// ---------------------------------------------------------------------------------------------
// Start-up: /v1/info decides whether a key is needed; then stories and the route.

async function loadInfo() {
  try {
    const info = await api("/v1/info");
    state.auth = info.auth === true;
    $("#version").textContent = info.version ? "v" + info.version : "";
  } catch (e) {
    showError($("#app-error"), "Cannot read the server's settings (/v1/info): " + e.message);
  }
  const form = $("#auth");
  form.hidden = !state.auth;
  if (state.auth) $("#api-key").value = localStorage.getItem(KEY_STORAGE) || "";
}

/** Saves the key (Save also reloads the stories and trends, which may have failed for want of
 * it). */
function saveKey() {
  const key = $("#api-key").value.trim();
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

async function init() {
  $("#search-form").addEventListener("submit", onSearchSubmit);
  $("#search-more").addEventListener("click", () => runSearch(true));
  $("#stories").addEventListener("click", onStoryClick);
  $("#stories-refresh").addEventListener("click", () => { state.timeline = null; loadHappening(); });
  $("#timeline").addEventListener("click", onTimelineClick);
  $("#moment-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    setMoment(pickerToIso($("#at-input").value));
  });
  $("#at-now").addEventListener("click", () => setMoment(null));
  $("#story-close").addEventListener("click", closeStory);
  $("#post-view-close").addEventListener("click", closePost);
  $("#chat-form").addEventListener("submit", sendChat);
  $("#chat-clear").addEventListener("click", clearChat);
  $("#auth").addEventListener("submit", (ev) => {
    ev.preventDefault();
    saveKey();
    loadHappening();
  });
  $("#api-key").addEventListener("change", saveKey);
  $("#chat-input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $("#chat-form").requestSubmit();
    }
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && !$("#post-view").hidden) closePost();
  });
  window.addEventListener("hashchange", route);
  await loadInfo();
  route();
  const at = pickerToIso((new URLSearchParams(location.search).get("at") || "").replace(/Z$/, ""));
  state.at = at;
  $("#at-input").value = at ? at.slice(0, 16) : "";
  loadHappening();
}

document.addEventListener("DOMContentLoaded", init);
