// A node behind NAT: plexus-node runs in a network namespace with a private address whose only
// way out is a gateway namespace that masquerades it (iptables MASQUERADE). The router cannot
// reach the node's network at all (no route, no port forwarded); the node dials out over TLS to
// the router's node port and serves. Needs root and network namespaces, as CI has; the
// set-up failing for any other reason fails the test.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { chat, startPlexus, testThreads, user, writeConfig } from './support/plexus.mjs';
import { adminKey, listNodes, nodeBin, nodeToken, waitFor } from './support/nodes.mjs';

const id = `${process.pid % 10000}${testThreads ?? 0}`;
const lan = `plxlan${id}`;
const gw = `plxgw${id}`;
const routerAddress = `10.${200 + (process.pid % 50)}.${testThreads ?? 0}.1`;
const gwWan = routerAddress.replace(/\.1$/, '.2');
const sh = (cmd) => execFileSync('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

let router;
let nodeProc;
let nodeLog = '';
let dir;

before(async () => {
  // gw: a NAT gateway between the node's private LAN (192.168.77.0/24) and the router's side.
  sh(`ip netns add ${lan} && ip netns add ${gw}`);
  sh(`ip link add vr${id} type veth peer name vw${id} && ip link set vw${id} netns ${gw}`);
  sh(`ip addr add ${routerAddress}/30 dev vr${id} && ip link set vr${id} up`);
  sh(`ip netns exec ${gw} sh -c 'ip addr add ${gwWan}/30 dev vw${id} && ip link set vw${id} up && ip link set lo up'`);
  sh(`ip link add vl${id} netns ${gw} type veth peer name vn${id} netns ${lan}`);
  sh(`ip netns exec ${gw} sh -c 'ip addr add 192.168.77.1/24 dev vl${id} && ip link set vl${id} up && sysctl -qw net.ipv4.ip_forward=1 && iptables -t nat -A POSTROUTING -o vw${id} -j MASQUERADE'`);
  sh(`ip netns exec ${lan} sh -c 'ip addr add 192.168.77.2/24 dev vn${id} && ip link set vn${id} up && ip link set lo up && ip route add default via 192.168.77.1'`);

  // Off loopback the node port must use TLS: a certificate for the router's address.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plexus-nat-'));
  sh(`openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=plexus-test -addext subjectAltName=IP:${routerAddress} ` +
     `-keyout ${dir}/key.pem -out ${dir}/cert.pem 2>/dev/null`);
  const config = writeConfig({
    listen: '127.0.0.1:0',
    keys: [{ id: 'admin', key: adminKey, admin: true }, { id: 'demo', key: 'sk-plexus-demo' }],
    nodes: { listen: `${routerAddress}:0`, tls: { cert: `${dir}/cert.pem`, key: `${dir}/key.pem` }, heartbeat_interval_ms: 200 },
    node_tokens: [{ id: 'lab', token: nodeToken }],
    ...(testThreads !== undefined ? { threads: testThreads } : {}),
  });
  router = await startPlexus(config);
  const port = Number(router.readyLine().match(/nodes on [^:]+:(\d+)/)[1]);
  nodeProc = spawn('ip', ['netns', 'exec', lan, nodeBin, '--router', `${routerAddress}:${port}`, '--tls-ca', `${dir}/cert.pem`,
    '--token', nodeToken, '--name', 'behind-nat', '--backend', 'demo', '--backend-options', '{"first_token_ms": 0}'],
  { stdio: ['ignore', 'ignore', 'pipe'] });
  nodeProc.stderr.on('data', (d) => (nodeLog += d));
});

after(async () => {
  nodeProc?.kill('SIGKILL');
  await router?.stop();
  try { sh(`ip netns del ${lan}; ip netns del ${gw}; ip link del vr${id}`); } catch {}
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('the router has no way into the node\'s network', () => {
  // Nothing routes the node's private network towards the namespaces: only the node can open a
  // connection, through the gateway's NAT.
  assert.doesNotMatch(sh('ip route get 192.168.77.2'), new RegExp(`dev vr${id}\\b`));
});

test('a node behind NAT joins over TLS and serves', async () => {
  await waitFor(async () => (await listNodes(router)).some((n) => n.id === 'behind-nat@lab'), 10000, `the node to join:\n${nodeLog}`);
  const res = await chat(router.url, { model: 'demo', messages: user('hello from the other side'), max_tokens: 6, stream: true });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-plexus-node'), 'behind-nat@lab');
  const text = await res.text();
  assert.match(text, /data: \[DONE\]/);
  // The router's side of the connection faces the gateway's address, never the node's own.
  const conns = sh(`ss -tnH state established '( sport = :${router.readyLine().match(/nodes on [^:]+:(\d+)/)[1]} )'`);
  assert.match(conns, new RegExp(gwWan.replaceAll('.', '\\.')));
  assert.doesNotMatch(conns, /192\.168\.77\./);
});
