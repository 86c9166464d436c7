// The node network in tests: a router with a node port, and real plexus-node processes.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { freePort, repoRoot, startPlexus, testThreads, writeConfig } from './plexus.mjs';

export { freePort };

export const nodeBin = path.resolve(process.env.PLEXUS_NODE_BIN || path.join(repoRoot, 'build/plexus-node'));
export const adminKey = 'sk-admin-for-tests';
export const nodeToken = 'nt-test-node-token';

// A router config with a node port (loopback) and fast liveness, so tests wait little.
export function networkConfig(extra = {}) {
  return {
    listen: '127.0.0.1:0',
    keys: [
      { id: 'admin', key: adminKey, admin: true },
      { id: 'demo', key: 'sk-plexus-demo', group: 'public' },
    ],
    nodes: { listen: '127.0.0.1:0', heartbeat_interval_ms: 200, liveness_timeout_ms: 800, queue_timeout_ms: 3000 },
    node_tokens: [{ id: 'lab', token: nodeToken, groups: ['public'] }],
    log: { level: 'info', access_log: true },
    ...(testThreads !== undefined ? { threads: testThreads } : {}),
    ...extra,
  };
}

// Starts the router; `nodePort` fixes its node port (to restart it on the same one).
export async function startRouter(config, { nodePort = 0 } = {}) {
  const file = typeof config === 'string' ? config : writeConfig(config);
  const router = await startPlexus(file, {
    args: ['--config', file, '--listen', '127.0.0.1:0', '--nodes-listen', `127.0.0.1:${nodePort}`],
  });
  const m = await waitFor(() => router.readyLine().match(/nodes on [^:]+:(\d+)/), 5000, 'the node port in the ready line');
  router.nodePort = Number(m[1]);
  router.configFile = file;
  return router;
}

// Starts plexus-node; resolves once it has joined (its log says so), unless `join` is false.
// Without --backend in `args` it serves the demo backend, unless `demo` is false (then it looks
// for one itself, e.g. with ['--probe', url]).
export async function startNode(router, { name, token = nodeToken, args = [], join = true, env = {}, demo = true } = {}) {
  const argv = ['--router', `127.0.0.1:${router.nodePort}`, '--token', token, '--name', name, ...args];
  if (demo && !args.includes('--backend')) argv.push('--backend', 'demo');
  const proc = spawn(nodeBin, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  proc.stdout.resume();
  const exited = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
  const node = {
    proc,
    name,
    id: `${name}@lab`,
    stderr: () => stderr,
    exited,
    async stop(signal = 'SIGKILL') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
  if (join) await waitFor(() => /joined the router/.test(stderr), 10000, `${name} to join:\n${stderr}`);
  return node;
}

export async function listNodes(router) {
  const res = await fetch(`${router.url}/v1/nodes`, { headers: { authorization: `Bearer ${adminKey}` } });
  if (res.status !== 200) throw new Error(`/v1/nodes: ${res.status} ${await res.text()}`);
  return (await res.json()).data;
}

// Polls `probe` (sync or async) until it returns something truthy.
export async function waitFor(probe, ms, what) {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// The TCP ports `pid` listens on (from /proc: its socket inodes against the kernel's tables).
export function listeningPorts(pid) {
  const inodes = new Set();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = fs.readlinkSync(`/proc/${pid}/fd/${fd}`).match(/^socket:\[(\d+)\]$/);
      if (m) inodes.add(m[1]);
    } catch {}
  }
  const ports = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9])) ports.push(parseInt(f[1].split(':')[1], 16));
    }
  }
  return ports;
}

