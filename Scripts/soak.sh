#!/usr/bin/env bash
# Soak on loopback with the real programs: a target (remotedialer-dummy), two peered servers A
# and B, a client foo connected to A, and for MINUTES these loads at once:
#   bulk   16 MiB downloads, alternately through A and through B (B reaches foo through its peer
#          A), each compared byte for byte;
#   rps    wrk, 8 connections, small responses through A, 8 s runs with 2 s pauses;
#   churn  a client churn-N connects to B, is reached through B, then is killed (SIGKILL or
#          SIGTERM in turn), about one a second.
# Every 10 s it samples the resident memory (VmRSS) and open fds of A, B and foo into
# DIR/soak.csv, and at the end of every minute it holds the loads, lets the buffers they leave go
# back (the reactor's sweep, 1 s; idle upstream connections, 1 s) and samples each program's idle
# RSS into DIR/soak-idle.csv; it draws both into DIR/soak.svg. It passes when each program's idle
# RSS after the last minute is within 10% of its idle RSS after the first, its fds return to their
# idle count once the load stops, and no download was wrong and no request failed; otherwise it
# exits non-zero. Memory is compared idle because a sample under load lands at a random point of
# it: a 16 MiB download in flight, or one drained in the last second, moves a server's RSS by
# 2-7 MiB (6 minutes here: the lowest of a minute's six loaded samples ranged 14.7-18.4 MiB with no
# trend), while memory that is never given back stays in the idle figure.
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
# Each load passes here between iterations: while $work/hold exists it marks itself idle and waits.
hold_point() {
    [ -e "$work/hold" ] || return 0
    touch "$work/idle.$1"
    while [ -e "$work/hold" ] && [ ! -e "$work/stop" ]; do sleep 0.1; done
}
bulk_load() {
    local n=0 port
    until [ -e "$work/stop" ]; do
        hold_point bulk
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
        hold_point rps
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
        hold_point churn
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
idle_csv="$out/soak-idle.csv"
echo "seconds,minute,a_rss_kib,a_fds,b_rss_kib,b_fds,client_rss_kib,client_fds" >"$csv"
echo "seconds,minute,a_rss_kib,b_rss_kib,client_rss_kib" >"$idle_csv"
alive() { kill -0 "${pid_of[$1]}" 2>/dev/null || { echo "soak: FAIL: $1 exited"; tail -20 "$work/$1.log"; exit 1; }; }
loads_idle() { [ -e "$work/idle.bulk" ] && [ -e "$work/idle.rps" ] && [ -e "$work/idle.churn" ]; }
lowest_rss() {  # lowest_rss PID: the lowest of three samples 0.5 s apart
    local low=0 value
    for _ in 1 2 3; do
        value=$(rss_kib "$1")
        ((low == 0 || value < low)) && low=$value
        sleep 0.5
    done
    echo "$low"
}
started=$SECONDS
for ((minute = 1; minute <= minutes; minute++)); do
    minute_started=$SECONDS
    for ((sample = 1; sample <= 6; sample++)); do
        ((minute_started + sample * 10 <= SECONDS)) || sleep $((minute_started + sample * 10 - SECONDS))
        row="$((SECONDS - started)),$minute"
        for name in a b client; do
            alive "$name"
            row+=",$(rss_kib "${pid_of[$name]}"),$(fds "${pid_of[$name]}")"
        done
        echo "$row" >>"$csv"
    done
    # Hold the loads (a wrk run finishes first: up to 10 s), let what they leave go, sample idle.
    touch "$work/hold"
    wait_for 30 loads_idle || { echo "soak: FAIL: the loads did not pause within 30 s"; exit 1; }
    sleep 2.5  # the reactor's sweep (1 s) and idle upstream connections (-upstream-idle-timeout 1s)
    row="$((SECONDS - started)),$minute"
    for name in a b client; do
        alive "$name"
        row+=",$(lowest_rss "${pid_of[$name]}")"
    done
    echo "$row" >>"$idle_csv"
    rm -f "$work"/idle.* "$work/hold"
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
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
for name in a b client; do
    idle_of() {  # idle_of MINUTE: the program's idle RSS after that minute
        awk -F, -v m="$1" -v c="$name" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c "_rss_kib") col = i }
            NR > 1 && $2 == m { print $col }' "$idle_csv"
    }
    loaded_of() {  # loaded_of MINUTE: "median highest" of the program's samples under load in that minute
        awk -F, -v m="$1" -v c="$name" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c "_rss_kib") col = i }
            NR > 1 && $2 == m { print $col }' "$csv" |
            sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)), v[NR] }'
    }
    first=$(idle_of 1)
    last=$(idle_of "$minutes")
    read -r first_median first_high < <(loaded_of 1)
    read -r last_median last_high < <(loaded_of "$minutes")
    growth=$(awk -v f="$first" -v l="$last" 'BEGIN { printf "%+.1f", (l - f) * 100 / f }')
    settled=$(settled_fds "${pid_of[$name]}")
    echo "soak: $name: idle RSS $(mib "$first") MiB after the first minute, $(mib "$last") MiB after the last ($growth%);" \
        "under load median $(mib "$first_median") and $(mib "$last_median"), highest $(mib "$first_high") and $(mib "$last_high") MiB;" \
        "fds ${idle_fds[$name]} idle before, $settled after the load"
    awk -v f="$first" -v l="$last" 'BEGIN { exit !(l <= f * 1.1) }' || fail "$name: idle RSS grew $growth% after the first minute (limit +10%)"
    [ "$settled" = "${idle_fds[$name]}" ] || fail "$name: $settled fds after the load, ${idle_fds[$name]} when idle"
done

python3 - "$csv" "$idle_csv" "$out/soak.svg" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
idle_rows = list(csv.DictReader(open(sys.argv[2])))
t = [float(r["seconds"]) for r in rows + idle_rows]
names, colours = ["a", "b", "client"], ["#1f77b4", "#d62728", "#2ca02c"]
width, height, left, top, panel = 760, 520, 70, 30, 200
def panel_svg(y0, key, scale, label):
    values = [[float(r[f"{n}_{key}"]) / scale for r in rows] for n in names]
    idle = [[float(r[f"{n}_{key}"]) / scale for r in idle_rows] for n in names] if key == "rss_kib" else [[] for _ in names]
    top_value = max(max(v + i) for v, i in zip(values, idle)) * 1.15 or 1
    x = lambda s: left + (s / max(max(t), 1)) * (width - left - 20)
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
    for colour, series in zip(colours, idle):  # idle samples (loads held) as dots
        parts += [f'<circle cx="{x(float(r["seconds"])):.1f}" cy="{y(v):.1f}" r="3.5" fill="{colour}"/>' for r, v in zip(idle_rows, series)]
    return parts
body = panel_svg(top + 10, "rss_kib", 1024, "resident memory (MiB)") + panel_svg(top + panel + 70, "fds", 1, "open fds")
body.append(f'<text x="{width - 20}" y="{height - 8}" font-size="11" text-anchor="end">seconds (under load every 10 s; dots: idle, loads held; {max(t):.0f} s)</text>')
for i, (n, colour) in enumerate(zip(names, colours)):
    body.append(f'<text x="{left + 10 + i * 90}" y="{height - 8}" font-size="12" fill="{colour}">{"server " + n if n != "client" else "client foo"}</text>')
open(sys.argv[3], "w").write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">'
                             + "".join(body) + "</svg>\n")
EOF
echo "soak: samples in $csv and $idle_csv, plot in $out/soak.svg; $failures failures"
((failures == 0))
