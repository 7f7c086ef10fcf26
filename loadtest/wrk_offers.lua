-- wrk script for loadtest/bench.py (run by loadtest/wrk.py): builds each /v1/offers query the way shoppers would.
--
-- NEARCART_BENCH_DATA  a Lua file returning {gtins=..., hot=..., hot_cum=..., spots=..., cities=...}
--                      (bench.py writes it from bench_data.py: the demo catalog and geo/towns.py)
-- NEARCART_BENCH_MODE  "unique": a fresh position at full GPS precision near a store, any product:
--                      every request misses every cache.
--                      "locality": shoppers in the 30 largest towns (weighted by population), half
--                      typing a postal code of their town, half sharing a position the widget rounds
--                      to 0.01 degree; a few hot products, Zipf-like.
-- NEARCART_BENCH_RATE  requests per second for this thread to send (paced runs); 0: flat out.
-- done() prints one line "NEARCART_WRK {json}" with counts and latency percentiles in microseconds.

local data = dofile(os.getenv("NEARCART_BENCH_DATA"))
local mode = os.getenv("NEARCART_BENCH_MODE") or "unique"
local rate = tonumber(os.getenv("NEARCART_BENCH_RATE") or "0")
local campaign = data.campaign or ""

local next_thread = 1
function setup(thread)
  thread:set("thread_number", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  -- Each thread has its own Lua state: different seeds, or threads would send the same "unique" positions.
  math.randomseed(os.time() * 1000 + (thread_number or 0) * 7919)
end

local function pick_cumulative(cum)
  local x = math.random() * cum[#cum]
  for i = 1, #cum do
    if x <= cum[i] then return i end
  end
  return #cum
end

local function gauss()
  local u = math.max(math.random(), 1e-12)
  return math.sqrt(-2 * math.log(u)) * math.cos(2 * math.pi * math.random())
end

local function unique_path()
  local spot = data.spots[math.random(#data.spots)]
  local gtin = data.gtins[math.random(#data.gtins)]
  local lat = spot[1] + (math.random() - 0.5) * 0.2
  local lon = spot[2] + (math.random() - 0.5) * 0.2
  return string.format("/v1/offers?gtin=%s&campaign=%s&lat=%.6f&lon=%.6f", gtin, campaign, lat, lon)
end

local function locality_path()
  local city = data.cities[pick_cumulative(data.city_cum)]
  local gtin = data.hot[pick_cumulative(data.hot_cum)]
  if math.random() < 0.5 and #city.postal_codes > 0 then
    local code = city.postal_codes[math.random(#city.postal_codes)]
    return string.format("/v1/offers?gtin=%s&campaign=%s&postal_code=%s&country=FR", gtin, campaign, code)
  end
  -- Browser geolocation rounded to 0.01 degree by the widget (about 1 km): neighbours send the same query.
  local lat = math.floor((city.lat + gauss() * 0.03) * 100 + 0.5) / 100
  local lon = math.floor((city.lon + gauss() * 0.04) * 100 + 0.5) / 100
  return string.format("/v1/offers?gtin=%s&campaign=%s&lat=%.2f&lon=%.2f", gtin, campaign, lat, lon)
end

local build = mode == "locality" and locality_path or unique_path

function request()
  return wrk.format("GET", build())
end

if rate > 0 then
  -- Open-loop pacing (what wrk2 does): requests leave on a fixed schedule shared by the thread's
  -- connections, whatever the latency of the previous answers; a schedule the server cannot keep
  -- slips instead of bursting to catch up. wrk counts whole milliseconds, the schedule does not.
  local ffi = require("ffi")
  ffi.cdef("typedef struct { long tv_sec; long tv_nsec; } nc_timespec; int clock_gettime(int, nc_timespec *);")
  local now_ts = ffi.new("nc_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, now_ts)  -- CLOCK_MONOTONIC
    return tonumber(now_ts.tv_sec) * 1000 + tonumber(now_ts.tv_nsec) / 1e6
  end
  local interval_ms = 1000 / rate
  local next_slot = 0
  function delay()
    local now = now_ms()
    local slot = math.max(next_slot, now)
    next_slot = slot + interval_ms
    return slot - now
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'NEARCART_WRK {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,'
      .. '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max))
end
