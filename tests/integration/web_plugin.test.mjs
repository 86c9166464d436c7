// The web plugin (plugins/web) against the real router: a fake SearxNG answers the searches, a
// fake OpenAI backend answers the chats (its "cite" model cites the injected sources the way real
// models do). Covers the three ways to ask for a search, what the upstream then sees, the
// citations as url_citation annotations (whole, streamed, through the openai SDK), and that a
// failed search never becomes the client's error.
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { citePieces, injectedSources, startFakeOpenAI } from './support/fake_openai.mjs';
import { defaultResults, startFakeSearxng } from './support/fake_searxng.mjs';
import { baseConfig, chat, demoKey, freePort, repoRoot, sseEvents, startPlexus, user } from './support/plexus.mjs';

const pluginDir = path.resolve(process.env.PLEXUS_PLUGIN_DIR || path.join(repoRoot, 'build/plugins'));
const webPlugin = (config, name = 'web') => ({ name, type: 'native', path: path.join(pluginDir, 'libplexus_web.so'), config });
const HEADER = 'x-plexus-web-search';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const waitFor = async (fn, ms = 3000) => {
  const end = Date.now() + ms;
  while (!fn() && Date.now() < end) await sleep(20);
  return fn();
};
const chunks = (events) => events.filter((e) => e !== '[DONE]').map((e) => JSON.parse(e));
const streamedText = (events) => chunks(events).flatMap((c) => c.choices ?? []).map((c) => c.delta?.content ?? '').join('');
// Slices by Unicode code points, as the annotations' indices count.
const cpSlice = (text, start, end) => Array.from(text).slice(start, end).join('');
const textOf = (content) => (typeof content === 'string' ? content : content.filter((p) => p.type === 'text').map((p) => p.text).join(' '));
const lastUserText = (messages) => {
  const last = messages.findLast((m) => m.role === 'user');
  return last ? textOf(last.content) : undefined;
};
const injectedMessages = (messages) => messages.filter((m) => m.role === 'system' && /^\[\d+\] .*\nURL: /m.test(m.content));
const slug = (q) => q.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
const todayUtc = () => new Date().toISOString().slice(0, 10);
const searchedFor = (fake, q) => fake.requests.filter((r) => r.query.q === q);

// What the upstream received for the request whose last user message is `question`.
function seenBy(up, question) {
  const all = up.state.requests.filter((r) => lastUserText(r.body.messages) === question);
  assert.equal(all.length, 1, `the upstream got exactly one request for ${JSON.stringify(question)}`);
  return all[0].body;
}

// Expected whole answer of the "cite" model for `question`'s default fake results, and the three
// markers it holds, each with the source it cites.
function expectedCitations(question) {
  const sources = defaultResults(question);
  const text = citePieces(sources).join('');
  const markers = [
    { marker: '[1]', source: sources[0] },
    { marker: '[2]', source: sources[1] },
    { marker: `[the docs](${sources[2].url})`, source: sources[2] },
  ];
  return { sources, text, markers };
}

function checkAnnotation(a, text, { marker, source }) {
  assert.equal(a.type, 'url_citation');
  assert.deepEqual(Object.keys(a.url_citation).sort(), ['content', 'end_index', 'start_index', 'title', 'url']);
  const c = a.url_citation;
  assert.equal(cpSlice(text, c.start_index, c.end_index), marker, `the annotation spans ${marker}`);
  assert.equal(c.url, source.url);
  assert.equal(c.title, source.title);
  assert.equal(c.content, source.content);
}

describe('web plugin: activation, query and injected sources', () => {
  let sx, up, plexus, always;
  before(async () => {
    sx = await startFakeSearxng();
    up = await startFakeOpenAI({ models: ['gpt-x', 'cite'] });
    const upstreams = [{ name: 'fake', provider: 'openai', url: up.url, models: ['gpt-x', 'cite'] }];
    plexus = await startPlexus(baseConfig(upstreams, { plugins: [webPlugin({ search_url: sx.url, timeout_ms: 5000 })] }));
    always = await startPlexus(baseConfig(upstreams, { plugins: [webPlugin({ search_url: sx.url, timeout_ms: 5000, always: true })] }));
  });
  after(async () => {
    await plexus?.stop();
    await always?.stop();
    await up?.close();
    await sx?.close();
  });

  test('without plugins, :online or always: no search, no header, the upstream body unchanged', async () => {
    const searches = sx.requests.length;
    const sent = { model: 'gpt-x', messages: user('no search for this one'), temperature: 0.5 };
    const res = await chat(plexus.url, sent);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get(HEADER), null);
    assert.equal((await res.json()).choices[0].message.content, 'Hello from fake');
    assert.deepEqual(seenBy(up, 'no search for this one'), sent);

    const streamedSent = { model: 'gpt-x', messages: user('no search for this stream'), stream: true };
    const sres = await chat(plexus.url, streamedSent);
    assert.equal(sres.status, 200);
    assert.equal(sres.headers.get(HEADER), null);
    const events = await sseEvents(sres);
    assert.equal(events.at(-1), '[DONE]');
    assert.equal(streamedText(events), 'Hello from fake');
    const seen = seenBy(up, 'no search for this stream');
    assert.deepEqual(seen.messages, streamedSent.messages);
    assert.equal(seen.model, 'gpt-x');
    assert.equal('plugins' in seen, false);
    assert.equal(sx.requests.length, searches, 'no search request reached SearxNG');
  });

  test('plugins: [{id: "web"}] searches, whole and streamed; the upstream never sees the field', async () => {
    for (const stream of [false, true]) {
      const q = `what is plexus, ${stream ? 'streamed' : 'whole'}?`;
      const res = await chat(plexus.url, { model: 'gpt-x', messages: user(q), plugins: [{ id: 'web' }], ...(stream ? { stream } : {}) });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get(HEADER), 'ok; results=3');
      if (stream) {
        const events = await sseEvents(res);
        assert.equal(events.at(-1), '[DONE]');
        assert.equal(streamedText(events), 'Hello from fake');
      } else {
        assert.equal((await res.json()).choices[0].message.content, 'Hello from fake');
      }
      const searches = searchedFor(sx, q);
      assert.equal(searches.length, 1);
      assert.equal(searches[0].method, 'GET');
      assert.equal(searches[0].path, '/search');
      assert.equal(searches[0].query.format, 'json');
      const seen = seenBy(up, q);
      assert.equal(seen.model, 'gpt-x');
      assert.equal('plugins' in seen, false);
      assert.equal(injectedMessages(seen.messages).length, 1);
    }
  });

  test('a model ending in :online searches; the upstream sees the bare model and no plugins field', async () => {
    for (const stream of [false, true]) {
      const q = `online question ${stream ? 'streamed' : 'whole'}`;
      const res = await chat(plexus.url, { model: 'gpt-x:online', messages: user(q), ...(stream ? { stream } : {}) });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get(HEADER), 'ok; results=3');
      if (stream) assert.equal((await sseEvents(res)).at(-1), '[DONE]');
      else assert.equal((await res.json()).choices[0].message.content, 'Hello from fake');
      assert.equal(searchedFor(sx, q).length, 1);
      const seen = seenBy(up, q);
      assert.equal(seen.model, 'gpt-x');
      assert.equal('plugins' in seen, false);
      assert.deepEqual(injectedSources(seen.messages).map((s) => s.url), defaultResults(q).map((r) => r.url));
    }
  });

  test('always: true searches for every request, even one that does not ask', async () => {
    for (const stream of [false, true]) {
      const q = `always searched ${stream ? 'streamed' : 'whole'}`;
      const res = await chat(always.url, { model: 'gpt-x', messages: user(q), ...(stream ? { stream } : {}) });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get(HEADER), 'ok; results=3');
      if (stream) assert.equal((await sseEvents(res)).at(-1), '[DONE]');
      else await res.json();
      assert.equal(searchedFor(sx, q).length, 1);
      assert.equal(injectedMessages(seenBy(up, q).messages).length, 1);
    }
  });

  test('the query is the last user message, also when its content is an array of text parts', async () => {
    const conversation = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'an earlier question' },
      { role: 'assistant', content: 'an earlier answer' },
      { role: 'user', content: [{ type: 'text', text: 'parts one' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }, { type: 'text', text: 'and two' }] },
    ];
    const res = await chat(plexus.url, { model: 'gpt-x', messages: conversation, plugins: [{ id: 'web' }] });
    assert.equal(res.status, 200);
    await res.json();
    const search = sx.requests.at(-1);
    assert.equal(search.query.q, 'parts one and two');
    assert.equal(search.query.format, 'json');
    assert.equal(searchedFor(sx, 'an earlier question').length, 0);

    // Sent URL-encoded, arriving as written; cut to max_query_chars (400 bytes) on a character boundary.
    const odd = 'Wörld & a+b = c? 日本 100% #1';
    await (await chat(plexus.url, { model: 'gpt-x:online', messages: user(odd) })).json();
    assert.equal(sx.requests.at(-1).query.q, odd);
    await (await chat(plexus.url, { model: 'gpt-x:online', messages: user('ü'.repeat(250)) })).json();
    assert.equal(sx.requests.at(-1).query.q, 'ü'.repeat(200));

    // Nothing to search for: no search, a header that says so, the request goes on.
    const searches = sx.requests.length;
    const res2 = await chat(plexus.url, { model: 'gpt-x:online', messages: [{ role: 'system', content: 'Only a system message.' }] });
    assert.equal(res2.status, 200);
    assert.match(res2.headers.get(HEADER), /^skipped; /);
    await res2.json();
    assert.equal(sx.requests.length, searches);
    assert.equal(up.state.requests.at(-1).body.model, 'gpt-x');
  });

  test('the sources go in a system message just before the last user message: numbered, title, URL, snippet', async () => {
    const q = 'where do the sources go?';
    const conversation = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'first question' },
      { role: 'assistant', content: 'first answer' },
      { role: 'user', content: q },
    ];
    const res = await chat(plexus.url, { model: 'gpt-x', messages: conversation, plugins: [{ id: 'web' }] });
    assert.equal(res.status, 200);
    await res.json();
    const seen = seenBy(up, q).messages;
    assert.equal(seen.length, 5);
    assert.deepEqual(seen.slice(0, 3), conversation.slice(0, 3), 'the conversation before it is as it was');
    assert.deepEqual(seen[4], conversation[3]);
    assert.equal(seen[3].role, 'system');
    const text = seen[3].content;
    assert.match(text, /^A web search was conducted on \d{4}-\d{2}-\d{2}\. /);
    assert.ok([todayUtc(), new Date(Date.now() - 60000).toISOString().slice(0, 10)].includes(text.match(/conducted on (\S+)\./)[1]));
    const results = defaultResults(q);
    for (const [i, r] of results.entries()) assert.ok(text.includes(`\n\n[${i + 1}] ${r.title}\nURL: ${r.url}\n${r.content}`), `source ${i + 1} listed`);
    assert.equal(text.includes('[4]'), false);
  });

  test('max_results per request limits the sources; search_prompt replaces the preamble', async () => {
    const q = 'only two sources please';
    const res = await chat(plexus.url, { model: 'gpt-x', messages: user(q), plugins: [{ id: 'web', max_results: 2 }], stream: true });
    assert.equal(res.headers.get(HEADER), 'ok; results=2');
    assert.equal((await sseEvents(res)).at(-1), '[DONE]');
    assert.deepEqual(injectedSources(seenBy(up, q).messages).map((s) => s.url), defaultResults(q).slice(0, 2).map((r) => r.url));

    const q2 = 'a prompt of my own';
    const res2 = await chat(plexus.url, { model: 'gpt-x', messages: user(q2), plugins: [{ id: 'web', search_prompt: 'Sources found on {date}:', max_results: 1 }] });
    assert.equal(res2.headers.get(HEADER), 'ok; results=1');
    await res2.json();
    const [injected] = injectedMessages(seenBy(up, q2).messages);
    const r = defaultResults(q2)[0];
    const date = injected.content.match(/^Sources found on (\d{4}-\d{2}-\d{2}):\n\n\[1\] /)?.[1];
    assert.ok(date, `the preamble replaced: ${JSON.stringify(injected.content.slice(0, 80))}`);
    assert.equal(injected.content, `Sources found on ${date}:\n\n[1] ${r.title}\nURL: ${r.url}\n${r.content}`);
    assert.equal(injected.content.includes('A web search was conducted'), false);
  });

  test('an invalid plugins[0].max_results is a 400 naming it, and nothing is searched', async () => {
    const searches = sx.requests.length;
    const upstreamed = up.state.requests.length;
    for (const [max, stream] of [[0, false], ['x', false], [11, false], [1.5, false], [-1, false], [11, true], [0, true]]) {
      const res = await chat(plexus.url, { model: 'gpt-x', messages: user('bad max'), plugins: [{ id: 'web', max_results: max }], ...(stream ? { stream } : {}) });
      assert.equal(res.status, 400, `max_results ${JSON.stringify(max)}`);
      const { error } = await res.json();
      assert.equal(error.param, 'plugins[0].max_results');
      assert.equal(error.type, 'invalid_request_error');
      assert.match(error.message, /from 1 to 10/);
    }
    const res = await chat(plexus.url, { model: 'gpt-x', messages: user('bad prompt'), plugins: [{ id: 'web', search_prompt: 7 }] });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error.param, 'plugins[0].search_prompt');
    assert.equal(sx.requests.length, searches);
    assert.equal(up.state.requests.length, upstreamed);
  });

  test('an unknown plugin id is a 400 unknown_plugin naming its place', async () => {
    const searches = sx.requests.length;
    const res = await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), plugins: [{ id: 'nope' }] });
    assert.equal(res.status, 400);
    const { error } = await res.json();
    assert.equal(error.code, 'unknown_plugin');
    assert.equal(error.param, 'plugins[0].id');
    assert.equal(error.type, 'invalid_request_error');
    const second = await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), plugins: [{ id: 'web' }, { id: 'nope' }], stream: true });
    assert.equal(second.status, 400);
    const secondError = (await second.json()).error;
    assert.equal(secondError.code, 'unknown_plugin');
    assert.equal(secondError.param, 'plugins[1].id');
    assert.equal(sx.requests.length, searches);
  });

  test('citations in a whole answer are url_citation annotations spanning their markers', async () => {
    const q = 'cite your sources, whole';
    const res = await chat(plexus.url, { model: 'cite', messages: user(q), plugins: [{ id: 'web' }] });
    assert.equal(res.status, 200);
    const body = await res.json();
    const { text, markers } = expectedCitations(q);
    const message = body.choices[0].message;
    assert.equal(message.content, text);
    assert.equal(message.annotations.length, 3);
    message.annotations.forEach((a, i) => checkAnnotation(a, message.content, markers[i]));
    // The code-point indices differ from byte offsets once "ünïcode" is behind them.
    const [, second] = message.annotations;
    assert.equal(second.url_citation.start_index, Array.from(text).length - Array.from(text.slice(text.indexOf('[2]'))).length);
  });

  test('citations in a stream: each annotation rides the chunk that completes its marker', async () => {
    const q = 'cite your sources, streamed';
    const res = await chat(plexus.url, { model: 'cite', messages: user(q), plugins: [{ id: 'web' }], stream: true });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get(HEADER), 'ok; results=3');
    const events = await sseEvents(res);
    assert.equal(events.at(-1), '[DONE]');
    const { text, markers, sources } = expectedCitations(q);
    const all = streamedText(events);
    assert.equal(all, text);
    const deltas = chunks(events).flatMap((c) => c.choices ?? []).map((c) => c.delta ?? {});
    const carrying = deltas.filter((d) => d.annotations);
    assert.deepEqual(carrying.map((d) => d.content), ['1] and streams ', ']. See ', ').'], 'the chunks that complete [1], [2] and the link');
    carrying.forEach((d, i) => {
      assert.equal(d.annotations.length, 1);
      checkAnnotation(d.annotations[0], all, markers[i]);
    });
    assert.equal(carrying[2].annotations[0].url_citation.url, sources[2].url);
  });

  test('the cite model without a search answers without sources and gets no annotations', async () => {
    const res = await chat(plexus.url, { model: 'cite', messages: user('no search, no sources') });
    const message = (await res.json()).choices[0].message;
    assert.equal(message.content, 'No sources.');
    assert.equal(message.annotations, undefined);
  });

  test('the openai SDK reads the annotations, whole and streamed', async () => {
    const client = new OpenAI({ apiKey: demoKey, baseURL: `${plexus.url}/v1`, maxRetries: 0 });
    const q = 'sdk whole citations';
    const { data: completion, response } = await client.chat.completions
      .create({ model: 'cite', messages: user(q), plugins: [{ id: 'web' }] })
      .withResponse();
    assert.equal(response.headers.get(HEADER), 'ok; results=3');
    const whole = expectedCitations(q);
    const message = completion.choices[0].message;
    assert.equal(message.content, whole.text);
    assert.equal(message.annotations.length, 3);
    message.annotations.forEach((a, i) => checkAnnotation(a, message.content, whole.markers[i]));

    const q2 = 'sdk streamed citations';
    const stream = await client.chat.completions.create({ model: 'gpt-x:online', messages: [{ role: 'user', content: q2 }], stream: true });
    let text = '';
    const annotations = [];
    let finish = null;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        text += c.delta?.content ?? '';
        annotations.push(...(c.delta?.annotations ?? []));
        finish = c.finish_reason ?? finish;
      }
    }
    assert.equal(finish, 'stop');
    assert.equal(text, 'Hello from fake', 'gpt-x cites nothing');
    assert.deepEqual(annotations, []);

    const q3 = 'sdk streamed citations, cited';
    const cited = await client.chat.completions.create({ model: 'cite:online', messages: [{ role: 'user', content: q3 }], stream: true });
    let text3 = '';
    const annotations3 = [];
    for await (const chunk of cited) {
      for (const c of chunk.choices) {
        text3 += c.delta?.content ?? '';
        annotations3.push(...(c.delta?.annotations ?? []));
      }
    }
    const streamed = expectedCitations(q3);
    assert.equal(text3, streamed.text);
    assert.equal(annotations3.length, 3);
    annotations3.forEach((a, i) => checkAnnotation(a, text3, streamed.markers[i]));
    assert.equal(seenBy(up, q3).model, 'cite');
  });

  test('a client that goes away during the search leaves the router serving', async () => {
    const q = 'abandoned while searching';
    sx.setMode('slow', 2000);
    const started = Date.now();
    const controller = new AbortController();
    const pending = chat(plexus.url, { model: 'gpt-x', messages: user(q), plugins: [{ id: 'web' }], stream: true }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 200);
    await assert.rejects(pending, { name: 'AbortError' });
    assert.ok(await waitFor(() => searchedFor(sx, q).length === 1), 'the fake saw the search');
    sx.setMode('results');

    const next = 'served after the abandoned one';
    const res = await chat(plexus.url, { model: 'cite', messages: user(next), plugins: [{ id: 'web' }] });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get(HEADER), 'ok; results=3');
    assert.equal((await res.json()).choices[0].message.annotations.length, 3);
    // Past the slow answer's arrival: the abandoned request never reaches the upstream.
    await sleep(Math.max(0, started + 2500 - Date.now()));
    assert.equal(up.state.requests.filter((r) => lastUserText(r.body.messages) === q).length, 0);
    const again = await chat(plexus.url, { model: 'gpt-x', messages: user('still serving'), plugins: [{ id: 'web' }] });
    assert.equal(again.status, 200);
    await again.json();
  });

  test('many concurrent searches each get their own sources', async () => {
    sx.setMode('slow', 50);
    try {
      const questions = Array.from({ length: 30 }, (_, i) => `concurrent question ${i} about topic ${String.fromCharCode(97 + (i % 26))}${i}`);
      const answers = await Promise.all(questions.map(async (q, i) => {
        const stream = i % 2 === 1;
        const res = await chat(plexus.url, { model: 'cite', messages: user(q), plugins: [{ id: 'web' }], ...(stream ? { stream } : {}) });
        assert.equal(res.status, 200, q);
        assert.equal(res.headers.get(HEADER), 'ok; results=3', q);
        if (!stream) return (await res.json()).choices[0].message.annotations;
        const events = await sseEvents(res);
        assert.equal(events.at(-1), '[DONE]', q);
        return chunks(events).flatMap((c) => c.choices ?? []).flatMap((c) => c.delta?.annotations ?? []);
      }));
      for (const [i, q] of questions.entries()) {
        const urls = defaultResults(q).map((r) => r.url);
        assert.ok(urls[0].includes(slug(q)));
        assert.equal(searchedFor(sx, q).length, 1, q);
        assert.deepEqual(injectedSources(seenBy(up, q).messages).map((s) => s.url), urls, `the upstream request for ${q} lists its own sources`);
        assert.deepEqual(answers[i].map((a) => a.url_citation.url), urls, `the answer to ${q} cites its own sources`);
      }
    } finally {
      sx.setMode('results');
    }
  });
});

describe('web plugin: a failed search is never the client\'s error', () => {
  let sx, htmlOnly, up, routers, held;
  before(async () => {
    // A search backend that takes the request and never answers, and says when its connection closes.
    held = { requests: 0, closed: 0, server: http.createServer((req) => {
      held.requests++;
      req.socket.on('close', () => held.closed++);
    }) };
    await new Promise((r) => held.server.listen(0, '127.0.0.1', r));
    sx = await startFakeSearxng();
    htmlOnly = await startFakeSearxng({ formats: ['html'] });
    up = await startFakeOpenAI({ models: ['gpt-x', 'cite'] });
    const upstreams = [{ name: 'fake', provider: 'openai', url: up.url, models: ['gpt-x', 'cite'] }];
    const start = (search_url) => startPlexus(baseConfig(upstreams, { plugins: [webPlugin({ search_url, timeout_ms: 300 })] }));
    routers = {
      fake: await start(sx.url),
      closed: await start(`http://127.0.0.1:${await freePort()}`),
      html: await start(htmlOnly.url),
      held: await startPlexus(baseConfig(upstreams, { plugins: [webPlugin({ search_url: `http://127.0.0.1:${held.server.address().port}`, timeout_ms: 20000 })] })),
    };
  });
  after(async () => {
    for (const r of Object.values(routers ?? {})) await r?.stop();
    held?.server.closeAllConnections();
    await new Promise((r) => (held ? held.server.close(r) : r()));
    await up?.close();
    await sx?.close();
    await htmlOnly?.close();
  });

  const cases = [
    { name: 'SearxNG answers 500', router: 'fake', mode: 'error', header: /^failed; HTTP 500/ },
    { name: 'SearxNG answers garbage', router: 'fake', mode: 'garbage', header: /^failed; / },
    { name: 'SearxNG finds nothing', router: 'fake', mode: 'empty', header: /^none; / },
    { name: 'SearxNG never answers (timeout_ms 300)', router: 'fake', mode: 'hang', header: /^failed; / },
    { name: 'nothing listens on the port', router: 'closed', header: /^failed; / },
    { name: 'the instance does not enable json (403)', router: 'html', header: /^failed; HTTP 403/ },
  ];
  for (const c of cases) {
    test(`${c.name}: 200 from the upstream, header says so, nothing injected`, async () => {
      if (c.mode) sx.setMode(c.mode);
      try {
        const fake = c.router === 'html' ? htmlOnly : sx;
        for (const [stream, online] of [[false, false], [true, true]]) {
          const q = `${c.name}, ${stream ? 'streamed' : 'whole'}`;
          const res = await chat(routers[c.router].url, {
            model: online ? 'cite:online' : 'cite',
            messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: q }],
            ...(online ? {} : { plugins: [{ id: 'web', max_results: 3 }] }),
            ...(stream ? { stream } : {}),
          });
          assert.equal(res.status, 200, q);
          assert.match(res.headers.get(HEADER) ?? '', c.header, q);
          if (stream) {
            const events = await sseEvents(res);
            assert.equal(events.at(-1), '[DONE]');
            assert.equal(streamedText(events), 'No sources.');
            assert.equal(chunks(events).some((ch) => ch.choices?.some((x) => x.delta?.annotations)), false);
          } else {
            const message = (await res.json()).choices[0].message;
            assert.equal(message.content, 'No sources.');
            assert.equal(message.annotations, undefined);
          }
          const seen = seenBy(up, q);
          assert.equal(seen.model, 'cite');
          assert.equal('plugins' in seen, false);
          assert.deepEqual(seen.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: q }]);
          if (c.router !== 'closed') {
            assert.equal(searchedFor(fake, q).length, 1, 'the search was tried');
            assert.equal(searchedFor(fake, q)[0].query.format, 'json');
          }
        }
      } finally {
        sx.setMode('results');
      }
    });
  }

  test('a client that goes away during the search: its search connection is closed, nothing goes upstream', async () => {
    for (const stream of [false, true]) {
      const q = `abandoned, search held, ${stream ? 'streamed' : 'whole'}`;
      const before = { requests: held.requests, closed: held.closed };
      const controller = new AbortController();
      const pending = chat(routers.held.url, { model: 'gpt-x:online', messages: user(q), ...(stream ? { stream } : {}) }, { signal: controller.signal });
      assert.ok(await waitFor(() => held.requests === before.requests + 1), 'the search reached the backend');
      controller.abort();
      await assert.rejects(pending, { name: 'AbortError' });
      // The search's own timeout is 20 s: closing within a few seconds is the abort's doing.
      assert.ok(await waitFor(() => held.closed === before.closed + 1, 5000), 'the router closed the search connection');
      assert.equal(up.state.requests.filter((r) => lastUserText(r.body.messages) === q).length, 0);
    }
    const res = await chat(routers.held.url, { model: 'gpt-x', messages: user('the held router still serves') });
    assert.equal(res.status, 200);
    await res.json();
  });
});

describe('which instance a request asks for, and who may ask', () => {
  let searxA, searxB, up, plexus;
  before(async () => {
    searxA = await startFakeSearxng();
    searxB = await startFakeSearxng();
    up = await startFakeOpenAI({ name: 'up' });
    plexus = await startPlexus(baseConfig(
      [{ name: 'up', provider: 'openai', url: up.url, models: ['gpt-x'], group: 'vip' },
       { name: 'pub', provider: 'openai', url: up.url, models: ['gpt-pub'] }],
      {
        keys: [{ id: 'demo', key: demoKey, group: 'public' }, { id: 'vip', key: 'sk-vip-key-for-tests', group: 'vip' }],
        plugins: [webPlugin({ search_url: searxA.url }, 'web'), webPlugin({ search_url: searxB.url }, 'news')],
      },
    ));
  });
  after(async () => {
    await plexus?.stop();
    await up?.close();
    await searxA?.close();
    await searxB?.close();
  });

  test('"web" asks for the instance named web only; "news" for the other; ":online" for web', async () => {
    const ask = async (body, q) => {
      const res = await chat(plexus.url, { model: 'gpt-pub', messages: user(q), ...body });
      assert.equal(res.status, 200);
      await res.text();
      return [searchedFor(searxA, q).length, searchedFor(searxB, q).length, res.headers.get(HEADER)];
    };
    assert.deepEqual(await ask({ plugins: [{ id: 'web' }] }, 'instances one'), [1, 0, 'ok; results=3']);
    assert.deepEqual(await ask({ plugins: [{ id: 'news' }] }, 'instances two'), [0, 1, 'ok; results=3']);
    const online = await chat(plexus.url, { model: 'gpt-pub:online', messages: user('instances three') });
    assert.equal(online.status, 200);
    await online.text();
    assert.deepEqual([searchedFor(searxA, 'instances three').length, searchedFor(searxB, 'instances three').length], [1, 0]);
    assert.equal(up.state.requests.at(-1).body.model, 'gpt-pub');
  });

  test('a model the caller cannot reach is a 404 before any search', async () => {
    for (const body of [{ model: 'gpt-x:online' }, { model: 'gpt-x', plugins: [{ id: 'web' }] }, { model: 'nope', plugins: [{ id: 'news' }] }]) {
      const q = `unreachable ${body.model}`;
      const res = await chat(plexus.url, { ...body, messages: user(q) });
      assert.equal(res.status, 404);
      const error = (await res.json()).error;
      assert.equal(error.code, 'model_not_found');
      assert.equal(searchedFor(searxA, q).length + searchedFor(searxB, q).length, 0, 'no search was made');
    }
    // The vip key reaches gpt-x: the search runs.
    const res = await chat(plexus.url, { model: 'gpt-x:online', messages: user('reachable vip') }, { key: 'sk-vip-key-for-tests' });
    assert.equal(res.status, 200);
    await res.text();
    assert.equal(searchedFor(searxA, 'reachable vip').length, 1);
  });
});

test('without the web plugin, ":online" is a 400 naming the model; an unknown plugins[].id names the entry', async () => {
  const up = await startFakeOpenAI({ name: 'up' });
  const plexus = await startPlexus(baseConfig([{ name: 'up', provider: 'openai', url: up.url, models: ['gpt-x'] }]));
  try {
    const online = await chat(plexus.url, { model: 'gpt-x:online', messages: user('hi') });
    assert.equal(online.status, 400);
    const e1 = (await online.json()).error;
    assert.equal(e1.code, 'unknown_plugin');
    assert.equal(e1.param, 'model');
    assert.match(e1.message, /':online' suffix asks for the web plugin/);
    const listed = await chat(plexus.url, { model: 'gpt-x', messages: user('hi'), plugins: [{ id: 'web' }] });
    assert.equal(listed.status, 400);
    assert.equal((await listed.json()).error.param, 'plugins[0].id');
    assert.equal(up.state.requests.length, 0);
  } finally {
    await plexus.stop();
    await up.close();
  }
});
