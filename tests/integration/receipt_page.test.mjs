// The public receipt page (/receipts/{id}) in a real browser (Debian's headless Chromium): it
// checks the receipt's signature with the router's published keys and its links in the hash
// chain, in the browser, and says plainly whether the receipt is genuine. Tampering with a claim,
// a signature or the chain is caught; the page shows what the receipt claims and never the
// prompt or the completion. A screenshot is saved under build/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser, screenshotPath } from './support/browser.mjs';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, demoKey, sseEvents, startPlexus, user, writeConfig } from './support/plexus.mjs';

const secretPrompt = 'the prompt nobody else may read';
let fake, plexus, browser;
const answers = [];  // { id, body, receipt, completion }

before(async () => {
  fake = await startFakeOpenAI({ name: 'signer' });
  plexus = await startPlexus(writeConfig(baseConfig([
    { name: 'signer', provider: 'openai', url: fake.url, models: ['gpt-x', 'slow'], price: { input_per_1k: 3, output_per_1k: 5 } },
  ])));
  for (let i = 0; i < 3; i++) {
    const body = JSON.stringify({ model: 'gpt-x', messages: user(`${secretPrompt} #${i}`) });
    const res = await fetch(`${plexus.url}/v1/chat/completions`, {
      method: 'POST', headers: { authorization: `Bearer ${demoKey}`, 'content-type': 'application/json' }, body,
    });
    const answer = await res.json();
    answers.push({ id: res.headers.get('x-request-id'), body, receipt: res.headers.get('x-plexus-receipt'), answer });
  }
  // A stream too: its receipt is only in the ledger.
  const res = await fetch(`${plexus.url}/v1/chat/completions`, {
    method: 'POST', headers: { authorization: `Bearer ${demoKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'slow', messages: user(secretPrompt), stream: true }),
  });
  await sseEvents(res);
  answers.push({ id: res.headers.get('x-request-id') });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await plexus?.stop();
  await fake?.close();
});

// Opens a receipt's page (optionally rewriting what the router answers) and waits for a verdict.
async function open(id, rewriteChain) {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  if (rewriteChain)
    await page.route('**/receipts/*/chain', async (route) => {
      const res = await route.fetch();
      const chain = await res.json();
      await route.fulfill({ response: res, json: rewriteChain(chain) });
    });
  await page.goto(`${plexus.url}/receipts/${encodeURIComponent(id)}`);
  await page.waitForFunction(() => !['checking', undefined].includes(document.getElementById('verdict').dataset.verdict));
  const verdict = await page.$eval('#verdict', (el) => ({ kind: el.dataset.verdict, text: el.textContent }));
  const checks = await page.$$eval('#checks li', (items) => items.map((li) => ({ kind: li.className, text: li.textContent })));
  const claims = Object.fromEntries(await page.$$eval('#claims tr', (rows) => rows.map((r) => [r.cells[0]?.textContent ?? r.querySelector('th').textContent, r.querySelector('td').textContent])));
  assert.deepEqual(problems, [], 'no script errors on the page');
  return { page, verdict, checks, claims };
}

// A JWS with one claim changed (the signature left as it was).
function withClaim(jws, name, value) {
  const [head, payload, signature] = jws.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  claims[name] = value;
  return [head, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.');
}

test('a genuine receipt: signature and both chain links verified in the browser, the claims shown, no prompt or completion', async () => {
  const { id, answer } = answers[1];
  const { page, verdict, checks, claims } = await open(id);
  assert.equal(verdict.kind, 'genuine', verdict.text);
  assert.match(verdict.text, /Genuine receipt/);
  assert.ok(checks.every((c) => c.kind === 'pass'), JSON.stringify(checks));
  assert.ok(checks.some((c) => /before it/.test(c.text)) && checks.some((c) => /after it/.test(c.text)));
  assert.equal(claims['Request'], id);
  assert.equal(claims['Model'], 'gpt-x');
  assert.equal(claims['Served by node'], 'signer');
  assert.equal(Number(claims['Input tokens']), answer.usage.prompt_tokens);
  assert.equal(Number(claims['Output tokens']), answer.usage.completion_tokens);
  assert.ok(Math.abs(Number(claims['Cost']) - answer.usage.cost) < 1e-12, claims['Cost']);
  const text = await page.textContent('body');
  assert.ok(!text.includes(secretPrompt), 'the page never shows the prompt');
  assert.ok(!text.includes(answer.choices[0].message.content), 'the page never shows the completion');
  fs.mkdirSync(path.dirname(screenshotPath('receipt-page')), { recursive: true });
  await page.screenshot({ path: screenshotPath('receipt-page'), fullPage: true });
  await page.close();
});

test('the first receipt and the newest (a stream\'s) are genuine too, and say where they stand in the chain', async () => {
  const first = await open(answers[0].id);
  assert.equal(first.verdict.kind, 'genuine', first.verdict.text);
  assert.ok(first.checks.some((c) => c.kind === 'note' && /first receipt/.test(c.text)));
  await first.page.close();
  const newest = await open(answers[3].id);
  assert.equal(newest.verdict.kind, 'genuine', newest.verdict.text);
  assert.equal(newest.claims['Model'], 'slow');
  assert.ok(newest.checks.some((c) => c.kind === 'note' && /newest/.test(c.text)));
  await newest.page.close();
});

test('a changed claim or signature is caught: not genuine, and the page says why', async () => {
  const cheaper = await open(answers[1].id, (chain) => ({ ...chain, receipt: { ...chain.receipt, jws: withClaim(chain.receipt.jws, 'cost', 0) } }));
  assert.equal(cheaper.verdict.kind, 'forged');
  assert.match(cheaper.verdict.text, /Not genuine/);
  assert.match(cheaper.verdict.text, /signature does not match/);
  await cheaper.page.close();
  const resigned = await open(answers[1].id, (chain) => {
    const [h, p, s] = chain.receipt.jws.split('.');
    const bytes = Buffer.from(s, 'base64url');
    bytes[0] ^= 1;
    return { ...chain, receipt: { ...chain.receipt, jws: [h, p, bytes.toString('base64url')].join('.') } };
  });
  assert.equal(resigned.verdict.kind, 'forged');
  await resigned.page.close();
  const other = await open(answers[1].id, (chain) => ({ ...chain, receipt: chain.next }));  // another request's receipt
  assert.equal(other.verdict.kind, 'forged');
  assert.match(other.verdict.text, /another request/);
  await other.page.close();
});

test('a removed or swapped neighbour breaks the chain, and the page says so', async () => {
  const removed = await open(answers[1].id, (chain) => ({ ...chain, previous: null }));
  assert.equal(removed.verdict.kind, 'broken');
  assert.match(removed.verdict.text, /chain is broken/);
  assert.ok(removed.checks.some((c) => c.kind === 'fail' && /missing/.test(c.text)));
  await removed.page.close();
  const swapped = await open(answers[2].id, (chain) => ({ ...chain, previous: { seq: chain.previous.seq, jws: answers[0].receipt } }));
  assert.equal(swapped.verdict.kind, 'broken');
  assert.ok(swapped.checks.some((c) => c.kind === 'fail' && /does not hash/.test(c.text)));
  await swapped.page.close();
});

test('an unknown request id: no such receipt', async () => {
  const { page, verdict } = await open('req_nothing_here');
  assert.equal(verdict.kind, 'unknown');
  assert.match(verdict.text, /No such receipt/);
  await page.close();
});

test('the body a client sent is hashed in the browser and compared with the receipt', async () => {
  const { id, body } = answers[2];
  const { page } = await open(id);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plexus-body-'));
  fs.writeFileSync(path.join(dir, 'sent.json'), body);
  fs.writeFileSync(path.join(dir, 'other.json'), body.replace('#2', '#9'));
  await page.setInputFiles('#body-file', path.join(dir, 'sent.json'));
  await page.waitForFunction(() => document.getElementById('body-result').textContent !== '');
  assert.match(await page.textContent('#body-result'), /This is the body the receipt covers/);
  await page.setInputFiles('#body-file', path.join(dir, 'other.json'));
  await page.waitForFunction(() => /Not the body/.test(document.getElementById('body-result').textContent));
  await page.close();
});

test('a receipt pasted from an answer\'s header is checked against the ledger\'s copy', async () => {
  const { page } = await open(answers[0].id);
  await page.fill('#held', answers[2].receipt);
  await page.click('#check-held');
  await page.waitForFunction(() => document.getElementById('request-id').textContent !== '' &&
    document.getElementById('verdict').dataset.verdict === 'genuine' && /same receipt/.test(document.getElementById('checks').textContent));
  assert.equal(await page.textContent('#request-id'), answers[2].id);
  await page.fill('#held', withClaim(answers[2].receipt, 'completion_tokens', 1));
  await page.click('#check-held');
  await page.waitForFunction(() => document.getElementById('verdict').dataset.verdict === 'forged');
  await page.close();
});

test('the page and its scripts come with a strict content security policy; nothing outside web.root is served', async () => {
  const res = await fetch(`${plexus.url}/receipts/${answers[0].id}`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/html/);
  assert.match(res.headers.get('content-security-policy'), /script-src 'self'/);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  const script = await fetch(`${plexus.url}/assets/vendor/jose/index.js`);
  assert.equal(script.status, 200);
  assert.match(script.headers.get('content-type'), /javascript/);
  for (const escape of ['/assets/../CMakeLists.txt', '/assets/%2e%2e/CMakeLists.txt', '/assets/.built', '/assets/receipt/']) {
    const r = await fetch(`${plexus.url}${escape}`);
    assert.equal(r.status, 404, escape);
    assert.equal((await r.json()).error.code, 'unknown_url');
  }
  const post = await fetch(`${plexus.url}/receipts/${answers[0].id}`, { method: 'POST' });
  assert.equal(post.status, 405);
});
