// A client that stops reading must slow the upstream down, not make the router buffer the stream.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, demoKey, startPlexus } from './support/plexus.mjs';

let fake, plexus;
before(async () => {
  fake = await startFakeOpenAI();
  plexus = await startPlexus(baseConfig([{ name: 'f', provider: 'openai', url: fake.url, models: ['firehose'] }]));
});
after(async () => {
  await plexus?.stop();
  await fake?.close();
});

const rssKiB = (pid) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);

test('a stalled reader stalls the upstream (bounded bytes, bounded memory); reading again resumes it', async () => {
  const body = JSON.stringify({ model: 'firehose', messages: [{ role: 'user', content: 'hi' }], stream: true });
  const sock = net.connect(plexus.port, '127.0.0.1');
  sock.setNoDelay(true);
  await new Promise((r) => sock.on('connect', r));
  const before = rssKiB(plexus.proc.pid);
  sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${demoKey}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  // Read the first bytes, then stop reading entirely.
  await new Promise((r) => sock.once('data', r));
  sock.pause();
  await new Promise((r) => setTimeout(r, 2500));
  const sent = fake.state.firehoseBytes;
  const grown = rssKiB(plexus.proc.pid) - before;
  // Reading again drains the queue below the low mark: the upstream is resumed and flows again.
  let received = 0;
  sock.on('data', (d) => (received += d.length));
  sock.resume();
  const deadline = Date.now() + 5000;
  while (fake.state.firehoseBytes < sent + 8 * 1024 * 1024 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const resumed = fake.state.firehoseBytes - sent;
  sock.destroy();
  assert.ok(resumed >= 8 * 1024 * 1024, `after the client read again, only ${resumed} more bytes flowed`);
  assert.ok(received > 4 * 1024 * 1024);
  // Socket buffers on both sides hold a few MiB at most; without flow control the fake pushes
  // hundreds of MiB in 2.5 s and the router's memory grows with it.
  assert.ok(sent < 32 * 1024 * 1024, `upstream pushed ${(sent / 1048576).toFixed(1)} MiB to a stalled client`);
  assert.ok(grown < 32 * 1024, `router RSS grew by ${(grown / 1024).toFixed(1)} MiB`);
});
