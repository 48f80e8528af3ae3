// Tool calling through baton with the official `openai` npm client: the whole loop (tools -> tool_calls -> tool
// results -> final answer), plain and streamed, against tests/node/fake_upstream.mjs behind a `kind: openai` expert.
// Run through scripts/test_openai_client.sh, which starts both and sets BATON_TOOLS_PORT (baton) and
// BATON_FAKE_UPSTREAM_PORT (the fake upstream); skipped when they are not set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const PORT = process.env.BATON_TOOLS_PORT;
const UPSTREAM_PORT = process.env.BATON_FAKE_UPSTREAM_PORT;
const skip = !PORT || !UPSTREAM_PORT ? 'BATON_TOOLS_PORT / BATON_FAKE_UPSTREAM_PORT not set (see above)' : false;
const KEY = process.env.BATON_KEY ?? 'sk-baton-demo';
const MODEL = process.env.BATON_TOOLS_MODEL ?? 'tool-upstream';

const client = new OpenAI({ apiKey: KEY, baseURL: `http://127.0.0.1:${PORT}/v1`, maxRetries: 0, timeout: 30_000 });

const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'The weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
];

// What the fake upstream answers for a city.
const weather = { Paris: '18C', Rome: '24C' };

// The chat requests the fake upstream received whose first user message is `marker`.
async function upstreamRequests(marker) {
  const res = await fetch(`http://127.0.0.1:${UPSTREAM_PORT}/requests`);
  assert.equal(res.status, 200);
  const all = await res.json();
  return all.filter((r) => r.messages?.[0]?.content === marker);
}

// Checks the two calls the fake upstream makes and returns the tool messages answering them.
function toolResults(toolCalls) {
  assert.equal(toolCalls.length, 2, JSON.stringify(toolCalls));
  const cities = toolCalls.map((c) => {
    assert.equal(c.type, 'function');
    assert.equal(c.function.name, 'get_weather');
    assert.ok(c.id, 'each call has an id');
    return JSON.parse(c.function.arguments).city;
  });
  assert.deepEqual(cities, ['Paris', 'Rome']);
  return toolCalls.map((c, i) => ({ role: 'tool', tool_call_id: c.id, content: weather[cities[i]] }));
}

// What baton forwarded in the second round: the assistant's calls and the tool results, intact.
async function checkForwarded(marker, assistant, results) {
  const second = (await upstreamRequests(marker)).filter((r) => r.messages.at(-1)?.role === 'tool');
  assert.equal(second.length, 1, 'one request carried the tool results');
  const sent = second[0].messages;
  assert.equal(sent.length, 2 + results.length);
  assert.equal(sent[1].role, 'assistant');
  assert.ok('content' in sent[1] && sent[1].content === null, `content sent as null: ${JSON.stringify(sent[1])}`);
  assert.deepEqual(sent[1].tool_calls, assistant.tool_calls);
  for (let i = 0; i < results.length; ++i) {
    assert.equal(sent[2 + i].role, 'tool');
    assert.equal(sent[2 + i].tool_call_id, results[i].tool_call_id);
    assert.equal(sent[2 + i].content, results[i].content);
  }
  assert.deepEqual(second[0].tools, tools);
}

test('tool calling, plain: tools -> tool_calls -> tool results -> final answer', { skip }, async () => {
  const marker = 'What is the weather in Paris and Rome? (plain)';
  const messages = [{ role: 'user', content: marker }];
  const first = await client.chat.completions.create({ model: MODEL, messages, tools, tool_choice: 'auto' });
  const choice = first.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.role, 'assistant');
  assert.equal(choice.message.content, null, 'content is null when the answer only calls tools');
  const results = toolResults(choice.message.tool_calls);
  // The assistant message goes back as the client got it, then one tool message per call.
  messages.push(choice.message, ...results);
  const second = await client.chat.completions.create({ model: MODEL, messages, tools });
  assert.equal(second.choices[0].finish_reason, 'stop');
  assert.equal(second.choices[0].message.tool_calls, undefined);
  const text = second.choices[0].message.content;
  for (const r of results) assert.ok(text.includes(`${r.tool_call_id}=${r.content}`), text);
  // The first request reached the upstream with the tools and tool_choice.
  const [firstSent] = await upstreamRequests(marker);
  assert.deepEqual(firstSent.tools, tools);
  assert.equal(firstSent.tool_choice, 'auto');
  await checkForwarded(marker, choice.message, results);
});

test('tool calling, streamed: delta.tool_calls add up to the calls (stream helper and by hand)', { skip }, async () => {
  const marker = 'What is the weather in Paris and Rome? (streamed)';
  const messages = [{ role: 'user', content: marker }];

  // By hand, from create({stream: true}): several delta.tool_calls chunks, merged by index.
  const raw = await client.chat.completions.create({ model: MODEL, messages, tools, stream: true });
  const byIndex = [];
  let toolChunks = 0;
  let finish = null;
  for await (const chunk of raw) {
    for (const c of chunk.choices ?? []) {
      if (c.finish_reason) finish = c.finish_reason;
      for (const d of c.delta?.tool_calls ?? []) {
        toolChunks += 1;
        assert.equal(typeof d.index, 'number');
        const call = (byIndex[d.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
        if (d.id) call.id = d.id;
        if (d.function?.name) call.function.name = d.function.name;
        call.function.arguments += d.function?.arguments ?? '';
      }
    }
  }
  assert.equal(finish, 'tool_calls');
  assert.ok(toolChunks >= 4, `the calls came in several deltas (got ${toolChunks})`);
  toolResults(byIndex);

  // With the client's stream helper, which accumulates the deltas itself.
  const stream = client.chat.completions.stream({ model: MODEL, messages, tools });
  const done = [];
  stream.on('tool_calls.function.arguments.done', (e) => done.push(e));
  const final = await stream.finalChatCompletion();
  const choice = final.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.deepEqual(
    done.map((e) => [e.index, e.name, e.parsed_arguments ?? JSON.parse(e.arguments)]),
    [
      [0, 'get_weather', { city: 'Paris' }],
      [1, 'get_weather', { city: 'Rome' }],
    ],
  );
  const results = toolResults(choice.message.tool_calls);
  // The helper adds parsed_arguments to each call: send back only the protocol's fields.
  const assistant = {
    role: 'assistant',
    content: null,
    tool_calls: choice.message.tool_calls.map(({ id, type, function: f }) => ({
      id,
      type,
      function: { name: f.name, arguments: f.arguments },
    })),
  };
  messages.push(assistant, ...results);

  // The final answer, streamed.
  const last = await client.chat.completions.create({ model: MODEL, messages, tools, stream: true });
  let text = '';
  finish = null;
  for await (const chunk of last) {
    for (const c of chunk.choices ?? []) {
      text += c.delta?.content ?? '';
      assert.equal(c.delta?.tool_calls, undefined);
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(finish, 'stop');
  for (const r of results) assert.ok(text.includes(`${r.tool_call_id}=${r.content}`), text);
  await checkForwarded(marker, assistant, results);
});

test('a malformed tool message is a 400 naming the field', { skip }, async () => {
  await assert.rejects(
    () =>
      client.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: 'x' }, { role: 'tool', tool_call_id: 7, content: 'y' }],
      }),
    (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, `got ${err?.constructor?.name}: ${err?.message}`);
      assert.match(err.message, /messages\[1\]\.tool_call_id/);
      return true;
    },
  );
});
