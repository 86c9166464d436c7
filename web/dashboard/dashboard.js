// The live dashboard: signs an admin in (the key goes in a POST body, the session in an HttpOnly
// cookie), then polls /dashboard/data every two seconds and redraws. Charts are uPlot; the time
// series live in this page (the router keeps no history). Everything that comes from nodes is
// written as text, never as markup.
import uPlot from '/assets/vendor/uplot/uPlot.esm.js';

const POLL_MS = 2000;
const KEEP_POINTS = 300;  // ten minutes at one point per poll

const $ = (id) => document.getElementById(id);
const cell = (text, className) => {
  const td = document.createElement('td');
  td.textContent = text ?? '';
  if (className) td.className = className;
  return td;
};
const row = (cells, className) => {
  const tr = document.createElement('tr');
  if (className) tr.className = className;
  tr.append(...cells);
  return tr;
};

// ---- signing in and out

async function signIn(event) {
  event.preventDefault();
  $('login-error').textContent = '';
  const res = await fetch('/dashboard/login', {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: $('key').value }),
  });
  $('key').value = '';
  if (!res.ok) {
    $('login-error').textContent = (await res.json().catch(() => null))?.error?.message ?? `Sign-in failed (${res.status})`;
    return;
  }
  start();
}

async function signOut() {
  await fetch('/dashboard/logout', { method: 'POST' });
  stop();
  showLogin();
}

function showLogin() {
  $('board').hidden = true;
  $('login').hidden = false;
  $('key').focus();
}

// ---- the time series

const series = { t: [], p50: new Map(), p95: new Map(), rps: new Map() };
let lastTraffic = null;
let known = [];  // node ids ever seen, in order: the charts' series
const charts = {};

function push(map, id, value) {
  if (!map.has(id)) map.set(id, new Array(series.t.length - 1).fill(null));
  map.get(id).push(value);
}

// TTFT of a node: its busiest model's (the one with the most recent samples has a p50).
function ttft(node) {
  for (const m of node.models ?? []) {
    const s = m.stats?.ttft_ms;
    if (s && s.p50 != null && s.p50 >= 0) return s;
  }
  return { p50: null, p95: null };
}

function record(data) {
  const now = data.time / 1000;
  series.t.push(now);
  const ids = new Set(data.nodes.map((n) => n.id));
  for (const id of ids) if (!known.includes(id)) known.push(id);
  for (const id of known) {
    const node = data.nodes.find((n) => n.id === id);
    const t = node ? ttft(node) : { p50: null, p95: null };
    push(series.p50, id, t.p50);
    push(series.p95, id, t.p95);
    let rps = null;
    if (lastTraffic && data.traffic[id] != null) rps = Math.max(0, (data.traffic[id] - (lastTraffic.counts[id] ?? 0)) / (now - lastTraffic.at));
    push(series.rps, id, rps);
  }
  lastTraffic = { at: now, counts: { ...data.traffic } };
  if (series.t.length > KEEP_POINTS) {
    series.t.shift();
    for (const map of [series.p50, series.p95, series.rps]) for (const values of map.values()) values.shift();
  }
}

const palette = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];

function draw(id, map) {
  const el = $(id);
  const data = [series.t, ...known.map((n) => map.get(n) ?? [])];
  const chart = charts[id];
  if (chart && chart.series.length === known.length + 1) {
    chart.setData(data);
    return;
  }
  chart?.destroy();
  charts[id] = new uPlot({
    width: Math.max(320, el.clientWidth),
    height: 220,
    series: [{}, ...known.map((n, i) => ({ label: n, stroke: palette[i % palette.length], width: 2, spanGaps: false }))],
    axes: [{}, { size: 56 }],
  }, data, el);
}

// ---- the tables

function renderNodes(data) {
  const body = $('nodes').tBodies[0];
  const total = data.traffic ? Object.values(data.traffic).reduce((a, b) => a + b, 0) : 0;
  const rows = data.nodes.map((n) => {
    const models = document.createElement('td');
    for (const m of n.models ?? []) {
      const span = document.createElement('span');
      span.className = `model${m.hot ? ' hot' : ''}`;
      span.textContent = m.hot ? `${m.id} (hot)` : m.id;
      models.append(span);
    }
    const health = n.health === 'healthy' ? 'up' : n.health === 'draining' ? 'draining' : 'down';
    const t = ttft(n);
    const gpus = (n.gpus ?? []).map((g) => [
      g.name,
      g.utilization_percent != null ? `${g.utilization_percent}%` : null,
      g.memory_used_mib != null && g.memory_total_mib != null ? `${g.memory_used_mib}/${g.memory_total_mib} MiB` : null,
      g.temperature_c != null ? `${g.temperature_c} °C` : null,
    ].filter(Boolean).join(' · ')).join('; ');
    const requests = data.traffic[n.id] ?? 0;
    const tr = row([
      cell(n.id), cell(n.region ?? '—'), cell((n.groups ?? []).join(', ')), models,
      cell(n.health, `health ${health}`), cell(String(n.in_flight ?? 0)),
      cell(t.p50 == null ? '—' : `${Math.round(t.p50)} / ${Math.round(t.p95)} ms`), cell(gpus || '—'),
      cell(total ? `${requests} (${Math.round((100 * requests) / total)} %)` : String(requests)),
    ]);
    tr.dataset.node = n.id;
    tr.dataset.health = health;
    return tr;
  });
  // Nodes that were here and are gone stay listed, struck out: a node going down shows.
  for (const id of known)
    if (!data.nodes.some((n) => n.id === id)) {
      const tr = row([cell(id), cell(''), cell(''), cell(''), cell('gone', 'health down'), cell(''), cell(''), cell(''), cell('')], 'gone');
      tr.dataset.node = id;
      tr.dataset.health = 'gone';
      rows.push(tr);
    }
  body.replaceChildren(...rows);
  $('nodes-up').textContent = String(data.nodes.filter((n) => n.health === 'healthy').length);
  $('nodes-total').textContent = String(known.length);
}

function renderUsage(data) {
  const byKey = new Map();
  for (const r of data.usage ?? []) {
    const k = `${r.key}\u0000${r.model}`;
    const sum = byKey.get(k) ?? { key: r.key, model: r.model, requests: 0, prompt: 0, completion: 0, cost: 0 };
    sum.requests += r.requests;
    sum.prompt += r.prompt_tokens;
    sum.completion += r.completion_tokens;
    sum.cost += r.cost;
    byKey.set(k, sum);
  }
  $('usage').tBodies[0].replaceChildren(...[...byKey.values()].map((u) => row([
    cell(u.key), cell(u.model), cell(String(u.requests)), cell(String(u.prompt)), cell(String(u.completion)),
    cell(u.cost.toFixed(6)),
  ])));
}

function renderErrors(data) {
  $('errors').tBodies[0].replaceChildren(...(data.errors ?? []).map((e) => row([
    cell(new Date(e.at).toISOString().replace('T', ' ').slice(0, 19)), cell(e.request_id), cell(e.model), cell(e.node),
    cell(String(e.status)), cell(e.code),
  ])));
}

// ---- polling

let timer = null;

async function poll() {
  let res;
  try {
    res = await fetch('/dashboard/data', { cache: 'no-store' });
  } catch {
    $('updated').textContent = 'router unreachable';
    return;
  }
  if (res.status === 401) {
    stop();
    return showLogin();
  }
  const data = await res.json();
  $('login').hidden = true;
  $('board').hidden = false;
  record(data);
  renderNodes(data);
  renderUsage(data);
  renderErrors(data);
  draw('chart-p50', series.p50);
  draw('chart-p95', series.p95);
  draw('chart-traffic', series.rps);
  $('inflight').textContent = String(data.router.inflight);
  $('queued').textContent = String(data.router.queued);
  $('ledger-lag').textContent = String(data.router.ledger_queued);
  $('updated').textContent = new Date(data.time).toLocaleTimeString();
  document.body.dataset.polls = String(Number(document.body.dataset.polls ?? 0) + 1);
}

function start() {
  stop();
  poll();
  timer = setInterval(poll, POLL_MS);
}

function stop() {
  if (timer) clearInterval(timer);
  timer = null;
}

$('login-form').addEventListener('submit', signIn);
$('logout').addEventListener('click', signOut);
start();
