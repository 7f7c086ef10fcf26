-- wrk script for loadtest/bench.py: builds each /v1/offers query the way shoppers would.
--
-- NEARCART_BENCH_DATA  a Lua file returning {gtins=..., hot=..., hot_cum=..., spots=..., cities=...}
--                      (written by bench.py from the demo catalog and geo/towns.py)
-- NEARCART_BENCH_MODE  "unique": a fresh position at full GPS precision near a store, any product:
--                      every request misses every cache.
--                      "locality": shoppers in the 30 largest towns (weighted by population), half
--                      typing a postal code of their town, half sharing a position the widget rounds
--                      to 0.01 degree; a few hot products, Zipf-like.
-- NEARCART_BENCH_DELAY_MS  mean pause before each request on a connection (paced runs); 0: flat out.
-- done() prints one line "NEARCART_WRK {json}" with counts and latency percentiles in microseconds.

local data = dofile(os.getenv("NEARCART_BENCH_DATA"))
local mode = os.getenv("NEARCART_BENCH_MODE") or "unique"
local delay_ms = tonumber(os.getenv("NEARCART_BENCH_DELAY_MS") or "0")
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

if delay_ms > 0 then
  -- wrk takes whole milliseconds: alternate floor and ceil so the mean pause is delay_ms.
  local whole = math.floor(delay_ms)
  local fraction = delay_ms - whole
  function delay()
    if math.random() < fraction then return whole + 1 end
    return whole
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
