# Shell helpers shared by the end-to-end scripts (chaos.sh, soak.sh, wan.sh); sourced, not run.

wait_for() {  # wait_for SECONDS COMMAND...: polls every 0.1 s; fails after SECONDS
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }  # fds PID: its open file descriptors

settled_fds() {  # settled_fds PID: its fd count once it stops moving (connections of a probe close late)
    local previous current
    previous=$(fds "$1")
    for _ in $(seq 50); do
        sleep 0.2
        current=$(fds "$1")
        [ "$current" = "$previous" ] && break
        previous=$current
    done
    echo "$previous"
}

peer_linked() {  # peer_linked PORT PEER: the server on PORT has all its links to PEER up (one per loop), as its admin API says
    curl -s --max-time 5 "http://127.0.0.1:$1/api/peers" | grep -q "\"id\":\"$2\",\"url\":\"[^\"]*\",\"state\":\"connected\""
}
