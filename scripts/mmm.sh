#!/bin/sh
# mmm.sh: the original framework's wrapper, for mmm's binaries.
#
#   mmm.sh scheduler <mmm.toml|mmm.properties> -c <consumer.properties> -p <producer.properties>
#   mmm.sh add <count> [--cpus C --mem M ...] | status | delete <id>... | start <id>... | stop <id>...
#
# The binaries are looked up in $MMM_HOME/bin (default: the directory above
# this script, as in the unpacked package), then on PATH. The CLI reaches the
# REST API at $MMM_API (e.g. http://scheduler-host:7000/api).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
MMM_HOME=${MMM_HOME:-$(dirname "$here")}

find_bin() {
    if [ -x "$MMM_HOME/bin/$1" ]; then
        echo "$MMM_HOME/bin/$1"
    elif command -v "$1" >/dev/null 2>&1; then
        command -v "$1"
    else
        echo "mmm.sh: $1 not found in $MMM_HOME/bin or on PATH (set MMM_HOME)" >&2
        exit 2
    fi
}

usage() {
    echo "usage: mmm.sh scheduler <config> -c <consumer.properties> -p <producer.properties>" >&2
    echo "       mmm.sh add <count> | status | delete <id>... | start <id>... | stop <id>... [CLI options]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
command=$1
shift
case "$command" in
    scheduler)
        # exec: the scheduler's exit code (1: refused or failed) reaches
        # systemd or Marathon unchanged.
        exec "$(find_bin mmm-scheduler)" "$@"
        ;;
    add | status | delete | start | stop)
        exec "$(find_bin mmm-cli)" "$command" "$@"
        ;;
    help | -h | --help)
        usage
        ;;
    *)
        echo "mmm.sh: unknown command '$command'" >&2
        usage
        ;;
esac
