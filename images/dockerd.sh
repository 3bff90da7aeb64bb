#!/usr/bin/env bash
# images/dockerd.sh {start|stop [--force]|status|socket|owned}: the Docker daemon the lab uses.
#
# A daemon that already answers (DOCKER_HOST, or /var/run/docker.sock) is used as it is. Otherwise `start`
# installs Debian's docker.io if missing and runs a private dockerd that leaves the host's root namespace
# exactly as it was: no bridge (no docker0), no iptables rule, no ip_forward change. It has its own
# socket, pid file, data root and exec root, and a marker saying this script started it; `stop` stops only
# that daemon (pid from its pid file, checked against its command line), never one found by name, and
# leaves it running while containers run on it (another lab's, say) unless given --force.
set -euo pipefail

RUN_DIR=/run/anycastlab-dockerd
SOCK="$RUN_DIR/docker.sock"
OWN_URL="unix://$SOCK"
PIDFILE="$RUN_DIR/dockerd.pid"
LOG="$RUN_DIR/dockerd.log"
MARKER="$RUN_DIR/started-by-anycastlab"
CONFIG="$RUN_DIR/daemon.json"
DATA_ROOT=/var/lib/anycastlab-docker
EXEC_ROOT="$RUN_DIR/exec"
DEFAULT_URL=unix:///var/run/docker.sock
START_TIMEOUT=${DOCKERD_START_TIMEOUT:-30}
STOP_TIMEOUT=${DOCKERD_STOP_TIMEOUT:-30}

say() { echo "dockerd: $*" >&2; }
die() { echo "dockerd: error: $*" >&2; exit 1; }

# answers URL: true when a Docker daemon replies to _ping at URL within a few seconds.
answers() {
    local url=$1
    if [[ $url == unix://* ]]; then
        local path=${url#unix://}
        [[ -S $path ]] || return 1
        [[ $(curl -s --max-time 3 --unix-socket "$path" http://localhost/_ping 2>/dev/null) == OK ]]
    else
        timeout 5 docker -H "$url" version --format '{{.Server.Version}}' >/dev/null 2>&1
    fi
}

# own_pid: the pid of the daemon this script started, if it is alive and is that dockerd; else nothing.
own_pid() {
    [[ -f $PIDFILE ]] || return 1
    local pid cmdline
    pid=$(<"$PIDFILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline")
    [[ $cmdline == *dockerd* && $cmdline == *"--data-root $DATA_ROOT"* && $cmdline == *"-H $OWN_URL"* ]] || return 1
    echo "$pid"
}

# active_url: the socket to use, in the order the Python side tries (DOCKER_HOST, default, ours).
active_url() {
    if [[ -n ${DOCKER_HOST:-} ]] && answers "$DOCKER_HOST"; then echo "$DOCKER_HOST"; return 0; fi
    if answers "$DEFAULT_URL"; then echo "$DEFAULT_URL"; return 0; fi
    if answers "$OWN_URL"; then echo "$OWN_URL"; return 0; fi
    return 1
}

# Install docker.io without letting its maintainer scripts start the system daemon: that daemon would
# create docker0 and iptables rules in the root namespace. policy-rc.d (exit 101) forbids service starts.
install_docker() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    # docker-init is what `--init` runs; Debian's docker.io provides it through tini.
    if ! command -v docker-init >/dev/null 2>&1 && [[ ! -x /usr/libexec/docker/docker-init ]] \
        && [[ ! -x /usr/sbin/docker-init ]]; then
        missing+=(tini)
    fi
    [[ ${#missing[@]} -eq 0 ]] && return 0
    say "apt: installing ${missing[*]}"
    local made_policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        made_policy=1
    fi
    local rc=0
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null; } || rc=$?
    [[ -n $made_policy ]] && rm -f /usr/sbin/policy-rc.d
    [[ $rc -eq 0 ]] || die "apt-get install failed for: ${missing[*]}"
    command -v dockerd >/dev/null 2>&1 || die "docker.io installed but dockerd is not on PATH"
}

# What the root namespace looks like, so `start` can prove it left it unchanged.
host_snapshot() {
    echo "links: $(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort | tr '\n' ' ')"
    echo "ip_forward: $(cat /proc/sys/net/ipv4/ip_forward)"
    if command -v iptables >/dev/null 2>&1; then
        local table
        for table in filter nat mangle raw; do
            iptables -t "$table" -S 2>/dev/null | sed "s/^/iptables $table: /" || true
        done
    fi
    if command -v ip6tables >/dev/null 2>&1; then
        ip6tables -S 2>/dev/null | sed 's/^/ip6tables: /' || true
    fi
}

cmd_start() {
    local url
    if [[ -n ${DOCKER_HOST:-} && $DOCKER_HOST != "$OWN_URL" ]]; then
        answers "$DOCKER_HOST" || die "DOCKER_HOST=$DOCKER_HOST does not answer (unset it to let make start a daemon)"
        say "using the daemon at DOCKER_HOST=$DOCKER_HOST"
        echo "$DOCKER_HOST"
        return 0
    fi
    if answers "$DEFAULT_URL"; then
        say "using the running daemon at $DEFAULT_URL"
        echo "$DEFAULT_URL"
        return 0
    fi
    if answers "$OWN_URL"; then
        say "already running at $OWN_URL (pid $(own_pid || echo '?'))"
        echo "$OWN_URL"
        return 0
    fi
    [[ $(id -u) -eq 0 ]] || die "no Docker daemon answers, and starting one needs root (sudo make docker)"
    if own_pid >/dev/null; then
        die "dockerd (pid $(own_pid)) is running but does not answer on $SOCK; see $LOG, or stop it: $0 stop"
    fi
    install_docker

    mkdir -p "$RUN_DIR" "$DATA_ROOT" "$EXEC_ROOT"
    # Our own config file, so a system /etc/docker/daemon.json cannot turn the bridge or iptables back on.
    echo '{}' >"$CONFIG"
    local before after
    before=$(host_snapshot)
    rm -f "$MARKER"
    # setsid: the daemon outlives make's shell and is not in its process group (Ctrl-C in make spares it).
    setsid dockerd \
        --config-file "$CONFIG" \
        --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
        --userland-proxy=false \
        -H "$OWN_URL" --pidfile "$PIDFILE" --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" \
        --containerd-namespace anycastlab --containerd-plugins-namespace anycastlab-plugins \
        </dev/null >>"$LOG" 2>&1 &
    local launched=$!
    local deadline=$((SECONDS + START_TIMEOUT))
    until answers "$OWN_URL"; do
        if ! kill -0 "$launched" 2>/dev/null; then
            tail -n 20 "$LOG" >&2 || true
            die "dockerd exited during start-up (log: $LOG)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 20 "$LOG" >&2 || true
            die "dockerd (pid $launched) did not answer on $SOCK within ${START_TIMEOUT}s (log: $LOG)"
        fi
        sleep 0.2
    done
    local pid
    pid=$(own_pid) || die "dockerd answers but its pid file $PIDFILE does not name it"
    echo "$pid" >"$MARKER"

    after=$(host_snapshot)
    if [[ $before != "$after" ]]; then
        say "the daemon changed the host's root namespace; stopping it:"
        diff <(echo "$before") <(echo "$after") >&2 || true
        cmd_stop --force || true
        die "refusing to run a daemon that touches the root namespace"
    fi
    say "started dockerd (pid $pid) at $OWN_URL: no bridge, no iptables rules, ip_forward unchanged" \
        "(log $LOG, data $DATA_ROOT)"
    echo "$OWN_URL"
}

# running_containers: names of the containers running on our daemon, one a line.
running_containers() {
    curl -s --max-time 5 --unix-socket "$SOCK" 'http://localhost/containers/json' 2>/dev/null \
        | grep -o '"Names":\["/[^"]*"' | sed 's/.*"\/\(.*\)"/\1/' || true
}

cmd_stop() {
    local force=${1:-} pid
    if ! pid=$(own_pid); then
        rm -f "$MARKER"
        if answers "$OWN_URL"; then
            say "a daemon answers at $OWN_URL but its pid file does not name it; not stopping it"
        fi
        return 0
    fi
    if [[ ! -f $MARKER ]]; then
        say "dockerd (pid $pid) at $OWN_URL was not started by this script; leaving it"
        return 0
    fi
    local running
    running=$(running_containers)
    if [[ -n $running && $force != --force ]]; then
        say "leaving dockerd (pid $pid) running: containers run on it: $(echo "$running" | head -5 | tr '\n' ' ')" \
            "(stop them first, or: $0 stop --force)"
        return 0
    fi
    say "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while [[ -d /proc/$pid ]]; do
        if ((SECONDS >= deadline)); then
            die "dockerd (pid $pid) still running ${STOP_TIMEOUT}s after SIGTERM (log: $LOG)"
        fi
        sleep 0.2
    done
    rm -f "$MARKER"
    say "stopped"
}

cmd_status() {
    local url
    if ! url=$(active_url); then
        echo "no Docker daemon answers (start one: make docker)"
        return 3
    fi
    local pid
    if [[ $url == "$OWN_URL" ]] && pid=$(own_pid); then
        if [[ -f $MARKER ]]; then
            echo "running: $url (pid $pid, started by make; log $LOG)"
        else
            echo "running: $url (pid $pid)"
        fi
    else
        echo "running: $url (not started by make)"
    fi
}

cmd_socket() {
    local url
    if url=$(active_url); then
        echo "$url"
        return 0
    fi
    echo "$OWN_URL"
    say "(no daemon answers yet: make docker)"
    return 1
}

# owned: exit 0 when the daemon this script started is running (make test stops only what it started).
cmd_owned() {
    own_pid >/dev/null && [[ -f $MARKER ]]
}

case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop "${2:-}" ;;
    status) cmd_status ;;
    socket) cmd_socket ;;
    owned) cmd_owned ;;
    *) echo "usage: $0 {start|stop [--force]|status|socket|owned}" >&2; exit 2 ;;
esac
