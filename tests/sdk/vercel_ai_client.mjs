// The Vercel AI SDK (`ai`, with its providers `@ai-sdk/openai` and `@ai-sdk/anthropic`),
// used as any application uses it, against ringrelay's gateway: each provider's baseURL
// = ringrelay + /v1, apiKey = a gateway key. generateText and streamText on three
// models: openai(model) (the Responses API, /v1/responses), openai.chat(model)
// (/v1/chat/completions) and anthropic(model) (/v1/messages). Prints one JSON line of
// what the SDK returned or threw per check; test_sdks.py asserts on it.
//
//   node vercel_ai_client.mjs '<config json>'   (see common.mjs readConfig)
import { readFileSync } from 'node:fs';

import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { APICallError, generateText, streamText } from 'ai';

import { readConfig, recordingFetch, runChecks } from './common.mjs';

const cfg = readConfig();
const sent = [];

// `ai` exports no version constant; its package.json says which one ran.
const VERSION = JSON.parse(readFileSync(new URL('./node_modules/ai/package.json', import.meta.url))).version;

function providers(apiKey) {
  const settings = { apiKey, baseURL: `${cfg.base_url}/v1`, fetch: recordingFetch(globalThis.fetch, sent) };
  return { openai: createOpenAI(settings), anthropic: createAnthropic(settings) };
}

const gateway = providers(cfg.key);
const models = {
  responses: () => gateway.openai(cfg.model),
  chat: () => gateway.openai.chat(cfg.model),
  anthropic: () => gateway.anthropic(cfg.anthropic_model),
};

// maxRetries 0: the SDK retries 429 and 5xx by default, hiding the gateway's answer.
// abortSignal bounds each call (the SDK has no timeout option of its own).
function callOptions(model) {
  return {
    model,
    prompt: 'Say hello through ringrelay.',
    maxRetries: 0,
    headers: { 'x-mock-chunks': String(cfg.chunks) },
    abortSignal: AbortSignal.timeout(cfg.request_timeout_ms),
  };
}

function describeError(err) {
  return {
    name: err?.constructor?.name ?? typeof err,
    message: String(err?.message ?? err),
    is_api_call_error: APICallError.isInstance(err),
    status: err?.statusCode ?? null,
    url: err?.url ?? null,
    x_ringrelay_error: err?.responseHeaders?.['x-ringrelay-error'] ?? null,
    response_body: err?.responseBody ?? null,
  };
}

// What the mock upstream received last (GET /__mock/last): its path and how big the
// body was, from which the mock derives the prompt tokens it reports. Nothing else is
// kept: the headers carry the channel's credential.
async function upstreamLast() {
  const response = await fetch(`${cfg.mock_url}/__mock/last`);
  if (!response.ok) throw new Error(`/__mock/last answered ${response.status}`);
  const last = await response.json();
  return { path: last.path, body_bytes: Buffer.byteLength(last.body ?? '') };
}

// The request the SDK sent, without its headers' values: url and method.
function sentSince(before) {
  return sent.slice(before).map((s) => ({ url: s.url, method: s.method }));
}

async function generate(model) {
  const before = sent.length;
  const r = await generateText(callOptions(model()));
  return {
    text: r.text,
    finish_reason: r.finishReason,
    usage: { input: r.usage.inputTokens ?? null, output: r.usage.outputTokens ?? null,
             total: r.usage.totalTokens ?? null },
    model_id: r.response.modelId ?? null,
    request_id: r.response.headers?.['x-request-id'] ?? null,
    sent: sentSince(before),
    upstream: await upstreamLast(),
  };
}

// streamText as an application reads it: the text pieces in the order they arrive,
// then the usage and finish reason the SDK resolves once the stream has ended.
async function stream(model) {
  const before = sent.length;
  const errors = [];
  const r = streamText({ ...callOptions(model()), onError: ({ error }) => errors.push(describeError(error)) });
  const pieces = [];
  for await (const piece of r.textStream) pieces.push(piece);
  const usage = await r.usage;
  const response = await r.response;
  return {
    pieces,
    text: await r.text,
    finish_reason: await r.finishReason,
    usage: { input: usage.inputTokens ?? null, output: usage.outputTokens ?? null,
             total: usage.totalTokens ?? null },
    model_id: response.modelId ?? null,
    request_id: response.headers?.['x-request-id'] ?? null,
    errors,
    sent: sentSince(before),
    upstream: await upstreamLast(),
  };
}

// A key the gateway does not know: generateText throws the provider's APICallError
// with the gateway's 401; streamText reports the same error to onError.
async function invalidKey(pick) {
  const bad = providers(cfg.bad_key);
  const model = pick(bad);
  const out = {};
  try {
    const r = await generateText(callOptions(model));
    out.generate = { returned: r.text };
  } catch (err) {
    out.generate = describeError(err);
  }
  const errors = [];
  const r = streamText({ ...callOptions(model), onError: ({ error }) => errors.push(describeError(error)) });
  const pieces = [];
  for await (const piece of r.textStream) pieces.push(piece);
  out.stream = { pieces, errors };
  return out;
}

await runChecks({
  sdk: 'ai',
  version: VERSION,
  timeoutMs: cfg.script_timeout_ms,
  describeError,
  checks: {
    responses_generate: () => generate(models.responses),
    responses_stream: () => stream(models.responses),
    chat_generate: () => generate(models.chat),
    chat_stream: () => stream(models.chat),
    anthropic_generate: () => generate(models.anthropic),
    anthropic_stream: () => stream(models.anthropic),
    responses_invalid_key: () => invalidKey((p) => p.openai(cfg.model)),
    chat_invalid_key: () => invalidKey((p) => p.openai.chat(cfg.model)),
    anthropic_invalid_key: () => invalidKey((p) => p.anthropic(cfg.anthropic_model)),
  },
});
