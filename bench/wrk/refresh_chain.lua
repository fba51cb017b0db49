-- The refresh_token grant. Refresh tokens rotate and are single use, so each wrk thread owns one chain: it sends
-- its current refresh token, reads the new one from the response, and only then sends the next request. Run with
-- as many connections as threads (-t N -c N), one chain per connection; BENCH_REFRESH_TOKENS is a file with at
-- least N refresh tokens, one per line. A response without a new refresh token ends that chain (counted as an
-- error by wrk's status count, and the thread keeps resending the last token so the refusals stay visible).
package.path = package.path .. ";" .. (os.getenv("BENCH_WRK_DIR") or ".") .. "/?.lua"
require "report"

local pool = {}
for line in io.lines(os.getenv("BENCH_REFRESH_TOKENS")) do
  if line ~= "" then table.insert(pool, line) end
end
local next_index = 1

function setup(thread)
  thread:set("initial", pool[next_index] or "")
  next_index = next_index + 1
end

local current
local form_prefix = os.getenv("BENCH_FORM_PREFIX") or ""
local origin = os.getenv("BENCH_ORIGIN") or ""

function init(args)
  current = initial
end

local function urlencode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function request()
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  if origin ~= "" then headers["Origin"] = origin end
  return wrk.format("POST", nil, headers, form_prefix .. "&refresh_token=" .. urlencode(current))
end

function response(status, headers, body)
  if status == 200 then
    local rotated = string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
    if rotated then current = rotated end
  end
end

done = wrk_report
