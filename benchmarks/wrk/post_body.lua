-- wrk script: POST one fixed body, read once from a file, to every request.
--   WRK_BODY_FILE=body.json [WRK_CONTENT_TYPE=application/json] \
--   [WRK_HEADER_LENGTH=N] wrk -t2 -c8 -d10s -s post_body.lua \
--       http://127.0.0.1:18000/v2/models/add_sub/infer
-- WRK_HEADER_LENGTH sets Inference-Header-Content-Length (KServe v2 binary extension).
-- At the end it prints one line "WRK_RESULT {json}" for benchmarks/server_load.py.

local f = assert(io.open(os.getenv("WRK_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("WRK_CONTENT_TYPE") or "application/json"
local header_length = os.getenv("WRK_HEADER_LENGTH")
if header_length and header_length ~= "" then
  wrk.headers["Inference-Header-Content-Length"] = header_length
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"mean_us": %.1f, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
