-- POST a fixed urlencoded form (BENCH_FORM) — the token endpoint's client_credentials grant, which is stateless,
-- so every connection may send the same body.
package.path = package.path .. ";" .. (os.getenv("BENCH_WRK_DIR") or ".") .. "/?.lua"
require "report"

wrk.method = "POST"
wrk.body = os.getenv("BENCH_FORM")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local origin = os.getenv("BENCH_ORIGIN")
if origin and origin ~= "" then
  wrk.headers["Origin"] = origin
end

done = wrk_report
