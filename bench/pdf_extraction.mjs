// The file-parser plugin under load, through the real router (not a test: prints Markdown).
//   (a) PDF extraction throughput: distinct large PDFs (so no cache could hit, and the plugin's
//       cache is off anyway), sent one at a time and then `workers` at a time; pages/s is the
//       pages the router reports (x-plexus-file-parser) over the wall time.
//   (b) The event loops keep serving while PDFs are extracted: a router with 2 event loops;
//       sequential plain requests (no file) to a fast upstream for a few seconds alone, then
//       again while 4 large-PDF requests are always in flight (each restarted when it ends).
//       Target: p99 under load within 2x of p99 alone. Run for the pool's default size and for
//       4 worker threads (more workers than this machine may have cores).
// The upstream is bench/mock_upstream (build/bench/mock_upstream), the PDF client runs on a worker
// thread so that its JSON and sockets do not delay the latency probe's event loop.
//
//   node bench/pdf_extraction.mjs [--requests 8] [--pages 200] [--words 300] [--seconds 3]
// Needs the build (build/plexus, build/plugins/libplexus_file_parser.so, build/bench/mock_upstream)
// and tests/integration's node_modules (pdf-lib), as the integration suites do. Takes about a minute.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');
const HEADER = 'x-plexus-file-parser';
const pagesOf = (header) => Number(/pages=(\d+)/.exec(header ?? '')?.[1] ?? 0);

// ---- the load generator (worker thread): `slots` PDF requests always in flight until told to stop.
if (!isMainThread) {
  const { url, key, bodies, slots } = workerData;
  let stop = false;
  let next = 0;
  const stats = { done: 0, pages: 0, refused: 0, failed: 0, statuses: {} };
  parentPort.on('message', (m) => {
    if (m === 'stop') stop = true;
  });
  const slot = async () => {
    while (!stop) {
      const body = bodies[next++ % bodies.length];
      try {
        const res = await fetch(`${url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body,
        });
        await res.arrayBuffer();
        stats.statuses[res.status] = (stats.statuses[res.status] ?? 0) + 1;
        if (res.status === 200) {
          stats.done++;
          stats.pages += pagesOf(res.headers.get(HEADER));
        } else if (res.status === 503) {
          stats.refused++;
        } else {
          stats.failed++;
        }
      } catch {
        stats.failed++;
      }
    }
  };
  parentPort.postMessage('started');
  await Promise.all(Array.from({ length: slots }, slot));
  parentPort.postMessage(stats);
} else {
  await main();
}

async function main() {
  const args = Object.fromEntries(
    process.argv.slice(2).reduce((out, a, i, all) => (a.startsWith('--') ? [...out, [a.slice(2), all[i + 1]]] : out), []),
  );
  const K = Number(args.requests ?? 8);
  const PAGES = Number(args.pages ?? 200);
  const WORDS = Number(args.words ?? 300);
  const SECONDS = Number(args.seconds ?? 3);
  const plexusBin = path.resolve(process.env.PLEXUS_BIN || path.join(repoRoot, 'build/plexus'));
  const pluginDir = path.resolve(process.env.PLEXUS_PLUGIN_DIR || path.join(repoRoot, 'build/plugins'));
  const mockBin = path.resolve(process.env.PLEXUS_MOCK_UPSTREAM || path.join(repoRoot, 'build/bench/mock_upstream'));
  for (const f of [plexusBin, path.join(pluginDir, 'libplexus_file_parser.so'), mockBin])
    if (!fs.existsSync(f)) throw new Error(`${f} is missing: build the project first`);
  const { startPlexus, demoKey } = await import('../tests/integration/support/plexus.mjs');
  const pdfs = await import('../tests/integration/support/pdfs.mjs');
  const started = Date.now();
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  const defaultWorkers = Math.max(1, Math.floor(cores / 2));

  // K distinct documents: largePdf's text with one word changed on the first page.
  const base = pdfs.largePdfPages(PAGES, WORDS);
  const docs = [];
  for (let i = 0; i < K; i++) {
    const pages = [...base];
    pages[0] = pages[0].replace('Page 1:', `Page 1: variant${i}`);
    docs.push(await pdfs.multiPagePdf(pages));
  }
  const pdfBytes = docs.reduce((n, d) => n + d.length, 0) / docs.length;
  const bodies = docs.map((d, i) =>
    JSON.stringify({
      model: 'bench',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Summarise.' }, { type: 'file', file: { filename: `doc${i}.pdf`, file_data: pdfs.dataUrl(d) } }] }],
    }),
  );
  const genSeconds = (Date.now() - started) / 1000;

  const mock = spawn(mockBin, ['--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const mockPort = await new Promise((resolve, reject) => {
    let out = '';
    mock.stdout.on('data', (d) => {
      out += d;
      const m = /port (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    mock.on('exit', (code) => reject(new Error(`mock_upstream exited with ${code}`)));
  });
  const routers = [];
  const cleanup = async () => {
    for (const r of routers) await r.stop();
    mock.kill('SIGKILL');
  };
  process.on('exit', () => mock.kill('SIGKILL'));

  const router = async ({ threads, workers }) => {
    const config = {
      listen: '127.0.0.1:0',
      threads,
      keys: [{ id: 'bench', key: demoKey }],
      upstreams: [{ name: 'mock', provider: 'openai', url: `http://127.0.0.1:${mockPort}/v1`, models: ['bench'] }],
      plugins: [{ name: 'pdf', type: 'native', path: path.join(pluginDir, 'libplexus_file_parser.so'), config: { cache_entries: 0, max_pages: Math.max(200, PAGES) } }],
      limits: { max_body_bytes: 64 << 20 },
      log: { level: 'warn', access_log: false },
      ...(workers ? { workers: { threads: workers } } : {}),
    };
    const r = await startPlexus(config);
    routers.push(r);
    return r;
  };

  try {
    // ---- (a) throughput
    const workersA = defaultWorkers;
    const a = await router({ threads: 2, workers: workersA });
    const send = async (body) => {
      const res = await fetch(`${a.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${demoKey}` },
        body,
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`PDF request: HTTP ${res.status}`);
      const header = res.headers.get(HEADER);
      if (!/cached=0$/.test(header ?? '')) throw new Error(`expected an uncached parse, got ${header}`);
      return pagesOf(header);
    };
    await send(bodies[0]); // warm-up (first page faults, poppler's globals)
    const throughput = [];
    for (const concurrency of [...new Set([1, Math.max(2, workersA)])]) {
      let next = 0;
      let pages = 0;
      const latencies = [];
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < K) {
            const body = bodies[next++];
            const s = performance.now();
            const n = await send(body); // (not `pages += await ...`: that reads pages before the await)
            pages += n;
            latencies.push(performance.now() - s);
          }
        }),
      );
      const wall = (performance.now() - t0) / 1000;
      throughput.push({ concurrency, requests: K, pages, wall, latency: latencies.reduce((x, y) => x + y, 0) / latencies.length });
    }
    await a.stop();
    routers.length = 0;

    // ---- (b) latency of plain requests, alone and while 4 large PDFs are being extracted
    const plain = JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'ping' }] });
    const probe = async (url, seconds) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const { hostname, port } = new URL(url);
      const one = () =>
        new Promise((resolve, reject) => {
          const req = http.request(
            { agent, hostname, port, path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(plain), authorization: `Bearer ${demoKey}` } },
            (res) => {
              res.resume();
              res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`plain request: HTTP ${res.statusCode}`))));
            },
          );
          req.on('error', reject);
          req.end(plain);
        });
      for (let i = 0; i < 50; i++) await one(); // warm-up
      const samples = [];
      const end = performance.now() + seconds * 1000;
      while (performance.now() < end) {
        const s = performance.now();
        await one();
        samples.push(performance.now() - s);
      }
      agent.destroy();
      samples.sort((x, y) => x - y);
      const at = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
      return { n: samples.length, p50: at(0.5), p99: at(0.99), max: samples.at(-1) };
    };
    const latency = [];
    for (const workers of [...new Set([defaultWorkers, 4])]) {
      const b = await router({ threads: 2, workers });
      const alone = await probe(b.url, SECONDS);
      const loader = new Worker(fileURLToPath(import.meta.url), { workerData: { url: b.url, key: demoKey, bodies, slots: 4 } });
      const loaderDone = new Promise((resolve, reject) => {
        loader.on('message', (m) => m !== 'started' && resolve(m));
        loader.on('error', reject);
      });
      await new Promise((r) => loader.once('message', r));
      await new Promise((r) => setTimeout(r, 300)); // let the 4 requests reach the workers
      const t0 = performance.now();
      const loaded = await probe(b.url, SECONDS);
      const loadedSeconds = (performance.now() - t0) / 1000;
      loader.postMessage('stop');
      const stats = await loaderDone;
      await loader.terminate();
      latency.push({ workers, alone, loaded, stats, loadedSeconds });
      await b.stop();
      routers.length = 0;
    }

    // ---- report
    const f = (x, d = 2) => x.toFixed(d);
    console.log(`## PDF extraction through the router\n`);
    console.log(`${cores} cores; ${K} distinct PDFs of ${PAGES} pages x ${WORDS} words (${f(pdfBytes / 1024, 0)} KiB each, made in ${f(genSeconds, 1)} s); ` +
      `plugin cache off (cache_entries 0); 2 event loops; ${workersA} worker thread(s).\n`);
    console.log('| PDFs in flight | requests | pages | wall (s) | pages/s | PDF MiB/s | mean latency (ms) |');
    console.log('|---:|---:|---:|---:|---:|---:|---:|');
    for (const t of throughput)
      console.log(`| ${t.concurrency} | ${t.requests} | ${t.pages} | ${f(t.wall)} | ${f(t.pages / t.wall, 0)} | ${f((t.requests * pdfBytes) / t.wall / 1048576)} | ${f(t.latency, 1)} |`);
    console.log(`\n## Plain requests while 4 large PDFs are being extracted\n`);
    console.log(`Sequential plain requests (no file) to a fast mock upstream for ${SECONDS} s, alone and with 4 PDF requests always in flight; router threads 2.\n`);
    console.log('| worker threads | phase | requests | p50 (ms) | p99 (ms) | max (ms) | PDFs done (pages/s) | PDF answers |');
    console.log('|---:|---|---:|---:|---:|---:|---:|---|');
    for (const l of latency) {
      const statuses = Object.entries(l.stats.statuses).map(([s, n]) => `${n}x${s}`).join(', ') || '-';
      console.log(`| ${l.workers} | alone | ${l.alone.n} | ${f(l.alone.p50, 3)} | ${f(l.alone.p99, 3)} | ${f(l.alone.max, 1)} | - | - |`);
      console.log(`| ${l.workers} | 4 PDFs in flight | ${l.loaded.n} | ${f(l.loaded.p50, 3)} | ${f(l.loaded.p99, 3)} | ${f(l.loaded.max, 1)} | ${l.stats.done} (${f(l.stats.pages / l.loadedSeconds, 0)}) | ${statuses} |`);
    }
    console.log('');
    for (const l of latency) {
      const ratio = l.loaded.p99 / l.alone.p99;
      console.log(`- ${l.workers} worker thread(s): p99 alone ${f(l.alone.p99, 3)} ms, with 4 PDFs in flight ${f(l.loaded.p99, 3)} ms: ` +
        `**${f(ratio)}x** (target within 2x: ${ratio <= 2 ? 'met' : 'missed'})`);
    }
    console.log(`\nTotal ${f((Date.now() - started) / 1000, 1)} s.`);
  } finally {
    await cleanup();
  }
}
