-- GET with a bearer token (BENCH_TOKEN) and, when set, the function key (BENCH_FUNCTION_KEY): the authenticated
-- call the SPA makes through the gateway, or the gateway's call to the function.
package.path = package.path .. ";" .. (os.getenv("BENCH_WRK_DIR") or ".") .. "/?.lua"
require "report"

local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local key = os.getenv("BENCH_FUNCTION_KEY")
if key and key ~= "" then
  wrk.headers["x-functions-key"] = key
end

done = wrk_report
