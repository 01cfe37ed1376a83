-- wrk script for the BleepStore benchmark (driven by bench/wrk.py).
--
-- Usage: wrk -t<T> ... -s bench/wrk_script.lua URL -- <paths-file> <METHOD> <body-bytes> <T>
--
-- <paths-file> holds one presigned "path?query" per line. Each wrk thread takes
-- its own slice of the lines (line i goes to thread ((i-1) % threads) + 1), so
-- threads never send the same line; within a thread the lines are used in
-- order and, when they run out, from the start again (counted as a "wrap").
-- Every request sends <METHOD>; with <body-bytes> > 0 it carries a body of that
-- size (wrk.format adds Content-Length; a presigned PUT signs only Host).
-- Each thread counts non-2xx answers and keeps the first one (status and body).
-- done() prints one line "BENCH_JSON {...}" with the totals, the per-thread
-- counts and the latency distribution in microseconds.

local threads = {}
local nthreads = 0

function setup(thread)
   nthreads = nthreads + 1
   thread:set("id", nthreads)
   table.insert(threads, thread)
end

function init(args)
   local path_file, m, size = args[1], args[2], tonumber(args[3] or "0")
   method = m or "GET"
   local nth = tonumber(args[4] or "1")
   paths = {}
   local i = 0
   for line in io.lines(path_file) do
      if (i % nth) == (id - 1) and line ~= "" then
         paths[#paths + 1] = line
      end
      i = i + 1
   end
   if #paths == 0 then
      error("thread " .. id .. ": no request lines for this thread in " .. path_file)
   end
   body = nil
   if size > 0 then
      local pattern = {}
      for j = 1, 256 do pattern[j] = string.char((j * 131 + id * 7) % 256) end
      local block = table.concat(pattern)
      body = string.rep(block, math.floor(size / 256)) .. string.sub(block, 1, size % 256)
   elseif method == "PUT" then
      body = ""
   end
   idx = 0
   requests = 0
   responses = 0
   non2xx = 0
   wraps = 0
   statuses = ""
   first_error = ""
end

function request()
   idx = idx + 1
   if idx > #paths then
      idx = 1
      wraps = wraps + 1
   end
   requests = requests + 1
   return wrk.format(method, paths[idx], nil, body)
end

function response(status, headers, resp_body)
   responses = responses + 1
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      if first_error == "" then
         -- response() does not say which request it answers; with several
         -- connections per thread the last one sent may be another.
         first_error = "HTTP " .. status .. " for a " .. method .. " (last request sent by this thread: "
            .. method .. " " .. paths[idx] .. ")\n"
            .. string.sub(resp_body or "", 1, 600)
      end
   end
end

local function json_string(s)
   return '"' .. string.gsub(s, '[%c"\\]', function(c)
      return string.format("\\u%04x", string.byte(c))
   end) .. '"'
end

function done(summary, latency, requests_stats)
   local per_thread = {}
   local tot = { requests = 0, responses = 0, non2xx = 0, wraps = 0, lines = 0 }
   local first = ""
   for _, t in ipairs(threads) do
      local r = {
         requests = t:get("requests") or 0, responses = t:get("responses") or 0,
         non2xx = t:get("non2xx") or 0, wraps = t:get("wraps") or 0,
      }
      for k, v in pairs(r) do tot[k] = tot[k] + v end
      local fe = t:get("first_error") or ""
      if first == "" and fe ~= "" then first = fe end
      per_thread[#per_thread + 1] = string.format(
         '{"requests":%d,"responses":%d,"non2xx":%d,"wraps":%d}',
         r.requests, r.responses, r.non2xx, r.wraps)
   end
   local e = summary.errors
   local pct = {}
   for _, p in ipairs({ 50, 90, 99, 99.9 }) do
      pct[#pct + 1] = string.format('"%s":%d', tostring(p), latency:percentile(p))
   end
   io.write(string.format(
      'BENCH_JSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"lua":{"requests":%d,"responses":%d,"non2xx":%d,"wraps":%d},"threads":[%s],' ..
      '"latency_us":{"min":%d,"max":%d,"mean":%.1f,"stdev":%.1f,"percentiles":{%s}},' ..
      '"first_error":%s}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      tot.requests, tot.responses, tot.non2xx, tot.wraps, table.concat(per_thread, ","),
      latency.min, latency.max, latency.mean, latency.stdev, table.concat(pct, ","),
      json_string(first)))
end
