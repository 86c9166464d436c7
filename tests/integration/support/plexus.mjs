// Starts the real plexus binary on a free port with a config written for the test.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../../..');
export const plexusBin = path.resolve(process.env.PLEXUS_BIN || path.join(repoRoot, 'build/plexus'));
export const demoKey = 'sk-plexus-demo';

// The threads matrix: ctest runs every suite with PLEXUS_TEST_THREADS=1 and =4. A config written
// from an object without its own `threads` gets that many reactor threads.
export const testThreads = process.env.PLEXUS_TEST_THREADS ? Number(process.env.PLEXUS_TEST_THREADS) : undefined;

function withTestThreads(config) {
  if (testThreads === undefined || config === null || typeof config !== 'object' || Array.isArray(config)) return config;
  if ('threads' in config) return config;
  return { ...config, threads: testThreads };
}

// Config folders written for a test run are removed when the run's process exits.
const written = [];
process.on('exit', () => {
  for (const dir of written) fs.rmSync(dir, { recursive: true, force: true });
});

export function writeConfig(config) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plexus-test-'));
  written.push(dir);
  const file = path.join(dir, 'plexus.json');
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

export function baseConfig(upstreams, extra = {}) {
  return {
    listen: '127.0.0.1:0',
    keys: [{ id: 'demo', key: demoKey, group: 'public' }],
    upstreams,
    log: { level: 'info', access_log: true },
    ...(testThreads !== undefined ? { threads: testThreads } : {}),
    ...extra,
  };
}

// Resolves once the ready line is printed. `args` replaces the default arguments.
// `fdLimit` starts it under `ulimit -n fdLimit` (a router out of file descriptors).
export async function startPlexus(config, { args, fdLimit } = {}) {
  const file = config === null ? null : typeof config === 'string' ? config : writeConfig(withTestThreads(config));
  const argv = args ?? ['--config', file, '--listen', '127.0.0.1:0'];
  const proc = fdLimit
    ? spawn('/bin/sh', ['-c', `ulimit -n ${Number(fdLimit)} && exec "$0" "$@"`, plexusBin, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(plexusBin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`plexus did not start:\n${stderr}`)), 10000);
    proc.stdout.on('data', (d) => {
      stdout += d;
      const m = stdout.match(/listening on (https?):\/\/[^:]+:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ scheme: m[1], port: Number(m[2]) });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`plexus exited with ${code}:\n${stderr}`));
    });
  });
  const exited = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  return {
    proc,
    port: ready.port,
    url: `${ready.scheme}://127.0.0.1:${ready.port}`,
    stderr: () => stderr,
    readyLine: () => stdout,
    exited,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

export function chat(base, body, { key = demoKey, headers = {}, signal } = {}) {
  return fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal,
  });
}

// Reads a whole SSE body into its data payloads (strings), in order.
export async function sseEvents(response) {
  const text = await response.text();
  return parseSse(text);
}

// Reads what is left of a body `reader` into `text` (what was read before) and returns it.
export async function readRest(reader, text = '') {
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return text;
    text += new TextDecoder().decode(value);
  }
}

export function parseSse(text) {
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6));
}

export const user = (content) => [{ role: 'user', content }];

// A port free right now on loopback (taken, then given back: connecting to it is refused until
// something listens there).
export async function freePort() {
  const server = net.createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}
