-- wrk script for the soak (test_soak.py): every request is a POST /v1/chat/completions
-- with a key and a fault drawn at random, and each wrk thread stops itself once it has
-- seen its share of the responses and prints "SOAK-THREAD-DONE", so a run is bounded by
-- count (wrk's -d bounds it in time). The environment gives what to send:
--   SOAK_KEYS       comma-separated key secrets (the gateway's keys)
--   SOAK_REQUESTS   responses to wait for, over all threads
--   SOAK_THREADS    wrk's -t (to split SOAK_REQUESTS)
--   SOAK_SEED       seed of the draws (each thread adds its index)
-- done() prints one "SOAK {json}" line: per-thread outcome counts merged, keyed by
-- "status code" (code = the X-Ringrelay-Error header, "-" for an upstream's own answer),
-- plus wrk's socket error counts and the faults sent.

local keys = {}
for secret in string.gmatch(os.getenv("SOAK_KEYS") or "", "[^,]+") do
  keys[#keys + 1] = secret
end
local total = tonumber(os.getenv("SOAK_REQUESTS") or "1000")
local thread_count = tonumber(os.getenv("SOAK_THREADS") or "1")
local seed = tonumber(os.getenv("SOAK_SEED") or "1")

local plain_body = '{"model":"gpt-test","messages":[{"role":"user","content":"soak"}]}'
local stream_body = '{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"soak"}]}'
local unknown_model_body = '{"model":"no-such-model","messages":[]}'

-- The fault mix, as cumulative probabilities (most requests are ordinary: the soak
-- must keep the paths that hold slots and tokens busy, not only the error answers).
local mix = {
  {0.600, "plain"},
  {0.740, "stream"},           -- 1-8 events, 0-3 ms apart
  {0.840, "slow"},             -- 1-40 ms before the head
  {0.880, "status"},           -- the upstream answers 429/500/502/503/400
  {0.900, "reset"},            -- the upstream closes with RST after reading the request
  {0.902, "hang"},             -- the upstream never answers: the channel's 1 s timeout
  {0.912, "close_mid_stream"}, -- the upstream cuts its body halfway (stream or not)
  {0.922, "bad_key"},          -- an unknown key: 401 invalid_api_key
  {0.930, "unknown_model"},    -- 404 model_not_found
  {0.950, "bad_body"},         -- not JSON: 400 invalid_request
  {1.000, "plain"},
}

local statuses_of_fault = {"429", "500", "502", "503", "400"}

-- Globals read by done() through thread:get().
outcomes = {}
faults = {}
seen = 0
budget = 0

local threads = {}
local next_index = 0

function setup(thread)
  next_index = next_index + 1
  thread:set("index", next_index)
  threads[#threads + 1] = thread
end

function init(args)
  math.randomseed(seed * 1000 + index)
  budget = math.floor(total / thread_count)
  if index <= total % thread_count then budget = budget + 1 end
  if #keys == 0 then error("SOAK_KEYS is empty") end
end

local function draw_fault()
  local r = math.random()
  for _, entry in ipairs(mix) do
    if r < entry[1] then return entry[2] end
  end
  return "plain"
end

function request()
  local fault = draw_fault()
  faults[fault] = (faults[fault] or 0) + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. keys[math.random(#keys)],
  }
  local body = plain_body
  if fault == "stream" then
    body = stream_body
    headers["x-mock-chunks"] = tostring(math.random(1, 8))
    headers["x-mock-chunk-delay-ms"] = tostring(math.random(0, 3))
  elseif fault == "slow" then
    headers["x-mock-delay-ms"] = tostring(math.random(1, 40))
  elseif fault == "status" then
    headers["x-mock-status"] = statuses_of_fault[math.random(#statuses_of_fault)]
  elseif fault == "reset" then
    headers["x-mock-behavior"] = "reset"
  elseif fault == "hang" then
    headers["x-mock-behavior"] = "hang"
  elseif fault == "close_mid_stream" then
    headers["x-mock-behavior"] = "close-mid-stream"
    if math.random() < 0.5 then body = stream_body end
  elseif fault == "bad_key" then
    headers["Authorization"] = "Bearer rr-soakunknownkey0000000000000000000000000"
  elseif fault == "unknown_model" then
    body = unknown_model_body
  elseif fault == "bad_body" then
    body = '{"model": "gpt-test", '
  end
  return wrk.format("POST", "/v1/chat/completions", headers, body)
end

function response(status, headers, body)
  local code = headers["X-Ringrelay-Error"] or headers["x-ringrelay-error"] or "-"
  local k = status .. " " .. code
  outcomes[k] = (outcomes[k] or 0) + 1
  seen = seen + 1
  if seen == budget then
    -- wrk's main thread sleeps through -d whatever its threads do: say so, and the
    -- runner (test_soak.py) ends wrk with SIGINT once every thread has said it.
    io.write("SOAK-THREAD-DONE\n")
    io.stdout:flush()
    wrk.thread:stop()
  end
end

local function json_object(t)
  local parts = {}
  for k, v in pairs(t) do
    parts[#parts + 1] = string.format("%q:%d", k, v)
  end
  table.sort(parts)
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local merged_outcomes, merged_faults, responses = {}, {}, 0
  for _, thread in ipairs(threads) do
    for k, v in pairs(thread:get("outcomes")) do merged_outcomes[k] = (merged_outcomes[k] or 0) + v end
    for k, v in pairs(thread:get("faults")) do merged_faults[k] = (merged_faults[k] or 0) + v end
    responses = responses + thread:get("seen")
  end
  local e = summary.errors
  io.write(string.format(
    'SOAK {"responses":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"outcomes":%s,"faults":%s}\n',
    responses, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout,
    json_object(merged_outcomes), json_object(merged_faults)))
end
