// The live dashboard (/dashboard) in a real browser (Debian's headless Chromium): an admin signs
// in through the form (the key never in a URL; the session in an HttpOnly cookie), sees the nodes
// of a running network (real plexus-node processes), their latency and traffic charts (uPlot),
// usage and spend per key and the latest errors, and sees a node go down when one is killed.
// A screenshot is saved under build/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser, screenshotPath } from './support/browser.mjs';
import { adminKey, networkConfig, startNode, startRouter, waitFor } from './support/nodes.mjs';
import { chat, sseEvents, user } from './support/plexus.mjs';

let router, alpha, beta, browser, page;
before(async () => {
  router = await startRouter(networkConfig());
  alpha = await startNode(router, { name: 'alpha', args: ['--region', 'eu-west', '--backend-options', '{"first_token_ms": 5, "tokens_per_second": 2000}'] });
  beta = await startNode(router, { name: 'beta', args: ['--region', 'us-east', '--backend-options', '{"first_token_ms": 5, "tokens_per_second": 2000}'] });
  for (let i = 0; i < 6; i++) await (await chat(router.url, { model: 'demo', messages: user(`hello ${i}`) })).json();
  await sseEvents(await chat(router.url, { model: 'demo', messages: user('stream'), stream: true }));
  await (await chat(router.url, { model: 'no-such-model', messages: user('hi') })).text();  // an error to list
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
});
after(async () => {
  await browser?.close();
  await alpha?.stop();
  await beta?.stop();
  await router?.stop();
});

const rows = () => page.$$eval('#nodes tbody tr', (trs) => trs.map((tr) => ({ node: tr.dataset.node, health: tr.dataset.health, text: tr.textContent })));

test('the data needs a signed-in admin: 401 without a session, and a wrong key is refused in the form', async () => {
  const res = await fetch(`${router.url}/dashboard/data`);
  assert.equal(res.status, 401);
  assert.equal((await res.json()).error.code, 'not_signed_in');
  const demo = await fetch(`${router.url}/dashboard/login`, { method: 'POST', body: JSON.stringify({ key: 'sk-plexus-demo' }) });
  assert.equal(demo.status, 401, 'a key that is not an admin key opens nothing');
  assert.equal(demo.headers.get('set-cookie'), null);

  await page.goto(`${router.url}/dashboard`);
  await page.waitForSelector('#login-form', { state: 'visible' });
  await page.fill('#key', 'sk-wrong-key-123');
  await page.click('button[type=submit]');
  await page.waitForFunction(() => document.getElementById('login-error').textContent !== '');
  assert.match(await page.textContent('#login-error'), /admin key is required/);
  assert.ok(await page.isHidden('#board'));
});

test('signed in: the nodes of the network, with region, models, health and traffic; usage per key; recent errors', async () => {
  await page.fill('#key', adminKey);
  await page.click('button[type=submit]');
  await page.waitForSelector('#board', { state: 'visible' });
  assert.ok(!page.url().includes(adminKey), 'the key never goes in a URL');
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'plexus_session');
  assert.ok(session?.httpOnly, 'the session cookie is HttpOnly');
  assert.equal(session.sameSite, 'Strict');
  assert.equal(await page.evaluate(() => document.cookie), '', 'scripts cannot read the session');

  await page.waitForFunction(() => document.querySelectorAll('#nodes tbody tr').length === 2);
  const nodes = await rows();
  assert.deepEqual(nodes.map((n) => n.node).sort(), ['alpha@lab', 'beta@lab']);
  assert.ok(nodes.every((n) => n.health === 'up'), JSON.stringify(nodes));
  const alphaRow = nodes.find((n) => n.node === 'alpha@lab').text;
  assert.match(alphaRow, /eu-west/);
  assert.match(alphaRow, /demo/);
  assert.match(await page.textContent('#nodes-up'), /^2$/);
  // Traffic: every request that reached a node, shared between the two.
  const shares = nodes.map((n) => Number(n.text.match(/(\d+) \(\d+ %\)/)?.[1] ?? 0));
  assert.equal(shares.reduce((a, b) => a + b, 0), 7);
  // Usage and spend per key, from the ledger.
  await page.waitForFunction(() => document.querySelectorAll('#usage tbody tr').length > 0);
  assert.match(await page.textContent('#usage'), /demo/);
  // The error, without its prompt.
  assert.match(await page.textContent('#errors'), /no-such-model/);
  assert.match(await page.textContent('#errors'), /404/);
  assert.ok(!(await page.textContent('body')).includes('hello 1'), 'no prompt text on the dashboard');
  // Charts drawn by uPlot: one plot per chart, a series per node.
  await page.waitForFunction(() => document.querySelectorAll('.chart .uplot').length === 3);
  assert.ok(await page.$$eval('#chart-traffic .u-legend .u-series', (s) => s.length) >= 3);
});

test('it updates live: a node that goes down is shown so within seconds; screenshot', async () => {
  const polls = Number(await page.getAttribute('body', 'data-polls'));
  await page.waitForFunction((n) => Number(document.body.dataset.polls) > n + 1, polls);  // polling, no reload
  await beta.stop('SIGKILL');
  await page.waitForFunction(() => {
    const tr = document.querySelector('#nodes tbody tr[data-node="beta@lab"]');
    return tr && tr.dataset.health !== 'up';
  }, null, { timeout: 15000 });
  const nodes = await rows();
  assert.equal(nodes.find((n) => n.node === 'alpha@lab').health, 'up');
  assert.notEqual(nodes.find((n) => n.node === 'beta@lab').health, 'up');
  fs.mkdirSync(path.dirname(screenshotPath('dashboard')), { recursive: true });
  await page.screenshot({ path: screenshotPath('dashboard'), fullPage: true });
});

test('a session ends when its key stops being an admin key (revoked)', async () => {
  const made = await fetch(`${router.url}/v1/keys`, {
    method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'ops-on-call', admin: true }),
  });
  assert.equal(made.status, 201);
  const { key } = await made.json();
  const login = await fetch(`${router.url}/dashboard/login`, { method: 'POST', body: JSON.stringify({ key }) });
  assert.equal(login.status, 200);
  const cookie = login.headers.get('set-cookie').split(';')[0];
  assert.equal((await fetch(`${router.url}/dashboard/data`, { headers: { cookie } })).status, 200);
  const revoked = await fetch(`${router.url}/v1/keys/ops-on-call`, { method: 'DELETE', headers: { authorization: `Bearer ${adminKey}` } });
  assert.equal(revoked.status, 200);
  const after = await fetch(`${router.url}/dashboard/data`, { headers: { cookie } });
  assert.equal(after.status, 401, 'the revoked key\'s session opens nothing');
  assert.equal((await after.json()).error.code, 'not_signed_in');
});

test('signing out ends the session', async () => {
  await page.click('#logout');
  await page.waitForSelector('#login-form', { state: 'visible' });
  const status = await page.evaluate(async () => (await fetch('/dashboard/data')).status);
  assert.equal(status, 401);
});
