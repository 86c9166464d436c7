// The public receipt page: fetches a receipt and its neighbours in the router's chain, checks the
// signatures with the router's published keys (jose, on the browser's WebCrypto) and the hash
// links between them, and says plainly whether the receipt is genuine. Everything shown comes
// from the receipts themselves and is written as text, never as markup.
import { compactVerify, createLocalJWKSet, errors } from '/assets/vendor/jose/index.js';

const $ = (id) => document.getElementById(id);
const utf8 = new TextDecoder();

function base64url(buffer) {
  let binary = '';
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function sha256(data) {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  return base64url(await crypto.subtle.digest('SHA-256', bytes));
}

function why(error) {
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return 'its signature does not match what it claims: it was altered, or not signed by this router';
  if (error instanceof errors.JWKSNoMatchingKey) return 'it is signed with a key this router does not publish';
  if (error instanceof errors.JWSInvalid || error instanceof errors.JOSEAlgNotAllowed) return `it is not a receipt (${error.message})`;
  if (!globalThis.crypto?.subtle) return 'this browser cannot check signatures on this page (it needs https or localhost)';
  return error.message;
}

// The signature of one receipt against the router's keys: its claims when it holds.
async function verify(jws, keys) {
  try {
    const { payload, protectedHeader } = await compactVerify(jws, keys, { algorithms: ['EdDSA'] });
    return { ok: true, claims: JSON.parse(utf8.decode(payload)), kid: protectedHeader.kid };
  } catch (error) {
    return { ok: false, why: why(error) };
  }
}

async function fetchJson(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  const body = await res.json().catch(() => null);
  return { status: res.status, body };
}

// Every check of one receipt, in order; `held`: a receipt the user pasted, to be compared with
// the one the router's ledger keeps.
async function examine(jws, chain, keys, expectedId, held) {
  const checks = [];
  const signed = await verify(jws, keys);
  if (!signed.ok) {
    checks.push({ pass: false, text: `Signature: ${signed.why}.` });
    return { verdict: 'forged', title: 'Not genuine', detail: `This receipt is not genuine: ${signed.why}.`, checks };
  }
  const claims = signed.claims;
  checks.push({ pass: true, text: `Signed by this router's key ${signed.kid} (EdDSA over Ed25519).` });
  if (claims.request_id !== expectedId) {
    checks.push({ pass: false, text: `It names request ${claims.request_id}, not ${expectedId}.` });
    return { verdict: 'forged', title: 'Not genuine', detail: 'This receipt was issued for another request.', checks, claims, kid: signed.kid };
  }
  checks.push({ pass: true, text: `Issued for request ${expectedId}.` });
  if (held !== undefined) {
    const same = chain?.receipt?.jws === held;
    const onRecord = chain ? 'keeps a different receipt for this request' : 'has no receipt for this request';
    checks.push({ pass: same, text: same ? "The router's ledger keeps this same receipt." : `The router's ledger ${onRecord}.` });
    if (!same) return { verdict: 'broken', title: 'Signed, but not the one on record', detail: `This receipt is signed by the router, but its ledger ${onRecord}.`, checks, claims, kid: signed.kid };
  }

  const broken = [];
  const seq = chain?.receipt?.seq;
  if (claims.prev === '') {
    checks.push({ note: true, text: 'The first receipt of this router\'s chain.' });
  } else if (!chain?.previous) {
    broken.push(`the receipt before it (#${seq - 1}) is missing from the router's ledger`);
  } else {
    const before = await verify(chain.previous.jws, keys);
    const linked = before.ok && (await sha256(chain.previous.jws)) === claims.prev;
    if (linked) checks.push({ pass: true, text: `Linked to the receipt before it (#${chain.previous.seq}): its SHA-256 is this one's prev.` });
    else broken.push(`the receipt before it (#${chain.previous.seq}) ${before.ok ? 'does not hash to this one\'s prev' : 'is not signed by this router'}`);
  }
  if (!chain?.next) {
    checks.push({ note: true, text: 'The newest receipt in the chain: none after it yet.' });
  } else {
    const after = await verify(chain.next.jws, keys);
    const linked = after.ok && after.claims.prev === (await sha256(jws));
    if (linked) checks.push({ pass: true, text: `Linked to the receipt after it (#${chain.next.seq}): that one's prev is this one's SHA-256.` });
    else broken.push(`the receipt after it (#${chain.next.seq}) ${after.ok ? 'does not point back to this one' : 'is not signed by this router'}`);
  }
  for (const text of broken) checks.push({ pass: false, text: `Chain: ${text}.` });
  if (broken.length)
    return { verdict: 'broken', title: 'Signed, but the chain is broken', detail: `The router signed this receipt, but ${broken.join('; ')}: receipts were removed or reordered.`, checks, claims, kid: signed.kid };
  return { verdict: 'genuine', title: 'Genuine receipt', detail: 'Signed by this router with a published key, and in its place in the router\'s chain of receipts.', checks, claims, kid: signed.kid };
}

function time(ms) {
  return typeof ms === 'number' ? new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC') : String(ms);
}

function claimRows(claims, kid) {
  const price = claims.price ?? {};
  const seconds = (claims.ended_at - claims.started_at) / 1000;
  return [
    ['Request', claims.request_id],
    ['Model', claims.model],
    ['Served by node', claims.node],
    ['Input tokens', claims.prompt_tokens],
    ['Output tokens', claims.completion_tokens],
    ['Token counts', claims.usage_estimated ? 'estimated (the node sent no counts)' : "the node's own counts"],
    ['Price per 1K tokens', `${price.input_per_1k} in, ${price.output_per_1k} out`],
    ['Cost', typeof claims.cost === 'number' ? Number(claims.cost.toPrecision(12)) : claims.cost],
    ['HTTP status', claims.status],
    ['Started', time(claims.started_at)],
    ['Ended', `${time(claims.ended_at)} (${Number.isFinite(seconds) ? seconds.toFixed(3) : '?'} s)`],
    ['Request body SHA-256', claims.body_sha256 || '(none)'],
    ['Place in the chain', claims.seq === undefined ? '(not stated)' : `#${claims.seq}`],
    ['Previous receipt SHA-256', claims.prev || '(none: the first)'],
    ['Signing key', kid],
  ];
}

function show(result, jws) {
  const verdict = $('verdict');
  verdict.className = `verdict ${result.verdict}`;
  verdict.dataset.verdict = result.verdict;
  $('verdict-title').textContent = result.title;
  $('verdict-detail').textContent = result.detail;
  const list = $('checks');
  list.replaceChildren(...(result.checks ?? []).map((c) => {
    const li = document.createElement('li');
    li.className = c.note ? 'note' : c.pass ? 'pass' : 'fail';
    li.textContent = c.text;
    return li;
  }));
  const body = $('claims').tBodies[0];
  body.replaceChildren(...(result.claims ? claimRows(result.claims, result.kid) : []).map(([name, value]) => {
    const row = document.createElement('tr');
    const th = document.createElement('th');
    const td = document.createElement('td');
    th.textContent = name;
    td.textContent = value === undefined || value === null ? '' : String(value);
    row.append(th, td);
    return row;
  }));
  $('raw').textContent = jws ?? '';
  current = result;
}

let current = null;
let keys = null;

async function check(requestId, held) {
  show({ verdict: 'checking', title: 'Checking…', detail: 'Fetching the receipt and the router\'s keys.' });
  try {
    const [chain, jwks] = await Promise.all([
      fetchJson(`/receipts/${encodeURIComponent(requestId)}/chain`),
      fetchJson('/.well-known/jwks.json'),
    ]);
    if (jwks.status !== 200 || !Array.isArray(jwks.body?.keys)) throw new Error('the router did not give its keys');
    keys = createLocalJWKSet(jwks.body);
    if (held === undefined && chain.status === 404)
      return show({ verdict: 'unknown', title: 'No such receipt', detail: `This router has no receipt for request ${requestId}.` });
    if (chain.status !== 200 && held === undefined) throw new Error(chain.body?.error?.message ?? `the router answered ${chain.status}`);
    const jws = held ?? chain.body.receipt.jws;
    show(await examine(jws, chain.status === 200 ? chain.body : null, keys, requestId, held), jws);
  } catch (error) {
    show({ verdict: 'unknown', title: 'Could not check', detail: `The receipt could not be checked: ${error.message}.` });
  }
}

// The request body the user chooses, hashed here and compared with the claim.
async function checkBody(file) {
  const out = $('body-result');
  if (!current?.claims) return;
  const hash = await sha256(new Uint8Array(await file.arrayBuffer()));
  const same = hash === current.claims.body_sha256;
  out.className = `result ${same ? 'pass' : 'fail'}`;
  out.textContent = same ? `✓ This is the body the receipt covers (SHA-256 ${hash}).`
                         : `✗ Not the body this receipt covers: its SHA-256 is ${hash}.`;
}

// A pasted receipt is checked for the request it names.
async function checkHeld() {
  const jws = $('held').value.trim();
  if (!jws) return;
  let requestId = null;
  try {
    requestId = JSON.parse(utf8.decode(Uint8Array.from(atob(jws.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0)))).request_id;
  } catch {
    return show({ verdict: 'forged', title: 'Not genuine', detail: 'This is not a receipt: it is not a JWS with readable claims.', checks: [] }, jws);
  }
  $('request-id').textContent = requestId;
  await check(String(requestId), jws);
}

const requestId = decodeURIComponent(location.pathname.split('/')[2] ?? '');
$('request-id').textContent = requestId;
$('body-file').addEventListener('change', (e) => e.target.files[0] && checkBody(e.target.files[0]));
$('check-held').addEventListener('click', checkHeld);
check(requestId);
