// Every adapter, fed its backend's stream in random 1-7 byte pieces (trickle_proxy), produces
// exactly the chunks it produces from the same stream delivered whole.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startFakeAnthropic } from './support/fake_anthropic.mjs';
import { startFakeLlamaCpp } from './support/fake_llamacpp.mjs';
import { startFakeOllama } from './support/fake_ollama.mjs';
import { startFakeOpenAI } from './support/fake_openai.mjs';
import { baseConfig, chat, sseEvents, startPlexus, user } from './support/plexus.mjs';
import { startTrickleProxy } from './support/trickle_proxy.mjs';

const fakes = [];
const proxies = [];
let plexus;
const backends = {
  openai: { start: () => startFakeOpenAI(), extra: {}, models: ['gpt-x'] },
  ollama: { start: () => startFakeOllama(), extra: { status_interval_s: 0 }, models: ['llama3.2', 'tooluser'] },
  anthropic: { start: () => startFakeAnthropic(), extra: { api_key: 'sk-ant-test' }, models: ['claude', 'claude-tools'] },
  llamacpp: { start: () => startFakeLlamaCpp(), extra: { status_interval_s: 0 }, models: ['qwen'] },
};

before(async () => {
  const upstreams = [];
  for (const [provider, b] of Object.entries(backends)) {
    const fake = await b.start();
    const proxy = await startTrickleProxy(fake.url);
    fakes.push(fake);
    proxies.push(proxy);
    for (const [suffix, url] of [['whole', fake.url], ['split', proxy.url]])
      upstreams.push({ name: `${provider}-${suffix}`, provider, url, ...b.extra,
                       models: b.models.map((m) => ({ id: `${provider}-${suffix}-${m}`, upstream_model: m })) });
  }
  plexus = await startPlexus(baseConfig(upstreams));
});
after(async () => {
  await plexus?.stop();
  for (const x of [...proxies, ...fakes]) await x.close();
});

// What a client observes, without per-request ids and clocks (tool call ids the router makes are
// unique per answer).
const observed = (events) => events.map((e) => {
  if (e === '[DONE]') return e;
  const c = JSON.parse(e);
  for (const choice of c.choices ?? []) for (const call of choice.delta?.tool_calls ?? []) if (call.id) call.id = '<id>';
  return JSON.stringify({ choices: c.choices, usage: c.usage, error: c.error?.code });
});

for (const [provider, b] of Object.entries(backends)) {
  for (const model of b.models) {
    test(`${provider} ${model}: random splits give the same chunks`, async () => {
      const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
      const ask = async (suffix) => observed(await sseEvents(await chat(plexus.url, {
        model: `${provider}-${suffix}-${model}`, messages: user('hi'), stream: true, stream_options: { include_usage: true }, tools,
      })));
      const whole = await ask('whole');
      assert.equal(whole.at(-1), '[DONE]');
      assert.ok(whole.length >= 4);
      for (let round = 0; round < 3; round++) assert.deepEqual(await ask('split'), whole);
    });
  }
}
