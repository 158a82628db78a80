#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, in a directory of its own, for tests and for trying
# `--launcher slurm` without a real cluster.
#
#   tools/slurm_local.sh start [DIR]   install what is missing, write DIR/slurm.conf, start
#                                      munged, slurmctld and slurmd, wait until the node is idle;
#                                      prints `export SLURM_CONF=DIR/slurm.conf`
#   tools/slurm_local.sh stop DIR      cancel the cluster's jobs, stop the three daemons by PID
#
# Exit status of `start`: 0 when the node is idle; 3 when SLURM cannot be started on this
# machine (not root, no apt-get, the packages cannot be installed), with the reason on stderr;
# 1 when it was started but failed (the daemons' log tails on stderr, what was started stopped).
#
# What it never touches: an existing cluster configuration. Everything the cluster reads or
# writes lives in DIR: slurm.conf, state, spool, logs, PID files, and a munge key and socket of
# its own. The daemons and every client (sinfo, sbatch, scontrol, and the srun/scontrol calls
# inside jobs, which inherit the environment) find the config through SLURM_CONF, never through
# /etc/slurm. Its ports are picked free, so it runs beside a real slurmctld/slurmd.
#
# EnforcePartLimits=ALL makes sbatch refuse a job the node can never run (e.g. more CPUs per task
# than it has) instead of leaving it pending forever.
#
# Why its own munged rather than the system's /etc/munge/munge.key: SLURM's auth/munge and
# cred/munge plugins take the daemon's socket from `AuthInfo=socket=PATH` in slurm.conf (see
# slurm.conf(5), AuthInfo), so a private munged (own key, socket, PID, log and seed files in DIR)
# serves this cluster alone, and neither a system munged nor its key is read, started or changed.
# munged only asks that the socket's directory be reachable by every user (mode 0755).
#
# Installing the packages is the one change outside DIR: `apt-get install slurmctld slurmd
# slurm-client munge` (as root, only when a command is missing). Their postinst scripts create
# /etc/munge/munge.key when there is none and, on machines whose policy lets apt start services,
# may start the system's munge service; this script neither uses nor stops them.
set -euo pipefail

PACKAGES=(slurmctld slurmd slurm-client munge)
COMMANDS=(munged munge unmunge slurmctld slurmd sinfo squeue sbatch srun scontrol scancel)
PARTITION=debug
CANNOT_START=3

die() {
    echo "slurm_local: $*" >&2
    exit 1
}

cannot_start() {
    echo "slurm_local: cannot start SLURM here: $*" >&2
    exit "$CANNOT_START"
}

missing_commands() {
    local name
    for name in "${COMMANDS[@]}"; do
        command -v "$name" >/dev/null 2>&1 || echo "$name"
    done
}

install_packages() {
    local missing log
    missing=$(missing_commands | tr '\n' ' ')
    [ -z "$missing" ] && return 0
    [ "$(id -u)" -eq 0 ] || cannot_start "missing ${missing}and installing them needs root"
    command -v apt-get >/dev/null 2>&1 || cannot_start "missing ${missing}and there is no apt-get"
    log=$(mktemp /tmp/slurm_local-apt.XXXXXX.log)
    echo "slurm_local: installing ${PACKAGES[*]} (log: $log)" >&2
    export DEBIAN_FRONTEND=noninteractive
    # A fresh image may have no package lists yet: update once and try again.
    if ! apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >"$log" 2>&1; then
        if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"; } >>"$log" 2>&1; then
            cannot_start "apt-get could not install ${PACKAGES[*]} (no network to the package mirror?); see $log"
        fi
    fi
    missing=$(missing_commands | tr '\n' ' ')
    [ -z "$missing" ] || cannot_start "still missing ${missing}after apt-get install; see $log"
    rm -f "$log"
}

free_port() {
    "${PYTHON:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# PID in DIR/NAME.pid if that process is still the one this cluster started: its command line
# or environment names DIR (munged is given paths in DIR, the SLURM daemons SLURM_CONF).
our_pid() {
    local dir=$1 name=$2 pid
    [ -s "$dir/$name.pid" ] || return 1
    pid=$(tr -d '[:space:]' <"$dir/$name.pid")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    if tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/" ||
        tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "SLURM_CONF=$dir/slurm.conf"; then
        echo "$pid"
        return 0
    fi
    return 1
}

wait_for() {  # wait_for SECONDS COMMAND...: poll every 0.2 s until COMMAND succeeds
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

node_idle() {
    [ "$(sinfo -h -N -n "$NODE" -o %t 2>/dev/null)" = "idle" ]
}

write_config() {
    local dir=$1 ctld_port=$2 slurmd_port=$3
    cat >"$dir/slurm.conf" <<EOF
# Written by tools/slurm_local.sh: a one-node cluster whose files all live in $dir.
ClusterName=freqlat-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
PlugStackConfig=$dir/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=sched_min_interval=0,batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
EnforcePartLimits=ALL
KillWait=5
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    : >"$dir/plugstack.conf"
}

start_munge() {
    local dir=$1
    mkdir -p "$dir/munge"
    chmod 0755 "$dir" "$dir/munge"
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile="$dir/munge/munge.key"
    else
        dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    fi
    chmod 0400 "$dir/munge/munge.key"
    munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" \
        --seed-file="$dir/munge/munged.seed" ||
        fail "$dir" "munged did not start"
    munge -n -S "$dir/munge/munge.socket" | unmunge -S "$dir/munge/munge.socket" >/dev/null ||
        fail "$dir" "munged does not answer on $dir/munge/munge.socket"
}

fail() {
    local dir=$1 name
    shift
    for name in munged slurmctld slurmd; do
        if [ -s "$dir/$name.log" ]; then
            echo "--- $dir/$name.log (last lines)" >&2
            tail -n 15 "$dir/$name.log" >&2
        fi
    done
    stop "$dir" >/dev/null 2>&1 || true
    die "$*"
}

start() {
    local dir=${1:-} ctld_port slurmd_port
    [ "$(id -u)" -eq 0 ] || cannot_start "slurmd must run as root (this is uid $(id -u))"
    install_packages
    NODE=$(hostname -s)
    getent hosts "$NODE" >/dev/null ||
        cannot_start "the host name $NODE does not resolve (jobs reach their first node by name)"
    if [ -z "$dir" ]; then
        dir=$(mktemp -d /tmp/freqlat-slurm.XXXXXX)
    fi
    mkdir -p "$dir/state" "$dir/spool"
    dir=$(cd "$dir" && pwd)
    [ ! -e "$dir/slurm.conf" ] || die "$dir already holds a slurm.conf; give an empty directory"
    ctld_port=$(free_port)
    slurmd_port=$(free_port)
    [ "$ctld_port" != "$slurmd_port" ] || slurmd_port=$(free_port)
    write_config "$dir" "$ctld_port" "$slurmd_port"
    export SLURM_CONF=$dir/slurm.conf
    start_munge "$dir"
    slurmctld || fail "$dir" "slurmctld did not start"
    wait_for 30 our_pid "$dir" slurmctld >/dev/null || fail "$dir" "slurmctld did not stay up"
    slurmd || fail "$dir" "slurmd did not start"
    wait_for 30 our_pid "$dir" slurmd >/dev/null || fail "$dir" "slurmd did not stay up"
    wait_for 60 node_idle || fail "$dir" "node $NODE did not become idle: $(sinfo -h -N -o '%t %E' 2>&1)"
    echo "export SLURM_CONF=$dir/slurm.conf"
}

stop_daemons() {  # stop_daemons DIR NAME...: SIGTERM to each still running, SIGKILL after 20 s
    local dir=$1 name pid pids=()
    shift
    for name in "$@"; do
        if pid=$(our_pid "$dir" "$name"); then
            kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
        fi
    done
    for pid in "${pids[@]}"; do
        if ! wait_for 20 eval "[ ! -d /proc/$pid ]"; then
            echo "slurm_local: process $pid ignored SIGTERM; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

stop() {
    local dir=${1:?usage: slurm_local.sh stop DIR} jobs
    dir=$(cd "$dir" && pwd)
    export SLURM_CONF=$dir/slurm.conf
    if our_pid "$dir" slurmctld >/dev/null; then
        jobs=$(squeue -h -o %A 2>/dev/null || true)
        if [ -n "$jobs" ]; then
            # shellcheck disable=SC2086 # one argument per job id
            scancel $jobs 2>/dev/null || true
            wait_for 30 eval '[ -z "$(squeue -h -o %A 2>/dev/null)" ]' ||
                echo "slurm_local: jobs still listed after scancel: $(squeue -h 2>&1)" >&2
        fi
    fi
    stop_daemons "$dir" slurmd slurmctld munged
}

case ${1:-} in
start) start "${2:-}" ;;
stop) stop "${2:-}" ;;
*)
    echo "usage: $0 start [DIR] | stop DIR" >&2
    exit 2
    ;;
esac
