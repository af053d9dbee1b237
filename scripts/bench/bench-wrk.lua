-- wrk script for `npm run bench`: the same small JSON POST as the undici load
-- generator, and one JSON line with the result when the run ends.
wrk.method = "POST"
wrk.body = '{"hello":"kueuer","n":42}'
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"durationUs":%d,"errors":%d,"p50Us":%d,"p99Us":%d}\n',
    summary.requests - e.status, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
