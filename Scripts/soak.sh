#!/usr/bin/env bash
# Soak on loopback with the real programs: a target (remotedialer-dummy), two peered servers A
# and B, a client foo connected to A, and for MINUTES these loads at once:
#   bulk   16 MiB downloads, alternately through A and through B (B reaches foo through its peer
#          A), each compared byte for byte;
#   rps    wrk, 8 connections, small responses through A, 8 s runs with 2 s pauses;
#   churn  a client churn-N connects to B, is reached through B, then is killed (SIGKILL or
#          SIGTERM in turn), about one a second.
# Every 10 s it samples the resident memory (VmRSS) and open fds of A, B and foo into
# DIR/soak.csv and draws DIR/soak.svg. It passes when each program's RSS at the end is within 10%
# of its value after the first minute, its fds return to their idle count once the load stops,
# and no download was wrong and no request failed; otherwise it exits non-zero. A sample lands at
# a random point of the load (a 16 MiB download in flight, or drained in the last second, whose
# buffers the reactor keeps until its next sweep, moves RSS by 2-4 MiB), so "the value" of a
# minute is the lowest of its six samples: memory that is never given back raises that floor, a
# sample taken mid-download does not. The last minute's may not exceed the first minute's by more
# than 10% (less is fine: memory given back). The median and highest samples are printed beside it.
# Every process it starts is stopped when it exits, whatever the outcome.
# usage: Scripts/soak.sh MINUTES [DIR]   (DIR: default bench-results/soak)
set -euo pipefail
cd "$(dirname "$0")/.."
source Scripts/lib.sh
export PATH="/opt/swift/usr/bin:$PATH"
minutes="${1:?usage: Scripts/soak.sh MINUTES [DIR]}"
out="${2:-bench-results/soak}"
((minutes >= 2)) || { echo "soak: MINUTES must be at least 2 (the first minute is the reference)"; exit 2; }
mkdir -p "$out"
swift build >/dev/null
bin="$(swift build --show-bin-path)"
work="$(mktemp -d)"
declare -A pid_of=()  # the programs by name
loads=()              # the load loops
stop_all() {
    touch "$work/stop"
    for pid in "${loads[@]}"; do pkill -9 -P "$pid" 2>/dev/null || true; kill -9 "$pid" 2>/dev/null || true; done
    for pid in "${pid_of[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap 'stop_all; rm -rf "$work"' EXIT

mkdir "$work/files"
head -c $((16 << 20)) /dev/urandom >"$work/files/bulk"
head -c 1024 /dev/urandom >"$work/files/small"
read -r port_t port_a port_b < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
(cd "$work/files" && exec "$bin/remotedialer-dummy" -listen "127.0.0.1:$port_t") >"$work/target.log" 2>&1 &
pid_of[target]=$!
"$bin/remotedialer-server" -listen "127.0.0.1:$port_a" -id a -token soak -upstream-idle-timeout 1s -peers "b:soak:ws://127.0.0.1:$port_b/connect" >"$work/a.log" 2>&1 &
pid_of[a]=$!
"$bin/remotedialer-server" -listen "127.0.0.1:$port_b" -id b -token soak -upstream-idle-timeout 1s -peers "a:soak:ws://127.0.0.1:$port_a/connect" >"$work/b.log" 2>&1 &
pid_of[b]=$!
"$bin/remotedialer-client" -connect "ws://127.0.0.1:$port_a/connect" -id foo >"$work/client.log" 2>&1 &
pid_of[client]=$!
url() { echo "http://127.0.0.1:$1/client/$2/http/127.0.0.1:$port_t/$3?timeout=60"; }
reachable() { [ "$(curl -s -o /dev/null -w '%{http_code}' -r 0-0 --max-time 5 "$(url "$1" "$2" small)")" = 206 ]; }
# Idle is measured once every loop's peer links are up (each is an fd on both servers).
ready() { peer_linked "$port_a" b && peer_linked "$port_b" a && reachable "$port_a" foo && reachable "$port_b" foo; }
wait_for 30 ready || { echo "soak: FAIL: peer links not up or foo not reachable through A and B within 30 s"; tail -5 "$work"/*.log; exit 1; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
# Idle upstream connections kept by the probes (-upstream-idle-timeout 1s) close first.
sleep 1.5
declare -A idle_fds=()
for name in a b client; do idle_fds[$name]=$(settled_fds "${pid_of[$name]}"); done

error() { echo "$*" >>"$work/errors"; }
bulk_load() {
    local n=0 port
    until [ -e "$work/stop" ]; do
        n=$((n + 1))
        port=$([ $((n % 2)) = 0 ] && echo "$port_a" || echo "$port_b")
        if curl -sf --limit-rate 20M --max-time 60 -o "$work/bulk.out" "$(url "$port" foo bulk)"; then
            cmp -s "$work/bulk.out" "$work/files/bulk" || error "bulk $n: wrong bytes"
        else
            error "bulk $n through port $port: curl exit $?"
        fi
        echo "$n" >"$work/bulk.count"
    done
}
rps_load() {
    local n=0
    until [ -e "$work/stop" ]; do
        n=$((n + 1))
        wrk -t1 -c8 -d8s "$(url "$port_a" foo small)" >"$work/wrk.out" 2>&1 || error "wrk run $n failed"
        awk '/requests in/ { print $1 }' "$work/wrk.out" >>"$work/rps.requests"
        ! grep -q "Non-2xx\|Socket errors" "$work/wrk.out" || error "wrk run $n: $(grep "Non-2xx\|Socket errors" "$work/wrk.out")"
        sleep 2
    done
}
churn_load() {
    local n=0 client
    until [ -e "$work/stop" ]; do
        n=$((n + 1))
        "$bin/remotedialer-client" -connect "ws://127.0.0.1:$port_b/connect" -id "churn-$n" >"$work/churn.log" 2>&1 &
        client=$!
        wait_for 10 reachable "$port_b" "churn-$n" || error "churn-$n never reachable through B"
        kill "$([ $((n % 2)) = 0 ] && echo -9 || echo -15)" "$client"
        wait "$client" 2>/dev/null || true
        echo "$n" >"$work/churn.count"
        sleep 0.5
    done
}
bulk_load &
loads+=("$!")
rps_load &
loads+=("$!")
churn_load &
loads+=("$!")

csv="$out/soak.csv"
echo "seconds,a_rss_kib,a_fds,b_rss_kib,b_fds,client_rss_kib,client_fds" >"$csv"
started=$SECONDS
for ((sample = 1; sample <= minutes * 6; sample++)); do
    ((started + sample * 10 <= SECONDS)) || sleep $((started + sample * 10 - SECONDS))
    row="$((SECONDS - started))"
    for name in a b client; do
        kill -0 "${pid_of[$name]}" 2>/dev/null || { echo "soak: FAIL: $name exited"; tail -20 "$work/$name.log"; exit 1; }
        row+=",$(rss_kib "${pid_of[$name]}"),$(fds "${pid_of[$name]}")"
    done
    echo "$row" >>"$csv"
done
touch "$work/stop"
for pid in "${loads[@]}"; do wait "$pid" || true; done
loads=()

failures=0
fail() { echo "soak: FAIL: $*"; failures=$((failures + 1)); }
echo "soak: $minutes min: $(cat "$work/bulk.count" 2>/dev/null || echo 0) bulk downloads of 16 MiB," \
    "$(awk '{ s += $1 } END { print s + 0 }' "$work/rps.requests" 2>/dev/null || echo 0) wrk requests," \
    "$(cat "$work/churn.count" 2>/dev/null || echo 0) churned client sessions"
if [ -s "$work/errors" ]; then
    fail "$(wc -l <"$work/errors") load errors, the first: $(head -3 "$work/errors" | tr '\n' ';')"
fi
sleep 1.5  # the load's idle upstream connections close (-upstream-idle-timeout 1s)
column=2
for name in a b client; do
    # The lowest, median and highest sample of the first minute and of the last (rows are 10 s apart).
    minute() {  # minute FROM TO: "lowest median highest" of the column's samples with FROM < seconds <= TO
        awk -F, -v c="$column" -v from="$1" -v to="$2" 'NR > 1 && $1 > from && $1 <= to { print $c }' "$csv" |
            sort -n | awk '{ v[NR] = $1 } END { print v[1], (NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)), v[NR] }'
    }
    read -r first first_median first_high < <(minute 0 60)
    read -r last last_median last_high < <(minute $((minutes * 60 - 60)) $((minutes * 60)))
    growth=$(awk -v f="$first" -v l="$last" 'BEGIN { printf "%+.1f", (l - f) * 100 / f }')
    settled=$(settled_fds "${pid_of[$name]}")
    echo "soak: $name: RSS lowest $((first / 1024)) MiB in the first minute, $((last / 1024)) MiB in the last ($growth%);" \
        "median $((first_median / 1024)) and $((last_median / 1024)), highest $((first_high / 1024)) and $((last_high / 1024)) MiB;" \
        "fds ${idle_fds[$name]} idle before, $settled after the load"
    awk -v f="$first" -v l="$last" 'BEGIN { exit !(l <= f * 1.1) }' || fail "$name: RSS grew $growth% after the first minute (limit +10%)"
    [ "$settled" = "${idle_fds[$name]}" ] || fail "$name: $settled fds after the load, ${idle_fds[$name]} when idle"
    column=$((column + 2))
done

python3 - "$csv" "$out/soak.svg" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
t = [float(r["seconds"]) for r in rows]
names, colours = ["a", "b", "client"], ["#1f77b4", "#d62728", "#2ca02c"]
width, height, left, top, panel = 760, 520, 70, 30, 200
def panel_svg(y0, key, scale, label):
    values = [[float(r[f"{n}_{key}"]) / scale for r in rows] for n in names]
    top_value = max(max(v) for v in values) * 1.15 or 1
    x = lambda s: left + (s / max(t[-1], 1)) * (width - left - 20)
    y = lambda v: y0 + panel - v / top_value * panel
    parts = [f'<text x="10" y="{y0 - 8}" font-size="13">{label}</text>',
             f'<line x1="{left}" y1="{y0 + panel}" x2="{width - 20}" y2="{y0 + panel}" stroke="#888"/>',
             f'<line x1="{left}" y1="{y0}" x2="{left}" y2="{y0 + panel}" stroke="#888"/>']
    for fraction in (0, 0.5, 1):
        value = top_value * fraction
        parts.append(f'<text x="{left - 6}" y="{y(value) + 4}" font-size="11" text-anchor="end">{value:.0f}</text>')
    for n, colour, series in zip(names, colours, values):
        points = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in zip(t, series))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')
    return parts
body = panel_svg(top + 10, "rss_kib", 1024, "resident memory (MiB)") + panel_svg(top + panel + 70, "fds", 1, "open fds")
body.append(f'<text x="{width - 20}" y="{height - 8}" font-size="11" text-anchor="end">seconds (samples every 10 s; {t[-1]:.0f} s)</text>')
for i, (n, colour) in enumerate(zip(names, colours)):
    body.append(f'<text x="{left + 10 + i * 90}" y="{height - 8}" font-size="12" fill="{colour}">{"server " + n if n != "client" else "client foo"}</text>')
open(sys.argv[2], "w").write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">'
                             + "".join(body) + "</svg>\n")
EOF
echo "soak: samples in $csv, plot in $out/soak.svg; $failures failures"
((failures == 0))
