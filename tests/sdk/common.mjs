// Shared by the SDK client scripts: the config they are given, a watchdog that bounds
// the whole run, a recorder of what the SDK put on the wire, and the one JSON line
// they print. The scripts only observe; tests/integration/test_sdks.py asserts.

// argv[2] is a JSON object from the Python test: base_url; the gateway keys key,
// busy_key (max-concurrency 1, max-wait 0), waiter_key (max-wait 1) and bad_key (none);
// model (and unknown_model for openai, anthropic_model for the AI SDK); chunks (x-mock-chunks); mock_url (the
// upstream, for its request counter); how long the holders of the waiting checks hold
// hold_ms, short_hold_ms, long_hold_ms; and the bounds request_timeout_ms (each SDK
// call) and script_timeout_ms (the whole run).
export function readConfig() {
  if (process.argv.length < 3) {
    process.stderr.write(`usage: node ${process.argv[1]} '<config json>'\n`);
    process.exit(2);
  }
  return JSON.parse(process.argv[2]);
}

// Prints result as one JSON line and exits once stdout has taken it: a pipe that is
// still draining must not lose the result.
function finish(result, code) {
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(code));
}

// Kills the run after ms with a result that says so: no SDK call may hang the test.
export function startWatchdog(ms, sdk) {
  const timer = setTimeout(() => finish({ sdk, fatal: `script timed out after ${ms} ms` }, 3), ms);
  return () => clearTimeout(timer);
}

// Runs each named check in order and finishes with {sdk, version, node, results}.
// A check that throws where it should not records {unexpected: ...} instead of
// stopping the others.
export async function runChecks({ sdk, version, timeoutMs, checks, describeError }) {
  const stopWatchdog = startWatchdog(timeoutMs, sdk);
  const results = {};
  for (const [name, check] of Object.entries(checks)) {
    try {
      results[name] = await check();
    } catch (err) {
      results[name] = { unexpected: describeError(err) };
    }
  }
  stopWatchdog();
  finish({ sdk, version, node: process.version, results }, 0);
}

// One header of an SDK error's headers: a Headers object in the pinned SDKs, a plain
// object of lower-case names in their node-fetch based predecessors.
export function headerOf(headers, name) {
  if (!headers) return null;
  if (typeof headers.get === 'function') return headers.get(name);
  return headers[name.toLowerCase()] ?? null;
}

// Headers whose values a check may compare with what reached the upstream; no
// credential is among them.
const RECORDED_VALUES = ['anthropic-version', 'x-stainless-lang', 'x-stainless-package-version'];

// Wraps the fetch the SDK would use anyway (globalThis.fetch is the pinned SDKs'
// default) so a check can see which headers the SDK sent: every name, and the
// values of RECORDED_VALUES only. The request itself passes through untouched.
export function recordingFetch(sdkFetch, sent) {
  return (url, init) => {
    const headers = new Headers(init?.headers ?? {});
    const names = [...headers.keys()].sort();
    const values = {};
    for (const name of RECORDED_VALUES) if (headers.has(name)) values[name] = headers.get(name);
    sent.push({ url: String(url), method: init?.method ?? 'GET', header_names: names,
                header_values: values });
    return sdkFetch(url, init);
  };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// How many requests the mock upstream has received (GET /__mock/stats).
async function upstreamRequests(mockUrl) {
  const response = await fetch(`${mockUrl}/__mock/stats`);
  if (!response.ok) throw new Error(`/__mock/stats answered ${response.status}`);
  return (await response.json()).requests;
}

// Starts call() (a request the mock holds with x-mock-delay-ms) and resolves once
// that request has reached the mock: from then on the gateway holds its key slot and
// upstream token, so the next call finds them busy without guessing at timing.
// Resolves to {holder: call()'s promise, done(), sinceSeen(), doneAfter()}: whether
// the call has ended, ms since it reached the mock, and ms from then to its end.
export async function startHolder(mockUrl, call, timeoutMs = 5000) {
  const before = await upstreamRequests(mockUrl);
  let seenAt = null;
  let doneAt = null;
  const holder = call().finally(() => { doneAt = Date.now(); });
  const deadline = Date.now() + timeoutMs;
  while ((await upstreamRequests(mockUrl)) <= before) {
    if (Date.now() > deadline) throw new Error(`the holder did not reach the upstream in ${timeoutMs} ms`);
    await sleep(5);
  }
  seenAt = Date.now();
  return {
    holder,
    done: () => doneAt !== null,
    sinceSeen: () => Date.now() - seenAt,
    doneAfter: () => (doneAt === null ? null : doneAt - seenAt),
  };
}
