// A tiny OpenAI-compatible upstream for the tool-calling test (tests/node/tool_calls.test.mjs), plain or streamed.
//
//   node tests/node/fake_upstream.mjs     prints "fake_upstream listening on http://127.0.0.1:PORT" (a port the kernel
//                                         picks) and serves until it gets SIGTERM or SIGINT.
//
// POST /v1/chat/completions answers
//   - a final text answer (quoting every tool result) when the last message is a `tool` message;
//   - else, when `tools` are given, two parallel calls of the first tool: {"city": "Paris"} and {"city": "Rome"}
//     (finish_reason "tool_calls"); streamed as several deltas per call, with the arguments in pieces;
//   - else "hello".
// GET /requests returns the bodies of every chat request received so far, oldest first, so that a test can check
// what baton forwarded.
import http from 'node:http';

const requests = [];

function usage() {
  return { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
}

// What to answer to `body`: { content, tool_calls } (tool_calls: null when none).
function answer(body) {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const last = messages.at(-1) ?? {};
  if (last.role === 'tool') {
    const results = messages.filter((m) => m.role === 'tool').map((m) => `${m.tool_call_id}=${m.content}`);
    return { content: `Final answer from tool results: ${results.join(', ')}`, tool_calls: null };
  }
  if (Array.isArray(body.tools) && body.tools.length > 0) {
    const name = body.tools[0]?.function?.name ?? 'tool';
    const calls = ['Paris', 'Rome'].map((city, i) => ({
      id: `call_${i + 1}_${city.toLowerCase()}`,
      type: 'function',
      function: { name, arguments: JSON.stringify({ city }) },
    }));
    return { content: null, tool_calls: calls };
  }
  return { content: 'hello', tool_calls: null };
}

function chunk(model, delta, finishReason = null, extra = {}) {
  return {
    id: 'chatcmpl-fake',
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, delta, finish_reason: finishReason }],
    ...extra,
  };
}

function stream(res, body, a) {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'close' });
  const send = (obj) => res.write(`data: ${JSON.stringify(obj)}\n\n`);
  const model = body.model ?? 'fake';
  send(chunk(model, { role: 'assistant', content: a.tool_calls ? null : '' }));
  if (a.tool_calls) {
    // As OpenAI streams them: one call after the other, each opening with its id and name, then its arguments in
    // three pieces.
    a.tool_calls.forEach((c, index) => {
      const opening = { index, id: c.id, type: 'function', function: { name: c.function.name, arguments: '' } };
      send(chunk(model, { tool_calls: [opening] }));
      const args = c.function.arguments;
      const cuts = [0, Math.floor(args.length / 3), Math.floor((2 * args.length) / 3), args.length];
      for (let p = 0; p < 3; ++p) {
        send(chunk(model, { tool_calls: [{ index, function: { arguments: args.slice(cuts[p], cuts[p + 1]) } }] }));
      }
    });
    send(chunk(model, {}, 'tool_calls'));
  } else {
    for (const word of a.content.split(/(?<= )/)) send(chunk(model, { content: word }));
    send(chunk(model, {}, 'stop'));
  }
  if (body.stream_options?.include_usage) send({ ...chunk(model, {}), choices: [], usage: usage() });
  res.end('data: [DONE]\n\n');
}

function plain(res, body, a) {
  const message = { role: 'assistant', content: a.content };
  if (a.tool_calls) message.tool_calls = a.tool_calls;
  const out = {
    id: 'chatcmpl-fake',
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: body.model ?? 'fake',
    choices: [{ index: 0, message, finish_reason: a.tool_calls ? 'tool_calls' : 'stop' }],
    usage: usage(),
  };
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(out));
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/requests') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(requests));
    return;
  }
  if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }));
    return;
  }
  let data = '';
  req.setEncoding('utf8');
  req.on('data', (d) => (data += d));
  req.on('end', () => {
    let body;
    try {
      body = JSON.parse(data);
    } catch {
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'body is not JSON' } }));
      return;
    }
    requests.push(body);
    const a = answer(body);
    if (body.stream) stream(res, body, a);
    else plain(res, body, a);
  });
});

server.listen(0, '127.0.0.1', () => {
  console.log(`fake_upstream listening on http://127.0.0.1:${server.address().port}`);
});
// Kept-alive connections (baton pools them) would hold close() open: end them too.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
