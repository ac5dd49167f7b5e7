-- wrk script for the side-by-side bench: every request is the same OpenAI-style
-- POST /v1/chat/completions with the ~200-byte body in chat-body.json (beside this file).
-- BENCH_API_KEY, when set, is sent as "Authorization: Bearer <key>" (gateway mode).
-- done() prints one machine-readable line the runner parses, so nothing depends on the
-- rounding of wrk's human-readable latency table.

local function script_dir()
  local source = debug.getinfo(1, "S").source
  return source:match("^@(.*/)") or "./"
end

local function read_body()
  local f = assert(io.open(script_dir() .. "chat-body.json", "rb"))
  local body = f:read("*a")
  f:close()
  return body
end

wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.body = read_body()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"

local key = os.getenv("BENCH_API_KEY")
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d p50_us=%d p90_us=%d p99_us=%d " ..
    "mean_us=%.1f max_us=%d err_connect=%d err_read=%d err_write=%d " ..
    "err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
