-- wrk script: send the cookie given in BENCH_COOKIE (e.g. "ROUTEID=s1") with
-- every request. Only static headers are set (no request()/response()
-- callbacks), so wrk pre-builds the request and the script costs nothing per
-- request.
local c = os.getenv("BENCH_COOKIE")
if c ~= nil and c ~= "" then
    wrk.headers["Cookie"] = c
end
