-- wrk script for bench/run.py. One script, the workload chosen by environment variables:
--   BENCH_WORKLOAD  get_static | get_filter | get_id | post_user | patch_user | patch_member
--   BENCH_BASE      path prefix of the SCIM endpoint ("/scim/v2", "/v2"), or the full path for get_static
--   BENCH_DATA      file with one value a line: userNames (get_filter), ids (get_id, patch_user),
--                   ids of users not yet members of the group (patch_member)
--   BENCH_BODY      file with the POST /Users body; "@@USERNAME@@" is replaced by a unique userName
--   BENCH_PREFIX    prefix of the userNames that post_user creates (unique per run and server)
--   BENCH_GROUP     id of the group that patch_member adds members to
-- patch_member takes each id once and stops the thread when the file is used up (ran_us then says how
-- long it ran: wrk's own duration is always -d).
-- done() prints one line "BENCH_JSON {...}" with the counts and latency percentiles (microseconds).

local workload = os.getenv("BENCH_WORKLOAD") or "get_static"
local base = os.getenv("BENCH_BASE") or "/"
local prefix = os.getenv("BENCH_PREFIX") or "wrkuser"
local group = os.getenv("BENCH_GROUP") or ""
local items = {}
local template = nil
counter = 0  -- globals: done() reads them from each thread with thread:get
started_us = 0  -- monotonic time of the first request
stopped_us = 0  -- monotonic time patch_member ran out of ids (0: it did not)
local threads = {}

-- A monotonic clock (LuaJIT ffi), so a thread that stops early can report how long it really ran.
local ok, ffi = pcall(require, "ffi")
local now_us = function() return 0 end
if ok then
   pcall(ffi.cdef, "typedef struct { long tv_sec; long tv_nsec; } bench_timespec;"
      .. "int clock_gettime(int clk_id, bench_timespec *tp);")
   local ts = ffi.new("bench_timespec")
   now_us = function()
      ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
      return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
   end
end
local last = nil

local function read_lines(path)
   local out = {}
   for line in io.lines(path) do
      if #line > 0 then out[#out + 1] = line end
   end
   return out
end

local function read_all(path)
   local f = assert(io.open(path, "rb"))
   local s = f:read("*a")
   f:close()
   return s
end

function setup(thread)
   threads[#threads + 1] = thread
end

function init(args)
   math.randomseed(os.time())
   local data = os.getenv("BENCH_DATA")
   if data and #data > 0 then items = read_lines(data) end
   local body = os.getenv("BENCH_BODY")
   if body and #body > 0 then template = read_all(body) end
   wrk.headers["Content-Type"] = "application/scim+json"
   wrk.headers["Accept"] = "application/scim+json"
end

local function pick()
   return items[math.random(#items)]
end

function request()
   if started_us == 0 then started_us = now_us() end
   if workload == "get_filter" then
      return wrk.format("GET", base .. "/Users?filter=userName%20eq%20%22" .. pick() .. "%22")
   elseif workload == "get_id" then
      return wrk.format("GET", base .. "/Users/" .. pick())
   elseif workload == "post_user" then
      counter = counter + 1
      local body = template:gsub("@@USERNAME@@", prefix .. counter)
      return wrk.format("POST", base .. "/Users", nil, body)
   elseif workload == "patch_user" then
      counter = counter + 1
      local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":'
         .. '[{"op":"replace","path":"displayName","value":"Renamed ' .. counter .. '"}]}'
      return wrk.format("PATCH", base .. "/Users/" .. pick(), nil, body)
   elseif workload == "patch_member" then
      counter = counter + 1
      if counter > #items then
         if stopped_us == 0 then stopped_us = now_us() end
         wrk.thread:stop()
         return last
      end
      local body = '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":'
         .. '[{"op":"add","path":"members","value":[{"value":"' .. items[counter] .. '"}]}]}'
      last = wrk.format("PATCH", base .. "/Groups/" .. group, nil, body)
      return last
   else
      return wrk.format("GET", base)
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   local used, ran_us = 0, 0
   for _, thread in ipairs(threads) do
      used = used + (tonumber(thread:get("counter")) or 0)
      local t0, t1 = tonumber(thread:get("started_us")) or 0, tonumber(thread:get("stopped_us")) or 0
      if t0 > 0 and t1 > t0 then ran_us = math.max(ran_us, t1 - t0) end
   end
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
      '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"used":%d,"ran_us":%d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.status, e.timeout, used, ran_us))
end
