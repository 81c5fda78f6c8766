#!/usr/bin/env bash
# Checks the tunnel harness itself at tiny sizes (no timings are asserted): our programs as two
# implementations, the second with a client that exits at once on its first run (as Go's demo
# client does when its first connect is refused) and extra server flags; then the JSON has a
# row per implementation in every scenario (and the socat chain's in baseline and conns), the late client was restarted, the chart has its
# units, and no program the harness started is left running.
# usage: Scripts/test-tunnel-bench.sh   (builds what Scripts/tunnel-bench.sh builds; about a minute once built)
set -euo pipefail
cd "$(dirname "$0")/.."
release="$PWD/.build-static/release"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "test-tunnel-bench: FAIL: $*" >&2; exit 1; }

cat > "$work/late-client" <<SCRIPT
#!/usr/bin/env bash
# Exits with an error on its first run (help requests aside), then is the real client.
[ "\${1:-}" = -h ] && exec "$release/remotedialer-client" -h
if [ ! -e "$work/late-client.runs" ]; then echo first > "$work/late-client.runs"; echo "late-client: refused" >&2; exit 1; fi
echo again >> "$work/late-client.runs"
exec "$release/remotedialer-client" "\$@"
SCRIPT
chmod +x "$work/late-client"

bash Scripts/tunnel-bench.sh --impl "ours=$release/remotedialer-server,$release/remotedialer-client" \
    --impl "late=$release/remotedialer-server,$work/late-client" --server-args "late=-log-format json" \
    --bulk-mib 32 --rps-seconds 1 --rps-connections 4 --downloads 4 --part-mib 4 --sessions 20 --repeat 1 \
    --json "$work/results.json" --svg "$work/chart.svg" || fail "the harness exited with $?"

python3 - "$work/results.json" <<'PY' || fail "results.json"
import json, sys
results = json.load(open(sys.argv[1]))
machine = results["machine"]
assert machine["cores"] > 0 and machine["kernel"].startswith("Linux "), machine
late = next(i for i in results["implementations"] if i["name"] == "late")
assert late["serverArguments"] == ["-log-format", "json"] and late["takesTLSFlags"], late
for report in results["scenarios"]:
    subjects = sorted(report["runs"])
    expected = {"baseline": ["2-relay reactor", "2-relay socat", "direct"], "conns": ["2-relay socat", "late", "ours"]}.get(report["scenario"], ["late", "ours"])
    assert subjects == expected, (report["scenario"], subjects)
    for subject, runs in report["runs"].items():
        assert len(runs) == 1 and runs[0][report["primary"]] > 0, (report["scenario"], subject, runs)
PY
[ "$(head -1 "$work/late-client.runs")" = first ] && [ "$(grep -c again "$work/late-client.runs")" -ge 1 ] \
    || fail "the late client was not restarted"
for unit in "MB/s" "s/GiB" "p99" "req/s" "cores"; do grep -q "$unit" "$work/chart.svg" || fail "the chart lacks $unit"; done
grep -q "mbps" "$work/chart.svg" && fail "the chart still says mbps"
if pgrep -f "$release/remotedialer-|$work/late-client" >/dev/null; then fail "processes left running: $(pgrep -af "$release/remotedialer-|$work/late-client")"; fi
echo "test-tunnel-bench: ok"
