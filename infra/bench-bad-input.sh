#!/usr/bin/env bash
# infra/bench-bad-input.sh — what bad or slow clients cost the api: its peak RSS (VmHWM)
# after each oversized or invalid request, and how fast ordinary requests are answered
# while five imports stall. Starts its own api (release build) on a fresh database.
# Prints a Markdown table; figures go to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PF_PG_FAST=1 ./infra/up.sh >/dev/null
# shellcheck disable=SC1091
source .pushfleet/env
cargo build -q --release -p pushfleet-api
api="${CARGO_TARGET_DIR:-target}/release/pushfleet-api"
db="pf_bench_bad_$$"
base="${DATABASE_URL%/*}"
psql "$DATABASE_URL" -qc "CREATE DATABASE $db"
port=$((30000 + $$ % 10000))
cleanup() {
    [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
}
trap cleanup EXIT
DATABASE_URL="$base/$db" "$api" migrate >/dev/null
DATABASE_URL="$base/$db" API_ADDR="127.0.0.1:$port" ADMIN_ADDR="127.0.0.1:$((port + 1))" PUBLIC_ADDR=127.0.0.1:0 \
    API_MAX_BODY_BYTES=$((16 * 1024 * 1024)) API_BODY_READ_TIMEOUT_MS=10000 RUST_LOG=warn \
    "$api" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$((port + 1))/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
python3 - "$port" "$pid" <<'PY'
import json, socket, sys, time, http.client
port, pid = int(sys.argv[1]), int(sys.argv[2])

def hwm():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

def post(path, body, ctype="application/json"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t = time.time()
    c.request("POST", path, body=body, headers={"content-type": ctype})
    r = c.getresponse()
    data = r.read()
    return r.status, len(data), time.time() - t

print("| request | status | answer bytes | time | api peak RSS before -> after |")
print("|---|---|---|---|---|")
cases = [
    ("20 MB CSV import, every row invalid", "/v1/people/import",
     ("email,first_name\n" + "".join(f"not-an-email-{i},X\n" for i in range(1_000_000)))[:20_000_000].encode(), "text/csv"),
    ("13.5 MB preview, 300,000 invalid criteria", "/v1/audiences/preview",
     json.dumps({"criteria": {"any": [{"property": "nope", "op": "nope", "value": 1}] * 300_000}}).encode(), "application/json"),
    ("15 MB template body", "/v1/templates",
     json.dumps({"name": "t", "body": "x" * 15_000_000}).encode(), "application/json"),
    ("50 MB JSON body", "/v1/people", b'{"people": [' + b'{"first_name": "a"},' * 2_500_000 + b'{}]}', "application/json"),
    ("NUL in a name", "/v1/people", b'{"people":[{"first_name":"a\\u0000b"}]}', "application/json"),
]
base_hwm = hwm()
for name, path, body, ctype in cases:
    before = hwm()
    try:
        status, n, t = post(path, body, ctype)
    except Exception as e:
        status, n, t = f"error {e}", 0, 0
    print(f"| {name} | {status} | {n} | {t:.2f} s | {before:.1f} -> {hwm():.1f} MiB |")
print(f"\npeak RSS growth over all of them: {hwm() - base_hwm:.1f} MiB (baseline {base_hwm:.1f} MiB)\n")

# Five imports that send their head and one line, then stall.
stalled = []
for _ in range(5):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /v1/people/import HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
              b"Content-Length: 10000000\r\n\r\nemail,first_name\nstalled@example.org,S\n")
    stalled.append(s)
times = []
statuses = {}
for i in range(100):
    body = json.dumps({"people": [{"email": f"p{i}@example.org", "first_name": "P"}]}).encode()
    status, _, t = post("/v1/people", body)
    statuses[status] = statuses.get(status, 0) + 1
    times.append(t)
times.sort()
print(f"while 5 imports stall: 100 POST /v1/people answered {statuses}; "
      f"p50 {times[49]*1000:.1f} ms, p99 {times[98]*1000:.1f} ms, max {times[-1]*1000:.1f} ms")
answers = []
for s in stalled:
    s.settimeout(30)
    try:
        data = s.recv(4096).decode(errors="replace")
        answers.append(data.split(" ")[1] if data else "closed")
    except Exception as e:
        answers.append(str(e))
print(f"the stalled imports were answered: {sorted(answers)}")
PY
