// A router out of file descriptors does not spin on its listening socket (the pending
// connection would wake it again and again), and serves again once descriptors are free.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';
import { baseConfig, startPlexus } from './support/plexus.mjs';
import { connect, request, responseCount, splitResponses } from './support/raw_http.mjs';

const cpuTicks = (pid) => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]);  // utime + stime
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('out of file descriptors: no busy loop while exhausted, and service resumes', async () => {
  const plexus = await startPlexus(
    baseConfig([{ name: 'demo', provider: 'demo', models: ['demo'] }], { threads: 1 }), { fdLimit: 48 });
  const sockets = [];
  try {
    try {
      for (let i = 0; i < 80; i++) {
        const s = net.connect(plexus.port, '127.0.0.1');
        s.on('error', () => {});
        sockets.push(s);
      }
      await sleep(500);  // the router has taken what it could; the rest wait in the backlog
      const before = cpuTicks(plexus.proc.pid);
      await sleep(2000);
      const spent = cpuTicks(plexus.proc.pid) - before;
      // A loop woken by the pending connection over and over burns a whole core: 200 ticks.
      assert.ok(spent < 50, `${spent} clock ticks of CPU in 2 s while out of descriptors`);
    } finally {
      for (const s of sockets) s.destroy();
    }
    await sleep(300);
    const conn = await connect(plexus.port);
    try {
      await conn.write(request('GET', '/healthz'));
      assert.ok(await conn.waitFor((d) => responseCount(d) >= 1, 3000), 'served again');
      assert.equal(splitResponses(conn.data())[0].status, 200);
    } finally {
      conn.destroy();
    }
  } finally {
    await plexus.stop();
  }
});
