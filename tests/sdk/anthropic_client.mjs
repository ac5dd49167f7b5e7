// The official Anthropic SDK, used as any application uses it, against ringrelay's
// gateway: baseURL = ringrelay (the SDK adds /v1/messages), apiKey = a gateway key,
// which the SDK sends as x-api-key. Prints one JSON line of what the SDK returned or
// threw per check; test_sdks.py asserts on it.
//
//   node anthropic_client.mjs '<config json>'   (see common.mjs readConfig)
import Anthropic from '@anthropic-ai/sdk';
import { VERSION } from '@anthropic-ai/sdk/version';

import { headerOf, readConfig, recordingFetch, runChecks, startHolder } from './common.mjs';

const cfg = readConfig();
const sent = [];

// maxRetries 0: the SDK retries 429 and 5xx by default, hiding the gateway's answer.
function client(apiKey) {
  return new Anthropic({
    apiKey,
    baseURL: cfg.base_url,
    maxRetries: 0,
    timeout: cfg.request_timeout_ms,
    fetch: recordingFetch(globalThis.fetch, sent),
  });
}

const gateway = client(cfg.key);
const request = {
  model: cfg.model,
  max_tokens: 64,
  messages: [{ role: 'user', content: 'Say hello through ringrelay.' }],
};
const mockShape = { headers: { 'x-mock-chunks': String(cfg.chunks) } };

function describeError(err) {
  return {
    name: err?.constructor?.name ?? typeof err,
    message: String(err?.message ?? err),
    is_api_error: err instanceof Anthropic.APIError,
    is_authentication_error: err instanceof Anthropic.AuthenticationError,
    status: err?.status ?? null,
    error: err?.error ?? null,
    x_ringrelay_error: headerOf(err?.headers, 'x-ringrelay-error'),
  };
}

function textOf(message) {
  return message.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
}

async function createNonStream() {
  const sentBefore = sent.length;
  const { data: message, response } = await gateway.messages.create(request, mockShape).withResponse();
  return {
    id: message.id,
    type: message.type,
    role: message.role,
    model: message.model,
    text: textOf(message),
    stop_reason: message.stop_reason,
    usage: message.usage,
    x_request_id: response.headers.get('x-request-id'),
    sent: sent.slice(sentBefore),
  };
}

// stream: true on messages.create: the raw event stream, as the SDK parses it.
async function createStream() {
  const stream = await gateway.messages.create({ ...request, stream: true }, mockShape);
  let text = '';
  let usage = null;
  let stopReason = null;
  let model = null;
  const types = [];
  for await (const event of stream) {
    if (types[types.length - 1] !== event.type) types.push(event.type);
    if (event.type === 'message_start') model = event.message.model;
    if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
    if (event.type === 'message_delta') {
      usage = event.usage;
      stopReason = event.delta.stop_reason;
    }
  }
  return { text, usage, stop_reason: stopReason, model, event_types: types };
}

// messages.stream: the SDK's helper that assembles the final message from the events.
async function streamHelper() {
  const stream = gateway.messages.stream(request, mockShape);
  let text = '';
  let textEvents = 0;
  stream.on('text', (delta) => {
    text += delta;
    textEvents += 1;
  });
  const final = await stream.finalMessage();
  return {
    text,
    text_events: textEvents,
    final_text: textOf(final),
    model: final.model,
    stop_reason: final.stop_reason,
    usage: final.usage,
  };
}

// A non-streamed call on sdk that the mock answers after ms: it holds its key (and
// the gateway's one upstream token) that long. Resolves to {ok, model} or {ok, error}.
function hold(sdk, ms) {
  return sdk.messages.create(request, { headers: { 'x-mock-delay-ms': String(ms) } })
    .then((m) => ({ ok: true, model: m.model }), (err) => ({ ok: false, error: describeError(err) }));
}

// Opens a stream and reads it to its end: {head, text, event_types, error}. head is null
// if the SDK threw before the response head; error is what the SDK threw. held is
// the call holding the key or token (startHolder): head.holder_done says whether it
// had ended when the head arrived; the *_ms_after_holder_seen fields time the run.
async function readStream(sdk, held) {
  const out = { head: null, text: '', event_types: [], error: null };
  try {
    const { data: stream, response } = await sdk.messages
      .create({ ...request, stream: true }, mockShape).withResponse();
    out.head = {
      status: response.status,
      content_type: response.headers.get('content-type'),
      holder_done: held.done(),
      ms_after_holder_seen: held.sinceSeen(),
    };
    for await (const event of stream) {
      if (out.event_types[out.event_types.length - 1] !== event.type) out.event_types.push(event.type);
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
        out.text += event.delta.text;
      }
    }
  } catch (err) {
    out.error = describeError(err);
  }
  out.end_ms_after_holder_seen = held.sinceSeen();
  return out;
}

// A stream that must wait for its key (max-wait 1) gets its 200 and SSE head at once,
// then, once the key is free, the upstream's events in the same body.
async function streamAfterWait() {
  const waiter = client(cfg.waiter_key);
  const held = await startHolder(cfg.mock_url, () => hold(waiter, cfg.short_hold_ms));
  const stream = await readStream(waiter, held);
  return { ...stream, holder_done_at_end: held.done(), holder: await held.holder,
           holder_done_ms_after_seen: held.doneAfter() };
}

// A stream that waits for the gateway's one upstream token past the queue timeout:
// 200 and the SSE head first, then the gateway's error event, which the SDK throws.
async function streamWaitFails() {
  const held = await startHolder(cfg.mock_url, () => hold(client(cfg.busy_key), cfg.long_hold_ms));
  const stream = await readStream(gateway, held);
  return { ...stream, holder_done_at_end: held.done(), holder: await held.holder,
           holder_done_ms_after_seen: held.doneAfter() };
}

// What a coding agent sends: extended thinking and a tool, streamed through the SDK's
// helper, which must reassemble every block (the tool's input from its JSON pieces).
async function agentStream() {
  const tool = {
    name: 'get_weather',
    description: 'The weather of a city',
    input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  };
  const stream = gateway.messages.stream({
    ...request,
    max_tokens: 2048,
    thinking: { type: 'enabled', budget_tokens: 1024 },
    tools: [tool],
  }, mockShape);
  let thinking = '';
  stream.on('thinking', (delta) => { thinking += delta; });
  const final = await stream.finalMessage();
  const toolUse = final.content.find((b) => b.type === 'tool_use');
  return {
    block_types: final.content.map((b) => b.type),
    thinking,
    signature: final.content.find((b) => b.type === 'thinking')?.signature ?? null,
    text: textOf(final),
    tool_name: toolUse?.name ?? null,
    tool_input: toolUse?.input ?? null,
    stop_reason: final.stop_reason,
    usage: final.usage,
  };
}

// messages.countTokens, as Claude Code calls it before its requests.
async function countTokens() {
  const result = await gateway.messages.countTokens({ model: cfg.model, messages: request.messages });
  return { input_tokens: result.input_tokens };
}

async function invalidKey() {
  try {
    const message = await client(cfg.bad_key).messages.create(request);
    return { returned: message };
  } catch (err) {
    return describeError(err);
  }
}

await runChecks({
  sdk: 'anthropic',
  version: VERSION,
  timeoutMs: cfg.script_timeout_ms,
  describeError,
  checks: {
    create: createNonStream,
    create_stream: createStream,
    stream_helper: streamHelper,
    agent_stream: agentStream,
    count_tokens: countTokens,
    invalid_key: invalidKey,
    stream_after_wait: streamAfterWait,
    stream_wait_fails: streamWaitFails,
  },
});
