/**
 * The dashboard page: everything it shows comes from the public QueryService
 * over Connect-Web on the page's own origin. WatchEvents drives live updates
 * (state changes, incidents); a light poll refreshes the figures between
 * events. No framework: a few render functions over plain DOM.
 */
import { Code, ConnectError, type Interceptor, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { timestampFromMs, timestampMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./style.css";
import { type Event, FaultScope, type Incident, IncidentKind, OriginState, type OriginStatus, QueryService } from "../../../proto/gen/originwatch/v1/query_pb.js";
import { matrixOf } from "./matrix.js";

// A central started with --tokens wants a bearer token: the operator types
// it here once per tab (sessionStorage); the page never ships one.
const TOKEN_KEY = "originwatch.token";
let token = sessionStorage.getItem(TOKEN_KEY) ?? "";
const auth: Interceptor = (next) => (req) => {
  if (token) req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};
const client = createClient(QueryService, createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true, interceptors: [auth] }));

function needsToken(err: unknown): boolean {
  if (!(err instanceof ConnectError) || (err.code !== Code.Unauthenticated && err.code !== Code.PermissionDenied)) return false;
  $("auth").hidden = false;
  return true;
}

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const el = <K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text = ""): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
};
const stateName = (s: OriginState) => OriginState[s] ?? "UNSPECIFIED";
const pct = (r: number) => `${(r * 100).toFixed(r > 0 && r < 0.1 ? 1 : 0)}%`;
const hhmmss = (ms: number) => new Date(ms).toLocaleTimeString([], { hour12: false });
const tsMs = (t?: Timestamp) => (t ? timestampMs(t) : 0);
const scopeWord = (s: FaultScope) => (FaultScope[s] ?? "").toLowerCase();

let selected = decodeURIComponent(location.hash.replace(/^#origin=/, "")) || "";
let lastOrigins: OriginStatus[] = [];

// ---------- origins list ----------
function stateBadge(s: OriginState): HTMLSpanElement {
  return el("span", { class: `state ${stateName(s)}` }, stateName(s));
}

function renderOrigins(list: OriginStatus[]): void {
  lastOrigins = list;
  const body = $("origins").querySelector("tbody")!;
  body.replaceChildren(
    ...list.map((o) => {
      const tr = el("tr", { "data-origin": o.name, "data-state": stateName(o.state), class: o.name === selected ? "sel" : "" });
      const name = el("td", {}, o.name);
      if (o.faults.length) name.append(el("small", {}, o.faults.map((f) => `${scopeWord(f.scope)} ${f.key} failing`).join(", ")));
      const st = el("td");
      st.append(stateBadge(o.state));
      tr.append(name, st, el("td", { class: "n" }, o.requestRate.toFixed(1)), el("td", { class: "n" }, pct(o.failureRatio)), el("td", { class: "n" }, o.p95TtfbMs.toFixed(0)));
      tr.addEventListener("click", () => select(o.name));
      return tr;
    }),
  );
  $("origins-empty").hidden = list.length > 0;
  const down = list.filter((o) => o.state === OriginState.DOWN).length;
  const degraded = list.filter((o) => o.state === OriginState.DEGRADED).length;
  $("summary").textContent = `${list.length} origins · ${down} down · ${degraded} degraded · ${nodesText}`;
  document.title = down ? `(${down} DOWN) originwatch` : "originwatch";
  if (!selected && list.length) select(list[0]!.name);
}

function select(name: string): void {
  if (selected !== name) {
    selected = name;
    history.replaceState(null, "", `#origin=${encodeURIComponent(name)}`);
    samples.length = 0;
    historyPoints = [];
  }
  for (const tr of $("origins").querySelectorAll("tbody tr")) tr.classList.toggle("sel", tr.getAttribute("data-origin") === name);
  void refreshDetail(true);
}

// ---------- one origin ----------
function renderDetail(o: OriginStatus): void {
  $("detail").hidden = false;
  $("detail").setAttribute("data-origin", o.name);
  $("d-name").textContent = o.name;
  const st = $("d-state");
  st.className = `state ${stateName(o.state)}`;
  st.textContent = stateName(o.state);
  $("d-confirming").hidden = !o.confirming;
  const since = tsMs(o.stateSince);
  $("d-reason").textContent = (o.reason || "") + (since ? ` (since ${hhmmss(since)})` : "");
  $("d-faults").replaceChildren(...o.faults.map((f) => el("li", {}, `${scopeWord(f.scope)} ${f.key}: ${pct(f.failureRatio)} failing${f.reason ? ` — ${f.reason}` : ""}`)));
  $("d-figures").textContent = `now ${o.requestRate.toFixed(1)} req/s, ${pct(o.failureRatio)} failing, p95 TTFB ${o.p95TtfbMs.toFixed(0)} ms · ${o.totalRequests} requests (${o.totalFailures} failed) since first seen`;

  const m = matrixOf(o);
  const table = $("matrix");
  const head = el("tr");
  head.append(el("th", {}, "ISP \\ region"), ...m.regions.map((r) => el("th", {}, r)), el("th", {}, "all regions"));
  const rows = m.isps.map((isp) => {
    const tr = el("tr", { "data-isp": isp });
    tr.append(el("th", {}, isp));
    for (const region of [...m.regions, ""]) {
      const c = m.cell(isp, region);
      const td = el("td", c ? { "data-region": region || "*" } : {});
      if (c) {
        td.textContent = c.requests ? pct(c.failureRatio) : "–";
        td.append(el("small", {}, `${c.requests} req`));
        td.style.background = heat(c.requests ? c.failureRatio : -1);
        if (c.failing) td.classList.add("failing");
      }
      tr.append(td);
    }
    return tr;
  });
  table.replaceChildren(head, ...rows);
}

/** Green → amber → red by failure ratio; grey without traffic. */
function heat(ratio: number): string {
  if (ratio < 0) return "transparent";
  const r = Math.min(1, ratio / 0.5);
  const hue = 130 - 130 * r;
  return `hsla(${hue}, 60%, 38%, ${0.25 + 0.55 * r})`;
}

// ---------- charts: per-minute history plus live samples ----------
interface Sample {
  t: number;
  rate: number;
  fail: number;
  p95: number;
}
const samples: Sample[] = [];
let historyPoints: Sample[] = [];
let historyStepMs = 60_000;
const charts = new Map<string, uPlot>();

function chart(id: string, colour: string, data: uPlot.AlignedData): void {
  const host = $(id);
  const width = Math.max(240, host.clientWidth || 300);
  let c = charts.get(id);
  if (!c || Math.abs(c.width - width) > 4) {
    c?.destroy();
    c = new uPlot(
      {
        width,
        height: 150,
        legend: { show: false },
        cursor: { show: true },
        scales: { x: { time: true } },
        axes: [{ stroke: "#8a96a3", grid: { stroke: "#26303a" }, values: (_u, splits) => splits.map((v) => hhmmss(v * 1000)) }, { stroke: "#8a96a3", grid: { stroke: "#26303a" }, size: 48 }],
        series: [{}, { stroke: colour, width: 1.5, fill: colour + "22", points: { show: false } }],
      },
      data,
      host,
    );
    charts.set(id, c);
  } else c.setData(data);
}

function renderCharts(): void {
  const firstLive = samples[0]?.t ?? Infinity;
  // Per-minute history only for minutes that ended before the live samples began (a partial minute would under-count).
  const all = [...historyPoints.filter((p) => p.t + historyStepMs <= firstLive), ...samples];
  const xs = all.map((p) => p.t / 1000);
  chart("c-rate", "#4c9aff", [xs, all.map((p) => p.rate)]);
  chart("c-fail", "#e5534b", [xs, all.map((p) => p.fail)]);
  chart("c-p95", "#d29922", [xs, all.map((p) => p.p95)]);
}

async function loadHistory(name: string): Promise<void> {
  try {
    const h = await client.getOriginHistory({ origin: name, from: timestampFromMs(Date.now() - 3600_000) });
    const step = h.stepSeconds || 60;
    historyStepMs = step * 1000;
    historyPoints = h.points.map((p) => ({ t: tsMs(p.time), rate: Number(p.requests) / step, fail: p.failureRatio, p95: p.p95TtfbMs }));
  } catch (err) {
    if (!(err instanceof ConnectError && err.code === Code.Unimplemented)) throw err;
  }
}

// ---------- incidents ----------
function renderIncidents(list: Incident[] | undefined): void {
  const empty = $("incidents-empty");
  const body = $("incidents").querySelector("tbody")!;
  if (!list) {
    body.replaceChildren();
    empty.hidden = false;
    empty.textContent = "This central does not list incidents yet.";
    return;
  }
  const kind = (k: IncidentKind) => (IncidentKind[k] ?? "").toLowerCase().replace(/_/g, " ");
  body.replaceChildren(
    ...list.map((i) => {
      const tr = el("tr", { "data-open": String(i.open) });
      tr.append(
        el("td", {}, kind(i.kind) + (i.flapping ? " (flapping)" : "")),
        el("td", {}, i.scopeKey || "origin"),
        el("td", {}, hhmmss(tsMs(i.opened))),
        el("td", {}, i.open ? "open" : hhmmss(tsMs(i.closed))),
        el("td", { class: "n" }, pct(i.peakFailureRatio)),
        el("td", {}, i.summary),
      );
      if (i.open) tr.style.fontWeight = "600";
      return tr;
    }),
  );
  empty.hidden = list.length > 0;
  empty.textContent = "No incident for this origin.";
}

// ---------- refresh loops ----------
let detailBusy = false;
let lastSlow = 0;
async function refreshDetail(slowToo = false): Promise<void> {
  if (!selected || detailBusy) return;
  detailBusy = true;
  const name = selected;
  try {
    const { origin } = await client.getOrigin({ origin: name });
    if (!origin || name !== selected) return;
    renderDetail(origin);
    samples.push({ t: Date.now(), rate: origin.requestRate, fail: origin.failureRatio, p95: origin.p95TtfbMs });
    while (samples.length > 1800) samples.shift();
    if (slowToo || Date.now() - lastSlow > 15_000) {
      lastSlow = Date.now();
      const [inc] = await Promise.all([
        client.listIncidents({ origin: name, pageSize: 20 }).catch((err: unknown) => {
          if (err instanceof ConnectError && err.code === Code.Unimplemented) return undefined;
          throw err;
        }),
        loadHistory(name),
      ]);
      renderIncidents(inc?.incidents);
    }
    renderCharts();
  } catch (err) {
    console.warn("refresh failed", err);
  } finally {
    detailBusy = false;
  }
}

/** Every page of a list (each answer is bounded by the central's page size; the list is not). */
async function allPages<T>(fetch: (pageToken: string) => Promise<{ items: T[]; nextPageToken: string }>): Promise<T[]> {
  const out: T[] = [];
  let token = "";
  do {
    const page = await fetch(token);
    out.push(...page.items);
    token = page.nextPageToken;
  } while (token);
  return out;
}

let nodesText = "";
async function refreshOrigins(): Promise<void> {
  try {
    const [origins, nodes] = await Promise.all([
      allPages((pageToken) => client.listOrigins({ pageToken, pageSize: 1000 }).then((r) => ({ items: r.origins, nextPageToken: r.nextPageToken }))),
      allPages((pageToken) => client.listNodes({ pageToken, pageSize: 1000 }).then((r) => ({ items: r.nodes, nextPageToken: r.nextPageToken }))),
    ]);
    nodesText = `${nodes.filter((x) => x.connected).length}/${nodes.length} nodes connected`;
    renderOrigins(origins);
  } catch (err) {
    if (!needsToken(err)) console.warn("listOrigins failed", err);
  }
}

function addEvent(e: Event): void {
  const li = el("li", { "data-kind": String(e.kind) });
  li.append(el("time", {}, hhmmss(tsMs(e.time) || Date.now())));
  const subject = e.origin || e.nodeId;
  const text = e.message || (e.state ? `${stateName(e.previousState)} → ${stateName(e.state)}` : "event");
  li.append(document.createTextNode(subject && !text.includes(subject) ? `${subject}: ${text}` : text));
  const list = $("events");
  list.prepend(li);
  while (list.children.length > 100) list.lastElementChild!.remove();
}

async function watch(): Promise<void> {
  const live = $("live");
  let backoff = 1000;
  for (;;) {
    try {
      const stream = client.watchEvents({});
      live.className = "live on";
      live.textContent = "live";
      for await (const res of stream) {
        backoff = 1000;
        if (!res.event) continue;
        addEvent(res.event);
        // A state change or an incident: show it now, not at the next poll.
        void refreshOrigins();
        if (!res.event.origin || res.event.origin === selected) void refreshDetail(true);
      }
    } catch (err) {
      needsToken(err);
      if (err instanceof ConnectError && err.code === Code.Unimplemented) {
        live.className = "live off";
        live.textContent = "polling (no WatchEvents on this central)";
        return;
      }
    }
    live.className = "live off";
    live.textContent = "reconnecting…";
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 10_000);
  }
}

$("auth").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $<HTMLInputElement>("auth-token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  $("auth").hidden = true;
  void refreshOrigins().then(() => refreshDetail(true));
});

window.addEventListener("hashchange", () => {
  const name = decodeURIComponent(location.hash.replace(/^#origin=/, ""));
  if (name && name !== selected) select(name);
});

void refreshOrigins().then(() => refreshDetail(true));
setInterval(() => {
  void refreshOrigins();
  void refreshDetail();
}, 2000);
void watch();
