// The file-parser plugin (plugins/file_parser) against the running router: OpenAI file content
// parts holding PDFs become text parts with page markers before the request reaches the node,
// whole and streamed; errors name the part; the limits come from the plugin's config; the work
// runs on the worker pool, whose full queue answers 503 workers_busy; the router keeps serving
// after every error and when a client leaves in the middle of a parse. PDFs are made on the fly
// (support/pdfs.mjs).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import * as pdfs from './support/pdfs.mjs';
import { baseConfig, chat, parseSse, repoRoot, startPlexus, user } from './support/plexus.mjs';

const pluginDir = path.resolve(process.env.PLEXUS_PLUGIN_DIR || path.join(repoRoot, 'build/plugins'));
const parserLib = path.join(pluginDir, 'libplexus_file_parser.so');
const HEADER = 'x-plexus-file-parser';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const collapse = (s) => s.replace(/\s+/g, ' ').trim();
const content = (events) => events.filter((e) => e !== '[DONE]').map((e) => JSON.parse(e)).flatMap((c) => c.choices ?? []).map((c) => c.delta?.content ?? '').join('');
const modes = [false, true];
const label = (stream) => (stream ? 'streamed' : 'whole');

// A router in front of one fake upstream with the file parser as its only plugin.
async function parserRouter({ config, extra = {} } = {}) {
  const fake = await startFakeOpenAI({ name: 'up' });
  const plugin = { name: 'pdf', type: 'native', path: parserLib };
  if (config) plugin.config = config;
  const plexus = await startPlexus(baseConfig([{ name: 'up', provider: 'openai', url: fake.url, models: ['gpt-x'] }], { plugins: [plugin], ...extra }));
  return {
    fake,
    plexus,
    url: plexus.url,
    async close() {
      await plexus.stop();
      await fake.close();
    },
  };
}

// Sends `body` (stream or not) and reads the answer to its end.
async function send(url, body, { stream = false, signal } = {}) {
  const res = await chat(url, { ...body, stream }, { signal });
  const raw = await res.text();
  const out = { res, status: res.status, header: res.headers.get(HEADER), raw };
  if (res.status !== 200) out.json = JSON.parse(raw);
  else if (stream) out.events = parseSse(raw);
  else out.json = JSON.parse(raw);
  return out;
}

// The answer came through from the fake upstream, whole or streamed.
function assertAnswered(r, stream) {
  assert.equal(r.status, 200, r.raw);
  if (stream) {
    assert.equal(r.events.at(-1), '[DONE]');
    assert.equal(content(r.events), 'Hello from up');
  } else {
    assert.equal(r.json.choices[0].message.content, 'Hello from up');
  }
}

// A plain request (no file) after anything: the router still serves, both ways.
async function assertServes(url) {
  for (const stream of modes) assertAnswered(await send(url, { model: 'gpt-x', messages: user('still there?') }, { stream }), stream);
}

// The request the fake upstream saw whose last message carries `marker` somewhere in its text.
function seenWith(fake, marker) {
  const hits = fake.state.requests.filter((r) => JSON.stringify(r.body.messages).includes(marker));
  assert.equal(hits.length, 1, `exactly one upstream request carries ${marker}`);
  return hits[0].body;
}

const filePart = (data, filename) => ({ type: 'file', file: { ...(filename !== undefined ? { filename } : {}), file_data: data } });

// `<file name="..." pages="N">\n--- page 1 ---\n...\n</file>` into its name, page count and the
// text of each page, checking the markers are 1..N in order.
function parseFileText(text) {
  const m = text.match(/^<file name="([^"]*)" pages="(\d+)">\n([\s\S]*)<\/file>$/);
  assert.ok(m, `a file text part: ${JSON.stringify(text.slice(0, 200))}`);
  const [, name, pages, inner] = m;
  const pieces = inner.split(/^--- page (\d+) ---\n/m);
  assert.equal(pieces[0], '', 'nothing before the first page marker');
  const numbers = [];
  const texts = [];
  for (let i = 1; i < pieces.length; i += 2) {
    numbers.push(Number(pieces[i]));
    texts.push(pieces[i + 1]);
  }
  assert.deepEqual(numbers, Array.from({ length: Number(pages) }, (_, i) => i + 1), 'page markers 1..N in order');
  return { name, pages: Number(pages), texts };
}

function assertPdfText(part, { name, pages }) {
  assert.equal(part.type, 'text');
  assert.deepEqual(Object.keys(part).sort(), ['text', 'type']);
  const parsed = parseFileText(part.text);
  assert.equal(parsed.name, name);
  assert.equal(parsed.pages, pages.length);
  assert.deepEqual(parsed.texts.map(collapse), pages.map(collapse));
}

const threePages = (tag) => [
  `Alpha page one (${tag}): the quick brown fox.`,
  `Beta page two (${tag}): jumps over the lazy dog.`,
  `Gamma page three (${tag}): pack my box with five dozen liquor jugs.`,
];

describe('file parts become text', () => {
  let r;
  before(async () => (r = await parserRouter()));
  after(async () => r?.close());

  for (const stream of modes) {
    test(`a 3-page PDF: page markers in order, in the file part's place; the rest untouched; cache by content (${label(stream)})`, async () => {
      const tag = `multi-${label(stream)}`;
      const pages = threePages(tag);
      const data = pdfs.dataUrl(await pdfs.multiPagePdf(pages));
      const messages = [
        { role: 'system', content: 'You summarise documents.' },
        { role: 'user', content: [{ type: 'text', text: `before ${tag}` }, filePart(data, 'report.pdf'), { type: 'text', text: 'after the file' }] },
        { role: 'assistant', content: 'Which part?' },
        { role: 'user', content: [{ type: 'text', text: 'All of it.' }] },
      ];
      const body = { model: 'gpt-x', messages, temperature: 0.25, max_tokens: 64, metadata: { trace: 'abc' } };
      const first = await send(r.url, body, { stream });
      assertAnswered(first, stream);
      assert.equal(first.header, 'files=1; pages=3; cached=0');
      const seen = seenWith(r.fake, `before ${tag}`);
      assert.equal(seen.messages.length, 4);
      assert.deepEqual(seen.messages[0], messages[0]);
      assert.deepEqual(seen.messages[2], messages[2]);
      assert.deepEqual(seen.messages[3], messages[3]);
      assert.equal(seen.messages[1].role, 'user');
      const parts = seen.messages[1].content;
      assert.equal(parts.length, 3);
      assert.deepEqual(parts[0], messages[1].content[0]);
      assert.deepEqual(parts[2], messages[1].content[2]);
      assertPdfText(parts[1], { name: 'report.pdf', pages });
      assert.equal(seen.temperature, 0.25);
      assert.equal(seen.max_tokens, 64);
      assert.deepEqual(seen.metadata, { trace: 'abc' });
      assert.ok(!JSON.stringify(seen).includes('base64'), 'no file data reaches the node');

      // The same bytes again: from the cache, the same text.
      const again = await send(r.url, { ...body, messages: [messages[0], { role: 'user', content: [{ type: 'text', text: `again ${tag}` }, filePart(data, 'report.pdf')] }] }, { stream });
      assertAnswered(again, stream);
      assert.equal(again.header, 'files=1; pages=3; cached=1');
      assertPdfText(seenWith(r.fake, `again ${tag}`).messages[1].content[1], { name: 'report.pdf', pages });

      // The same bytes under another name: still cached, and the text carries the new name.
      const renamed = await send(r.url, { model: 'gpt-x', messages: [{ role: 'user', content: [{ type: 'text', text: `renamed ${tag}` }, filePart(data, 'other name.pdf')] }] }, { stream });
      assertAnswered(renamed, stream);
      assert.equal(renamed.header, 'files=1; pages=3; cached=1');
      assertPdfText(seenWith(r.fake, `renamed ${tag}`).messages[0].content[1], { name: 'other name.pdf', pages });
    });

    test(`unicode text arrives exactly (${label(stream)})`, async () => {
      const tag = `unicode-${label(stream)}`;
      const data = pdfs.dataUrl(await pdfs.unicodePdf());
      const res = await send(r.url, { model: 'gpt-x', messages: [{ role: 'user', content: [filePart(data, 'ünï.pdf'), { type: 'text', text: tag }] }] }, { stream });
      assertAnswered(res, stream);
      assert.match(res.header, /^files=1; pages=2; cached=[01]$/);
      const part = seenWith(r.fake, tag).messages[0].content[0];
      assertPdfText(part, { name: 'ünï.pdf', pages: pdfs.unicodePages });
      assert.ok(part.text.includes('Съешь же ещё этих мягких французских булок.'));
    });

    test(`two files in one message, and files in two messages (${label(stream)})`, async () => {
      const tag = `two-${label(stream)}`;
      const a = [`First file (${tag}) only page.`];
      const b = [`Second file (${tag}) page one.`, `Second file (${tag}) page two.`];
      const c = threePages(`third ${tag}`);
      const [da, db, dc] = await Promise.all([a, b, c].map(async (p) => pdfs.dataUrl(await pdfs.multiPagePdf(p))));
      const both = await send(r.url, { model: 'gpt-x', messages: [{ role: 'user', content: [filePart(da, 'a.pdf'), { type: 'text', text: `${tag} one message` }, filePart(db, 'b.pdf')] }] }, { stream });
      assertAnswered(both, stream);
      assert.equal(both.header, 'files=2; pages=3; cached=0');
      const one = seenWith(r.fake, `${tag} one message`).messages[0].content;
      assert.equal(one.length, 3);
      assertPdfText(one[0], { name: 'a.pdf', pages: a });
      assert.deepEqual(one[1], { type: 'text', text: `${tag} one message` });
      assertPdfText(one[2], { name: 'b.pdf', pages: b });

      const messages = [
        { role: 'user', content: [{ type: 'text', text: `${tag} two messages` }, filePart(dc, 'c.pdf')] },
        { role: 'assistant', content: 'Got it.' },
        { role: 'user', content: [filePart(da, 'a-again.pdf'), { type: 'text', text: 'compare' }] },
      ];
      const split = await send(r.url, { model: 'gpt-x', messages }, { stream });
      assertAnswered(split, stream);
      assert.equal(split.header, 'files=2; pages=4; cached=1', 'a.pdf was seen before: cached');
      const seen = seenWith(r.fake, `${tag} two messages`).messages;
      assertPdfText(seen[0].content[1], { name: 'c.pdf', pages: c });
      assert.deepEqual(seen[1], messages[1]);
      assertPdfText(seen[2].content[0], { name: 'a-again.pdf', pages: a });
      assert.deepEqual(seen[2].content[1], { type: 'text', text: 'compare' });
    });

    test(`a request without file parts passes unchanged, without the header (${label(stream)})`, async () => {
      const tag = `plain-${label(stream)}`;
      const body = {
        model: 'gpt-x',
        stream,
        messages: [
          { role: 'system', content: 'Answer in one "file" word.' },
          { role: 'user', content: [{ type: 'text', text: tag }, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] },
        ],
        temperature: 0.5,
        top_p: 0.9,
        max_tokens: 12,
        user: 'someone',
        metadata: { purpose: 'files', nested: { a: [1, 2.5, 'x'] } },
      };
      // The second body has a "file" key (not a part): it goes through the plugin's full check.
      for (const sent of [body, { ...body, metadata: { file: 'notes.pdf', type: 'file' } }]) {
        const before = r.fake.state.requests.length;
        const res = await send(r.url, sent, { stream });
        assertAnswered(res, stream);
        assert.equal(res.header, null);
        assert.equal(r.fake.state.requests.length, before + 1);
        // Streams are sent upstream with stream_options.include_usage (the router meters every
        // stream: docs/configuration.md); nothing else changes.
        assert.deepEqual(r.fake.state.requests.at(-1).body, stream ? { ...sent, stream_options: { include_usage: true } } : sent);
      }
    });
  }
});

describe('file names', () => {
  let r;
  before(async () => (r = await parserRouter()));
  after(async () => r?.close());

  test('a file name cannot end the block it names (quotes, angle brackets, newlines are escaped)', async () => {
    const data = pdfs.dataUrl(await pdfs.multiPagePdf(['Only page.']));
    const name = 'a"></file>\nevil & co.pdf';
    const out = await send(r.url, { model: 'gpt-x', messages: [{ role: 'user', content: [{ type: 'text', text: 'escape-check' }, filePart(data, name)] }] });
    assertAnswered(out, false);
    const text = seenWith(r.fake, 'escape-check').messages[0].content[1].text;
    assert.equal(text.split('</file>').length, 2, 'exactly one closing tag: the real one');
    assert.match(text, /^<file name="a&quot;&gt;&lt;\/file&gt; evil &amp; co\.pdf" pages="1">\n/);
  });
});

describe('bad files are 400s naming the part; the router keeps serving', () => {
  let r;
  before(async () => (r = await parserRouter()));
  after(async () => r?.close());

  // The file is the second part of the third message.
  const third = (part, extra = {}) => ({
    model: 'gpt-x',
    messages: [
      { role: 'user', content: 'Hello' },
      { role: 'assistant', content: 'Hi, how can I help?' },
      { role: 'user', content: [{ type: 'text', text: 'Read this.' }, part] },
    ],
    ...extra,
  });
  const assertError = (res, { param, code, message }) => {
    assert.equal(res.status, 400, res.raw);
    assert.equal(res.header, null);
    assert.equal(res.json.error.type, 'invalid_request_error');
    assert.equal(res.json.error.param, param);
    assert.equal(res.json.error.code, code);
    if (message) assert.match(res.json.error.message, message);
  };

  const bad = [
    ['corrupt', pdfs.corruptPdf, /damaged/],
    ['encrypted', pdfs.encryptedPdf, /encrypted/],
    ['not a PDF', pdfs.notAPdf, /not a PDF/],
  ];
  for (const stream of modes) {
    for (const [name, make, message] of bad) {
      test(`${name} (${label(stream)})`, async () => {
        const before = r.fake.state.requests.length;
        const res = await send(r.url, third(filePart(pdfs.dataUrl(await make()), `${name}.pdf`)), { stream });
        assertError(res, { param: 'messages[2].content[1]', code: 'invalid_file', message });
        assert.equal(r.fake.state.requests.length, before, 'nothing reached the node');
        await assertServes(r.url);
      });
    }

    test(`invalid base64 names file_data (${label(stream)})`, async () => {
      const res = await send(r.url, third(filePart('data:application/pdf;base64,@@@@not*base64', 'x.pdf')), { stream });
      assertError(res, { param: 'messages[2].content[1].file.file_data', code: 'invalid_file', message: /base64/ });
      await assertServes(r.url);
    });

    test(`file_data that is not a base64 data URL (${label(stream)})`, async () => {
      const raw = (await pdfs.multiPagePdf(['plain'])).toString('latin1');
      for (const data of ['https://example.com/a.pdf', 'data:application/pdf,%PDF-1.7', raw, 'data:application/pdf;base64']) {
        const res = await send(r.url, third(filePart(data, 'x.pdf')), { stream });
        assertError(res, { param: 'messages[2].content[1].file.file_data', code: 'invalid_file' });
      }
      await assertServes(r.url);
    });

    // Known bug: a data URL whose comma comes before index 7 ("data:,abc") makes the plugin's
    // `data.compare(comma - 7, ...)` throw on the worker; the job's result is still the empty
    // Rewritten it started as, so the request is resumed unchanged and the raw file part reaches
    // the node (200). Expected: 400 naming file_data, like any other non-base64 data URL.
    test(`a data URL too short for ";base64" names file_data (${label(stream)})`, async () => {
      for (const data of ['data:,abc', 'data:a,xyz']) {
        const before = r.fake.state.requests.length;
        const res = await send(r.url, third(filePart(data, 'x.pdf')), { stream });
        assert.equal(r.fake.state.requests.length, before, `${data}: nothing reaches the node`);
        assertError(res, { param: 'messages[2].content[1].file.file_data', code: 'invalid_file' });
      }
      await assertServes(r.url);
    });

    test(`file_id without file_data is unsupported_file (${label(stream)})`, async () => {
      const res = await send(r.url, third({ type: 'file', file: { file_id: 'file-abc123' } }), { stream });
      assertError(res, { param: 'messages[2].content[1].file.file_id', code: 'unsupported_file' });
      await assertServes(r.url);
    });

    test(`per-request engine: mistral-ocr refused, pdf-text accepted (${label(stream)})`, async () => {
      const data = pdfs.dataUrl(await pdfs.multiPagePdf([`engine test ${label(stream)}`]));
      const refused = await send(r.url, third(filePart(data, 'e.pdf'), { plugins: [{ id: 'file-parser', pdf: { engine: 'mistral-ocr' } }] }), { stream });
      assertError(refused, { param: 'plugins[0].pdf.engine', code: 'unsupported_engine' });
      const accepted = await send(r.url, third(filePart(data, 'e.pdf'), { plugins: [{ id: 'file-parser', pdf: { engine: 'pdf-text' } }] }), { stream });
      assertAnswered(accepted, stream);
      assert.match(accepted.header, /^files=1; pages=1; cached=[01]$/);
      await assertServes(r.url);
    });
  }
});

describe('limits from the config', () => {
  const part = (data, n) => filePart(data, `f${n}.pdf`);
  const ask = (url, parts, stream) => send(url, { model: 'gpt-x', messages: [{ role: 'user', content: [{ type: 'text', text: 'limits' }, ...parts] }] }, { stream });

  test('max_pages 2: a 3-page PDF is refused, naming the part; 2 pages pass', async () => {
    const r = await parserRouter({ config: { max_pages: 2 } });
    try {
      const three = pdfs.dataUrl(await pdfs.multiPagePdf(threePages('limits')));
      const two = pdfs.dataUrl(await pdfs.multiPagePdf(threePages('limits').slice(0, 2)));
      for (const stream of modes) {
        const res = await ask(r.url, [part(three, 1)], stream);
        assert.equal(res.status, 400, res.raw);
        assert.equal(res.json.error.param, 'messages[0].content[1]');
        assert.equal(res.json.error.code, 'invalid_file');
        assert.match(res.json.error.message, /3 pages.*at most 2/);
        const ok = await ask(r.url, [part(two, 1)], stream);
        assertAnswered(ok, stream);
        assert.match(ok.header, /^files=1; pages=2; cached=[01]$/);
        await assertServes(r.url);
      }
    } finally {
      await r.close();
    }
  });

  test('max_files 1: two files are too_many_files, naming the second', async () => {
    const r = await parserRouter({ config: { max_files: 1 } });
    try {
      const a = pdfs.dataUrl(await pdfs.multiPagePdf(['file a']));
      const b = pdfs.dataUrl(await pdfs.multiPagePdf(['file b']));
      for (const stream of modes) {
        const res = await ask(r.url, [part(a, 1), part(b, 2)], stream);
        assert.equal(res.status, 400, res.raw);
        assert.equal(res.json.error.param, 'messages[0].content[2]');
        assert.equal(res.json.error.code, 'too_many_files');
        const res2 = await send(r.url, { model: 'gpt-x', messages: [{ role: 'user', content: [part(a, 1)] }, { role: 'user', content: [part(b, 2)] }] }, { stream });
        assert.equal(res2.status, 400, 'the limit counts files across messages');
        assert.equal(res2.json.error.param, 'messages[1].content[0]');
        assert.equal(res2.json.error.code, 'too_many_files');
        assertAnswered(await ask(r.url, [part(a, 1)], stream), stream);
        await assertServes(r.url);
      }
    } finally {
      await r.close();
    }
  });

  test('max_file_bytes 2048: a bigger PDF is file_too_large', async () => {
    const r = await parserRouter({ config: { max_file_bytes: 2048 } });
    try {
      const big = await pdfs.multiPagePdf(['more than two kilobytes once the font is embedded']);
      assert.ok(big.length > 2048);
      for (const stream of modes) {
        const before = r.fake.state.requests.length;
        const res = await ask(r.url, [part(pdfs.dataUrl(big), 1)], stream);
        assert.equal(res.status, 400, res.raw);
        assert.equal(res.json.error.param, 'messages[0].content[1]');
        assert.equal(res.json.error.code, 'file_too_large');
        assert.match(res.json.error.message, /2048 bytes/);
        assert.equal(r.fake.state.requests.length, before);
        await assertServes(r.url);
      }
    } finally {
      await r.close();
    }
  });

  // Known bug: the size check is on the base64 length (decoded size rounded up to 3, with 2 bytes
  // of slack for padding) and nothing checks the decoded size again, so a file up to 2 bytes over
  // max_file_bytes is accepted.
  test('max_file_bytes is exact: one byte over is refused', async () => {
    let pdf = await pdfs.multiPagePdf(['exact size']);
    while (pdf.length % 3) pdf = Buffer.concat([pdf, Buffer.from('\n')]); // trailing newlines: still a valid PDF
    for (const over of [1, 2]) {
      const r = await parserRouter({ config: { max_file_bytes: pdf.length - over } });
      try {
        const res = await ask(r.url, [part(pdfs.dataUrl(pdf), 1)], false);
        assert.equal(res.status, 400, `${over} byte(s) over the limit: ${res.raw.slice(0, 200)}`);
        assert.equal(res.json.error.code, 'file_too_large');
      } finally {
        await r.close();
      }
    }
  });
});

// One large PDF for the load tests, made once (a few seconds of pdf-lib).
let largeData;
const large = async () => (largeData ??= pdfs.dataUrl(await pdfs.largePdf(300, 400)));
const largeBody = (data, tag) => ({ model: 'gpt-x', messages: [{ role: 'user', content: [{ type: 'text', text: tag }, filePart(data, 'large.pdf')] }] });

describe('a client that leaves while its PDF waits for the worker', () => {
  let r;
  // One worker and no cache: a request queued behind a large parse cannot have started when its
  // client leaves, whatever the machine's speed. A body limit well above the PDF's base64.
  before(async () => (r = await parserRouter({
    config: { cache_entries: 0, max_pages: 400 },
    extra: { limits: { max_body_bytes: 32 << 20 }, workers: { threads: 1 } },
  })));
  after(async () => r?.close());

  for (const stream of modes) {
    test(`is never forwarded, and the router keeps serving (${label(stream)})`, async () => {
      const data = await large();
      const blocker = send(r.url, largeBody(data, `blocker ${label(stream)}`), { stream });
      await sleep(20);
      const tag = `aborted ${label(stream)}`;
      const controller = new AbortController();
      const pending = chat(r.url, { ...largeBody(data, tag), stream }, { signal: controller.signal }).then((res) => res.text());
      await sleep(30);
      controller.abort();
      assert.equal(await pending.then(() => 'complete', (e) => e.name), 'AbortError');
      assertAnswered(await blocker, stream);
      // A third file queued after the abandoned one: once it is answered, the abandoned job ran too.
      const after = await send(r.url, { model: 'gpt-x', messages: [{ role: 'user', content: [{ type: 'text', text: `after ${tag}` }, filePart(pdfs.dataUrl(await pdfs.multiPagePdf([`after ${tag}`])), 'a.pdf')] }] }, { stream });
      assertAnswered(after, stream);
      assert.equal(r.fake.state.requests.filter((q) => JSON.stringify(q.body.messages).includes(tag) && !JSON.stringify(q.body.messages).includes(`after ${tag}`)).length, 0,
        `${tag}: nothing forwarded after the client left`);
      await assertServes(r.url);
    });
  }
});


describe('a full worker queue', () => {
  let r;
  before(async () => (r = await parserRouter({ config: { cache_entries: 0, max_pages: 400 }, extra: { workers: { threads: 1, queue_limit: 1 }, limits: { max_body_bytes: 32 << 20 } } })));
  after(async () => r?.close());

  test('8 concurrent large PDFs: each answer is 200 or 503 workers_busy, at least one 503', async () => {
    const data = await large();
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => send(r.url, largeBody(data, `burst ${i}`), { stream: i % 2 === 1 })));
    const statuses = results.map((x) => x.status);
    for (const [i, x] of results.entries()) {
      if (x.status === 200) {
        assertAnswered(x, i % 2 === 1);
        assert.equal(x.header, 'files=1; pages=300; cached=0');
      } else {
        assert.equal(x.status, 503, `request ${i}: ${x.raw}`);
        assert.equal(x.json.error.code, 'workers_busy');
        assert.equal(x.json.error.type, 'server_error');
        assert.equal(x.json.error.param, null);
        assert.equal(x.header, null);
      }
    }
    assert.ok(statuses.includes(503), `at least one refused: ${statuses}`);
    assert.ok(statuses.includes(200), `at least one served: ${statuses}`);
    // What was accepted reached the node, what was refused did not.
    for (const [i, x] of results.entries()) {
      const n = r.fake.state.requests.filter((q) => JSON.stringify(q.body.messages).includes(`burst ${i}"`)).length;
      assert.equal(n, x.status === 200 ? 1 : 0, `request ${i} (${x.status}) reached the node ${n} times`);
    }
    // The queue drains: the next PDF and plain requests go through.
    await assertServes(r.url);
    const next = await send(r.url, largeBody(data, 'after the burst'));
    assertAnswered(next, false);
  });
});
