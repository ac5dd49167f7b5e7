// The official OpenAI SDK, used as any application uses it, against ringrelay's
// gateway: baseURL = ringrelay + /v1, apiKey = a gateway key. Prints one JSON line of
// what the SDK returned or threw per check; test_sdks.py asserts on it.
//
//   node openai_client.mjs '<config json>'      (see common.mjs readConfig)
import OpenAI from 'openai';
import { VERSION } from 'openai/version';

import { headerOf, readConfig, recordingFetch, runChecks, startHolder } from './common.mjs';

const cfg = readConfig();
const sent = [];

// maxRetries 0 everywhere: the SDK retries 429 and 5xx by default, which would hide
// the gateway's first answer (and turn key_in_use into a wait).
function client(apiKey) {
  return new OpenAI({
    apiKey,
    baseURL: `${cfg.base_url}/v1`,
    maxRetries: 0,
    timeout: cfg.request_timeout_ms,
    fetch: recordingFetch(globalThis.fetch, sent),
  });
}

const gateway = client(cfg.key);
const messages = [{ role: 'user', content: 'Say hello through ringrelay.' }];
const mockShape = { headers: { 'x-mock-chunks': String(cfg.chunks) } };

function describeError(err) {
  return {
    name: err?.constructor?.name ?? typeof err,
    message: String(err?.message ?? err),
    is_api_error: err instanceof OpenAI.APIError,
    is_not_found: err instanceof OpenAI.NotFoundError,
    is_authentication_error: err instanceof OpenAI.AuthenticationError,
    is_rate_limit_error: err instanceof OpenAI.RateLimitError,
    status: err?.status ?? null,
    code: err?.code ?? null,
    type: err?.type ?? null,
    error: err?.error ?? null,
    x_ringrelay_error: headerOf(err?.headers, 'x-ringrelay-error'),
    request_id: err?.requestID ?? err?.request_id ?? null,
  };
}

// Runs fn, which must throw; returns the error's description.
async function expectError(fn) {
  try {
    const value = await fn();
    return { returned: value ?? null };
  } catch (err) {
    return describeError(err);
  }
}

async function chatNonStream() {
  const sentBefore = sent.length;
  const completion = await gateway.chat.completions.create({ model: cfg.model, messages }, mockShape);
  return {
    id: completion.id,
    object: completion.object,
    model: completion.model,
    content: completion.choices[0]?.message?.content ?? null,
    finish_reason: completion.choices[0]?.finish_reason ?? null,
    usage: completion.usage ?? null,
    request_id: completion._request_id ?? null,
    sent: sent.slice(sentBefore),
  };
}

async function chatStream() {
  const stream = await gateway.chat.completions.create(
    { model: cfg.model, messages, stream: true, stream_options: { include_usage: true } }, mockShape);
  let content = '';
  let chunks = 0;
  let usage = null;
  let finishReason = null;
  const models = new Set();
  const objects = new Set();
  for await (const chunk of stream) {
    chunks += 1;
    models.add(chunk.model);
    objects.add(chunk.object);
    const choice = chunk.choices[0];
    content += choice?.delta?.content ?? '';
    if (choice?.finish_reason) finishReason = choice.finish_reason;
    if (chunk.usage) usage = chunk.usage;
  }
  return { chunks, content, usage, finish_reason: finishReason, models: [...models], objects: [...objects] };
}

async function modelsList() {
  const ids = [];
  const owners = new Set();
  for await (const model of gateway.models.list()) {
    ids.push(model.id);
    owners.add(model.owned_by);
  }
  return { ids, owned_by: [...owners] };
}

async function unknownModel() {
  return expectError(() => gateway.chat.completions.create({ model: cfg.unknown_model, messages }));
}

async function invalidKey() {
  return expectError(() => client(cfg.bad_key).chat.completions.create({ model: cfg.model, messages }));
}

// A non-streamed call on sdk that the mock answers after ms: it holds its key (and
// the gateway's one upstream token) that long. Resolves to {ok, model} or {ok, error}.
function hold(sdk, ms) {
  const options = ms ? { headers: { 'x-mock-delay-ms': String(ms) } } : undefined;
  return sdk.chat.completions.create({ model: cfg.model, messages }, options)
    .then((c) => ({ ok: true, model: c.model }), (err) => ({ ok: false, error: describeError(err) }));
}

// A key with max-concurrency 1 and max-wait 0: while one slow request holds it, the
// next is refused at once with key_in_use, which the SDK must surface as a 429.
async function keyInUse() {
  const busy = client(cfg.busy_key);
  const held = await startHolder(cfg.mock_url, () => hold(busy, cfg.hold_ms));
  const refused = await expectError(() => busy.chat.completions.create({ model: cfg.model, messages }));
  return { refused, holder: await held.holder, after_release: await hold(busy, 0) };
}

// Opens a stream and reads it to its end: {head, content, chunks, error}. head is null
// if the SDK threw before the response head; error is what the SDK threw. held is
// the call holding the key or token (startHolder): head.holder_done says whether it
// had ended when the head arrived; the *_ms_after_holder_seen fields time the run.
async function readStream(sdk, held) {
  const out = { head: null, content: '', chunks: 0, error: null };
  try {
    const { data: stream, response } = await sdk.chat.completions
      .create({ model: cfg.model, messages, stream: true }, mockShape).withResponse();
    out.head = {
      status: response.status,
      content_type: response.headers.get('content-type'),
      holder_done: held.done(),
      ms_after_holder_seen: held.sinceSeen(),
    };
    for await (const chunk of stream) {
      out.chunks += 1;
      out.content += chunk.choices[0]?.delta?.content ?? '';
    }
  } catch (err) {
    out.error = describeError(err);
  }
  out.end_ms_after_holder_seen = held.sinceSeen();
  return out;
}

// A stream that must wait for its key (max-wait 1) gets its 200 and SSE head at once,
// then, once the key is free, the upstream's answer in the same body.
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

// The Responses API: a JSON answer (the SDK adds output_text), a stream of typed
// events ending in response.completed, and retrieve(id), which the gateway routes to
// the channel that made the response (and an unknown id, which the upstream answers 404).
const input = 'Say hello through ringrelay.';

async function responsesCreate() {
  const r = await gateway.responses.create({ model: cfg.model, input }, mockShape);
  return { id: r.id, object: r.object, status: r.status, model: r.model, output_text: r.output_text ?? null,
           usage: r.usage ?? null };
}

async function responsesStream() {
  const stream = await gateway.responses.create({ model: cfg.model, input, stream: true }, mockShape);
  const out = { types: [], sequence: [], text: '', created_id: null, completed: null };
  for await (const event of stream) {
    out.types.push(event.type);
    out.sequence.push(event.sequence_number);
    if (event.type === 'response.created') out.created_id = event.response.id;
    if (event.type === 'response.output_text.delta') out.text += event.delta;
    if (event.type === 'response.completed') {
      out.completed = { id: event.response.id, status: event.response.status, usage: event.response.usage };
    }
  }
  return out;
}

async function responsesRetrieve() {
  const created = await gateway.responses.create({ model: cfg.model, input }, mockShape);
  const got = await gateway.responses.retrieve(created.id);
  const missing = await expectError(() => gateway.responses.retrieve('resp_nobody_1'));
  return { created_id: created.id, id: got.id, object: got.object, status: got.status,
           output_text: got.output_text ?? null, missing };
}

await runChecks({
  sdk: 'openai',
  version: VERSION,
  timeoutMs: cfg.script_timeout_ms,
  describeError,
  checks: {
    chat: chatNonStream,
    stream: chatStream,
    models: modelsList,
    unknown_model: unknownModel,
    invalid_key: invalidKey,
    key_in_use: keyInUse,
    stream_after_wait: streamAfterWait,
    stream_wait_fails: streamWaitFails,
    responses_create: responsesCreate,
    responses_stream: responsesStream,
    responses_retrieve: responsesRetrieve,
  },
});
