// A fake SearxNG instance speaking its real search API, for web-search tests.
//
// Checked against SearxNG's own source (github.com/searxng/searxng, master of 2026-08-22):
//   searx/webapp.py            search(): GET and POST /search; request.form and the query string are
//                              merged, the form winning, the first value of a repeated key kept
//                              (pre_request); `format` defaults to html, an unknown one is taken as
//                              html; a format not listed in settings `search.formats` is
//                              flask.abort(403) (the stock settings.yml lists only html, so a
//                              client asking for json from an unconfigured instance gets exactly
//                              this); a missing or empty q with format=json is 400 {"error":"No query"}.
//   searx/webutils.py          get_json_response(): the top level {query, number_of_results, results,
//                              answers, corrections, infoboxes, suggestions, unresponsive_engines},
//                              sent as Content-Type application/json; unresponsive_engines is a list
//                              of [engine, message] pairs.
//   searx/result_types/_base.py LegacyResult (what most web engines yield) fills in url, template
//                              ("default.html"), engine, parsed_url (Python's urlparse 6-tuple, so a
//                              JSON array [scheme, netloc, path, params, query, fragment], scheme
//                              defaulting to "http"), title, content, img_src, thumbnail, priority,
//                              engines (a set, so an array), positions, score, category,
//                              publishedDate (null, or datetime.isoformat()).
//   searx/results.py           calculate_score(): weight = len(positions) (engine weights 1), score =
//                              sum(weight / position); results are ordered by score.
// Note: SearxNG commit dd27fce3b (2026-05-25) dropped `number_of_results` from the JSON; instances
// deployed before that send it (usually 0, since engines no longer report index sizes). It is sent
// here (opts.numberOfResults, default 0); pass numberOfResults: null to mimic newer instances.
//
// startFakeSearxng(opts) -> { url, port, requests, close(), setMode(mode, arg) }
//   url        base URL (http://127.0.0.1:PORT); the API is GET/POST `${url}/search`
//   requests   every request, in order: { method, path, query: {q, format, ...all params}, headers }
//   opts.results          [{title, url, content, ...extra fields}] answered instead of the default
//                         three results derived from the query (see defaultResults)
//   opts.formats          formats the instance enables (settings search.formats); default ['json'],
//                         so format=html (or no format) is 403. ['html'] mimics the stock settings
//                         (json 403); adding 'html' answers html with a small results page.
//   opts.numberOfResults  value of number_of_results (default 0); null leaves the key out
// Modes (setMode(mode, arg)), applied to requests that arrive after the call:
//   'results'  (default) the results for the query; arg, when given, replaces them as opts.results
//              does; setMode('results') alone goes back to opts.results or the derived ones
//   'empty'    results [] (an instance whose engines found nothing)
//   'slow'     arg ms (default 1000) before answering as 'results' does
//   'error'    HTTP 500 with Werkzeug's HTML error page, on every path (a crashed instance)
//   'garbage'  200 application/json whose body is not JSON (cut off mid-object)
//   'hang'     accepts the request and never answers; close() frees it
import http from 'node:http';
import { serve } from './serve.mjs';

const MODES = new Set(['results', 'empty', 'slow', 'error', 'garbage', 'hang']);
// settings_defaults.py OUTPUT_FORMATS: anything else in `format` is taken as html.
const OUTPUT_FORMATS = ['html', 'csv', 'json', 'rss'];

// Werkzeug's default error pages (what flask.abort and an unhandled exception send).
const werkzeugPage = (code, title, text) =>
  `<!doctype html>\n<html lang=en>\n<title>${code} ${title}</title>\n<h1>${title}</h1>\n<p>${text}</p>\n`;
const PAGE_403 = werkzeugPage(403, 'Forbidden', 'You don&#39;t have the permission to access the requested resource. It is either read-protected or not readable by the server.');
const PAGE_404 = werkzeugPage(404, 'Not Found', 'The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.');
const PAGE_405 = werkzeugPage(405, 'Method Not Allowed', 'The method is not allowed for the requested URL.');
const PAGE_500 = werkzeugPage(500, 'Internal Server Error', 'The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application.');

// Python's urllib.parse.urlparse, for the URLs tests use: [scheme, netloc, path, params, query, fragment].
// SearxNG then defaults an empty scheme to "http".
export function pyUrlparse(url) {
  let rest = url;
  let scheme = '';
  const colon = rest.indexOf(':');
  if (colon > 0 && /^[A-Za-z][A-Za-z0-9+.-]*$/.test(rest.slice(0, colon))) {
    scheme = rest.slice(0, colon).toLowerCase();
    rest = rest.slice(colon + 1);
  }
  let netloc = '';
  if (rest.startsWith('//')) {
    const end = rest.slice(2).search(/[/?#]/);
    netloc = end < 0 ? rest.slice(2) : rest.slice(2, end + 2);
    rest = end < 0 ? '' : rest.slice(end + 2);
  }
  let fragment = '';
  const hash = rest.indexOf('#');
  if (hash >= 0) [rest, fragment] = [rest.slice(0, hash), rest.slice(hash + 1)];
  let query = '';
  const qm = rest.indexOf('?');
  if (qm >= 0) [rest, query] = [rest.slice(0, qm), rest.slice(qm + 1)];
  // _splitparams: ";params" belong to the last path segment only.
  let path = rest;
  let params = '';
  const semi = path.indexOf(';', Math.max(path.lastIndexOf('/'), 0));
  if (semi >= 0) [path, params] = [path.slice(0, semi), path.slice(semi + 1)];
  return [scheme || 'http', netloc, path, params, query, fragment];
}

// A URL-safe slug of the query ("Hello, Wörld!" -> "hello-world"); "q" when nothing is left (e.g. CJK).
function slugify(q) {
  const s = q.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return s || 'q';
}

// The three results answered by default, derived only from the query so tests can predict them.
export function defaultResults(query) {
  const slug = slugify(query);
  return [1, 2, 3].map((i) => ({
    title: `${query} - result ${i}`,
    url: `https://example.org/${slug}-${i}`,
    content: `Snippet ${i} about ${query}: deterministic text from the fake SearxNG.`,
  }));
}

// The first default result was found by two engines, as merged SearxNG results often are.
const DEFAULT_META = [
  { engine: 'duckduckgo', engines: ['duckduckgo', 'brave'], positions: [1, 1], publishedDate: null },
  { engine: 'duckduckgo', engines: ['duckduckgo'], positions: [2], publishedDate: '2024-03-01T00:00:00' },
  { engine: 'brave', engines: ['brave'], positions: [3], publishedDate: null },
];

// results.py calculate_score with every engine weight 1.
const score = (positions) => positions.reduce((s, p) => s + positions.length / p, 0);

// One result as get_json_response serialises a LegacyResult; extra fields the caller gives win.
function asSearxngResult(r, i, meta = {}) {
  const engines = r.engines ?? meta.engines ?? [r.engine ?? meta.engine ?? 'duckduckgo'];
  const positions = r.positions ?? meta.positions ?? [i + 1];
  return {
    url: r.url,
    title: r.title ?? '',
    content: r.content ?? '',
    template: 'default.html',
    engine: r.engine ?? meta.engine ?? engines[0],
    parsed_url: pyUrlparse(r.url),
    img_src: '',
    thumbnail: '',
    priority: '',
    engines,
    positions,
    score: score(positions),
    category: 'general',
    publishedDate: meta.publishedDate ?? null,
    ...r,
  };
}

export async function startFakeSearxng(opts = {}) {
  const formats = opts.formats ?? ['json'];
  const numberOfResults = opts.numberOfResults === undefined ? 0 : opts.numberOfResults;
  const state = { requests: [], mode: 'results', modeArg: undefined, override: opts.results, timers: new Set() };

  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (raw += d));
    req.on('end', () => handle(req, res, raw));
  });

  function send(res, status, type, body, headers = {}) {
    res.writeHead(status, { 'content-type': type, ...headers });
    res.end(body);
  }

  function resultsFor(q, mode) {
    if (mode === 'empty') return [];
    if (state.override) return state.override.map((r, i) => asSearxngResult(r, i));
    return defaultResults(q).map((r, i) => asSearxngResult(r, i, DEFAULT_META[i]));
  }

  function handle(req, res, raw) {
    const u = new URL(req.url, 'http://fake');
    // pre_request: the form (POST body) first, then query-string keys it lacks; for a repeated
    // key the first value counts (werkzeug MultiDict.items()).
    const query = {};
    const isForm = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
    const sources = req.method === 'POST' && isForm ? [new URLSearchParams(raw), u.searchParams] : [u.searchParams];
    for (const params of sources) for (const [k, v] of params) if (!(k in query)) query[k] = v;
    state.requests.push({ method: req.method, path: u.pathname, query, headers: req.headers });

    const mode = state.mode;
    if (mode === 'hang') return; // never answers; close() destroys the socket
    if (mode === 'error') return send(res, 500, 'text/html; charset=utf-8', PAGE_500);

    if (u.pathname === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) return send(res, 200, 'text/plain; charset=utf-8', 'OK');
    if (u.pathname !== '/search') return send(res, 404, 'text/html; charset=utf-8', PAGE_404);
    // Flask answers HEAD for every GET route (with no body: node drops it for HEAD by itself).
    if (!['GET', 'HEAD', 'POST'].includes(req.method)) {
      return send(res, 405, 'text/html; charset=utf-8', PAGE_405, { allow: 'GET, HEAD, OPTIONS, POST' });
    }

    let format = query.format ?? 'html';
    if (!OUTPUT_FORMATS.includes(format)) format = 'html';
    // csv and rss are not faked: asked for, they are refused as if not enabled.
    if (!formats.includes(format) || (format !== 'json' && format !== 'html')) return send(res, 403, 'text/html; charset=utf-8', PAGE_403);
    const q = query.q ?? '';
    if (!q) {
      if (format === 'json') return send(res, 400, 'application/json', JSON.stringify({ error: 'No query' }));
      return send(res, 200, 'text/html; charset=utf-8', '<!DOCTYPE html>\n<html><body><form action="/search"></form></body></html>\n');
    }

    const answer = () => {
      if (res.destroyed) return;
      if (mode === 'garbage') return send(res, 200, 'application/json', `{"query": ${JSON.stringify(q)}, "results": [{"url": "https://exa`);
      const results = resultsFor(q, mode);
      if (format === 'html') {
        const items = results.map((r) => `<article class="result"><h3><a href="${esc(r.url)}">${esc(r.title)}</a></h3><p class="content">${esc(r.content)}</p></article>`);
        return send(res, 200, 'text/html; charset=utf-8', `<!DOCTYPE html>\n<html><head><title>${esc(q)} - SearXNG</title></head><body>\n${items.join('\n')}\n</body></html>\n`);
      }
      const body = { query: q };
      if (numberOfResults !== null) body.number_of_results = numberOfResults;
      Object.assign(body, { results, answers: [], corrections: [], infoboxes: [], suggestions: [], unresponsive_engines: [] });
      send(res, 200, 'application/json', JSON.stringify(body));
    };
    if (mode !== 'slow') return answer();
    const t = setTimeout(() => {
      state.timers.delete(t);
      answer();
    }, state.modeArg ?? 1000);
    state.timers.add(t);
  }

  const srv = await serve(server, state);
  return {
    url: `http://127.0.0.1:${srv.port}`,
    port: srv.port,
    requests: state.requests,
    setMode(mode, arg) {
      if (!MODES.has(mode)) throw new Error(`fake searxng: unknown mode ${mode}`);
      state.mode = mode;
      state.modeArg = arg;
      if (mode === 'results') state.override = arg ?? opts.results;
    },
    async close() {
      // Pending 'slow' answers would otherwise keep the event loop (and the test run) alive.
      for (const t of state.timers) clearTimeout(t);
      state.timers.clear();
      await srv.close();
    },
  };
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
