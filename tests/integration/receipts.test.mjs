// Receipts through the real router: one signed receipt per request (JWS, EdDSA over Ed25519),
// verified here with an independent JOSE library (npm jose) and with `plexus receipt verify`;
// their claims are the charge, their hashes chain, and tampering with anything is caught.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import * as jose from 'jose';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, demoKey, plexusBin, sseEvents, startPlexus, user, writeConfig } from './support/plexus.mjs';

const run = promisify(execFile);
const b64url = (buf) => Buffer.from(buf).toString('base64url');
const sha256 = (text) => b64url(crypto.createHash('sha256').update(text).digest());
let fake, file, plexus;
before(async () => {
  fake = await startFakeOpenAI({ name: 'signer' });
  file = writeConfig(baseConfig([{ name: 'signer', provider: 'openai', url: fake.url, models: ['gpt-x', 'slow'], price: { input_per_1k: 3, output_per_1k: 5 } }]));
  plexus = await startPlexus(file);
});
after(async () => {
  await plexus?.stop();
  await fake?.close();
});

const post = (body) => fetch(`${plexus.url}/v1/chat/completions`, {
  method: 'POST', headers: { authorization: `Bearer ${demoKey}`, 'content-type': 'application/json' }, body,
});
const keySet = async () => jose.createLocalJWKSet(await (await fetch(`${plexus.url}/.well-known/jwks.json`)).json());

test('a whole answer carries its receipt; jose verifies it and the claims are the charge', async () => {
  const body = JSON.stringify({ model: 'gpt-x', messages: user('receipt please') });
  const res = await post(body);
  const answer = await res.json();
  const receipt = res.headers.get('x-plexus-receipt');
  assert.ok(receipt, 'x-plexus-receipt');
  const { payload, protectedHeader } = await jose.jwtVerify(receipt, await keySet(), { algorithms: ['EdDSA'] });
  assert.equal(protectedHeader.alg, 'EdDSA');
  assert.equal(payload.request_id, res.headers.get('x-request-id'));
  assert.equal(payload.body_sha256, sha256(body));
  assert.equal(payload.model, 'gpt-x');
  assert.equal(payload.node, 'signer');
  assert.equal(payload.prompt_tokens, answer.usage.prompt_tokens);
  assert.equal(payload.completion_tokens, answer.usage.completion_tokens);
  assert.equal(payload.cost, answer.usage.cost);
  assert.deepEqual(payload.price, { input_per_1k: 3, output_per_1k: 5 });
  assert.ok(payload.started_at <= payload.ended_at);
  // Fetched again by id: the same receipt.
  const again = await (await fetch(`${plexus.url}/v1/receipts/${payload.request_id}`, { headers: { authorization: `Bearer ${demoKey}` } })).json();
  assert.equal(again.receipt, receipt);
});

test('a stream\'s receipt is at /v1/receipts/{id}; receipts chain by hash', async () => {
  const first = await post(JSON.stringify({ model: 'gpt-x', messages: user('one') }));
  await first.json();
  const res = await post(JSON.stringify({ model: 'slow', messages: user('two'), stream: true, stream_options: { include_usage: true } }));
  const events = await sseEvents(res);
  const id = res.headers.get('x-request-id');
  const usage = JSON.parse(events.at(-2)).usage;
  const got = await (await fetch(`${plexus.url}/v1/receipts/${id}`, { headers: { authorization: `Bearer ${demoKey}` } })).json();
  const { payload } = await jose.jwtVerify(got.receipt, await keySet());
  assert.equal(payload.completion_tokens, usage.completion_tokens);
  assert.equal(payload.cost, usage.cost);
  assert.equal(payload.prev, sha256(first.headers.get('x-plexus-receipt')), 'the stream\'s receipt names the one before it');
  const missing = await fetch(`${plexus.url}/v1/receipts/req_nope`, { headers: { authorization: `Bearer ${demoKey}` } });
  assert.equal(missing.status, 404);
});

test('plexus receipt verify: genuine, and every kind of tampering caught with its reason', async () => {
  const body = JSON.stringify({ model: 'gpt-x', messages: user('verify me') });
  const res = await post(body);
  await res.json();
  const receipt = res.headers.get('x-plexus-receipt');
  const dir = path.dirname(file);
  fs.writeFileSync(path.join(dir, 'body.json'), body);
  fs.writeFileSync(path.join(dir, 'other.json'), body.replace('verify me', 'verify you'));
  const verify = async (jws, extra = []) => {
    try {
      const { stdout } = await run(plexusBin, ['receipt', 'verify', jws, '--jwks', `${plexus.url}/.well-known/jwks.json`, ...extra]);
      return { code: 0, out: stdout };
    } catch (e) {
      return { code: e.code, out: e.stdout };
    }
  };
  const ok = await verify(receipt, ['--body', path.join(dir, 'body.json')]);
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /^receipt OK: request req_\w+, model gpt-x, node signer/);

  const [h, p, s] = receipt.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  const forged = `${h}.${b64url(JSON.stringify({ ...claims, cost: 0 }))}.${s}`;
  assert.match((await verify(forged)).out, /INVALID: the signature does not match/);
  const badSig = `${h}.${p}.${s.slice(0, -4)}${s.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
  assert.equal((await verify(badSig)).code, 1);
  assert.match((await verify(receipt, ['--body', path.join(dir, 'other.json')])).out, /INVALID: the body's SHA-256/);
  assert.match((await verify('not.a.receipt')).out, /INVALID/);
  // jose agrees.
  await assert.rejects(jose.jwtVerify(forged, await keySet()));
});

test('under concurrent requests on every loop, seq follows the order of issue: each receipt\'s prev is the hash of seq - 1', async () => {
  const ids = await Promise.all(Array.from({ length: 40 }, async (_, i) => {
    const res = await post(JSON.stringify({ model: i % 3 ? 'gpt-x' : 'slow', messages: user(`concurrent ${i}`), stream: i % 2 === 0 }));
    await res.text();
    return res.headers.get('x-request-id');
  }));
  const bySeq = new Map();
  for (const id of ids) {
    const chain = await (await fetch(`${plexus.url}/receipts/${id}/chain`)).json();
    const { payload } = await jose.jwtVerify(chain.receipt.jws, await keySet());
    assert.equal(payload.request_id, id);
    assert.equal(payload.seq, chain.receipt.seq, 'the claim and the ledger agree on the place in the chain');
    assert.ok(chain.previous, `receipt #${payload.seq} has its predecessor in the ledger`);
    assert.equal(chain.previous.seq, payload.seq - 1);
    assert.equal(payload.prev, sha256(chain.previous.jws), `#${payload.seq} links to #${payload.seq - 1}`);
    bySeq.set(payload.seq, id);
  }
  assert.equal(bySeq.size, ids.length, 'every receipt has its own place');
});

test('the signing key is made once, readable by the router only, and kept across restarts', async () => {
  const keyFile = path.join(path.dirname(file), 'plexus-receipts.key');
  assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
  const before = (await (await fetch(`${plexus.url}/.well-known/jwks.json`)).json()).keys[0].kid;
  const last = await post(JSON.stringify({ model: 'gpt-x', messages: user('last before restart') }));
  await last.json();
  plexus.proc.kill('SIGTERM');
  await plexus.exited;
  plexus = await startPlexus(file);
  assert.equal((await (await fetch(`${plexus.url}/.well-known/jwks.json`)).json()).keys[0].kid, before);
  const next = await post(JSON.stringify({ model: 'gpt-x', messages: user('first after restart') }));
  await next.json();
  const { payload } = await jose.jwtVerify(next.headers.get('x-plexus-receipt'), await keySet());
  assert.equal(payload.prev, sha256(last.headers.get('x-plexus-receipt')), 'the chain goes on across a restart');
});
