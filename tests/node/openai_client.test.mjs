// The official `openai` npm client against a running `baton serve --config examples/replay.yaml`.
// Run through scripts/test_openai_client.sh, which starts the server and sets BATON_PORT; by hand:
//   BATON_PORT=8080 node --test tests/node/
// The replay experts answer only prompts recorded in data/routerbench-train, so the prompt is read from there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import OpenAI from 'openai';

const PORT = process.env.BATON_PORT;
if (!PORT) throw new Error('BATON_PORT is not set (run scripts/test_openai_client.sh)');
const BASE_URL = `http://127.0.0.1:${PORT}/v1`;
const KEY = process.env.BATON_KEY ?? 'sk-baton-demo';

const here = path.dirname(fileURLToPath(import.meta.url));
const queriesPath = process.env.BATON_QUERIES ?? path.join(here, '..', '..', 'data', 'routerbench-train', 'queries.jsonl');
const queries = readFileSync(queriesPath, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
// A short recorded prompt (every RouterBench model answered it); else the first one.
const query = queries.find((q) => q.id.startsWith('mbpp.')) ?? queries[0];
const messages = [{ role: 'user', content: query.text }];

const client = new OpenAI({ apiKey: KEY, baseURL: BASE_URL, maxRetries: 0, timeout: 30_000 });

test('chat.completions.create, routed (model "baton")', async () => {
  const completion = await client.chat.completions.create({ model: 'baton', messages });
  assert.equal(completion.object, 'chat.completion');
  assert.ok(completion.id, 'id present');
  assert.ok(Array.isArray(completion.choices) && completion.choices.length === 1);
  const choice = completion.choices[0];
  assert.equal(choice.message.role, 'assistant');
  assert.equal(typeof choice.message.content, 'string');
  assert.ok(choice.message.content.length > 0, 'content non-empty');
  assert.ok(choice.finish_reason, 'finish_reason present');
  assert.ok(completion.usage, 'usage present');
  assert.ok(completion.usage.prompt_tokens > 0);
  assert.ok(completion.usage.completion_tokens > 0);
  assert.equal(completion.usage.total_tokens, completion.usage.prompt_tokens + completion.usage.completion_tokens);
  assert.ok(completion.model && completion.model !== '', 'model names the expert that answered');
});

test('chat.completions.create, pass-through to an expert by name', async () => {
  const completion = await client.chat.completions.create({ model: 'gpt-4-1106-preview', messages });
  assert.ok(completion.choices[0].message.content.length > 0);
  assert.ok(completion.usage);
});

test('chat.completions.create with stream: true', async () => {
  const stream = await client.chat.completions.create({ model: 'baton', messages, stream: true });
  let content = '';
  let chunks = 0;
  let finish = null;
  for await (const chunk of stream) {
    chunks += 1;
    assert.equal(chunk.object, 'chat.completion.chunk');
    for (const choice of chunk.choices ?? []) {
      content += choice.delta?.content ?? '';
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  assert.ok(chunks > 1, `several chunks (got ${chunks})`);
  assert.ok(content.length > 0, 'streamed chunks concatenate to non-empty content');
  assert.ok(finish, 'a chunk carries finish_reason');
  // The same answer as the non-streamed call to the same expert is not guaranteed (routing may differ), but the
  // stream must end with the SSE terminator. The client swallows [DONE], so check the wire format directly.
  const res = await fetch(`${BASE_URL}/chat/completions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'baton', messages, stream: true }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const text = await res.text();
  const events = text.split('\n\n').map((e) => e.trim()).filter(Boolean);
  assert.ok(events.length > 2);
  assert.equal(events.at(-1), 'data: [DONE]', 'the stream ends with data: [DONE]');
});

test('a wrong key gets 401 AuthenticationError', async () => {
  const bad = new OpenAI({ apiKey: 'sk-wrong-key', baseURL: BASE_URL, maxRetries: 0 });
  await assert.rejects(
    () => bad.chat.completions.create({ model: 'baton', messages }),
    (err) => {
      assert.ok(err instanceof OpenAI.AuthenticationError, `got ${err?.constructor?.name}: ${err?.message}`);
      assert.equal(err.status, 401);
      return true;
    },
  );
});

test('models.list() lists "baton" and the experts', async () => {
  const ids = [];
  for await (const model of client.models.list()) ids.push(model.id);
  assert.ok(ids.includes('baton'), `ids: ${ids.join(', ')}`);
  assert.ok(ids.includes('gpt-4-1106-preview'), `ids: ${ids.join(', ')}`);
});
