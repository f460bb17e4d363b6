#!/bin/sh
# bench-targets.sh runs the performance measurements of docs/performance.md:
# a server pinned to one CPU, "messager bench" pinned to another, each
# measurement RUNS times (default 3) against a fresh server, the median
# printed. JSON reports of every run are kept in OUT.
#
#   scripts/bench-targets.sh [throughput|efficiency|latency|scale|all]
#
# Environment: MESSAGER (binary, default "messager" on PATH), SERVER_CPU
# (default 0), BENCH_CPU (default 1), RUNS (default 3), OUT (default
# bench-results), PORT (default 18555), DURATION (default 10s), SESSIONS
# (default 19000), HOLD (default 35s: long enough for every idle session
# to get one CHECK at the server's default 30 s interval).
set -eu

MESSAGER=${MESSAGER:-messager}
SERVER_CPU=${SERVER_CPU:-0}
BENCH_CPU=${BENCH_CPU:-1}
RUNS=${RUNS:-3}
OUT=${OUT:-bench-results}
PORT=${PORT:-18555}
DURATION=${DURATION:-10s}
SESSIONS=${SESSIONS:-19000}
HOLD=${HOLD:-35s}
PAIRS=100

work=$(mktemp -d)
server_pid=
cleanup() {
	if [ -n "$server_pid" ]; then
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT INT TERM
mkdir -p "$OUT"

"$MESSAGER" bench --write-users "$work/user.csv" --pairs "$PAIRS" --sessions "$SESSIONS" >/dev/null

# start_server starts a fresh server pinned to SERVER_CPU and waits until
# it logs that it listens; it sets server_pid and fingerprint.
start_server() {
	rm -f "$work/server.log"
	taskset -c "$SERVER_CPU" "$MESSAGER" serve --listen "127.0.0.1:$PORT" \
		--users "$work/user.csv" --cert "$work/cert.pem" --key "$work/key.pem" \
		--log-format json 2>"$work/server.log" &
	server_pid=$!
	tries=0
	until grep -q '"msg":"listening"' "$work/server.log" 2>/dev/null; do
		tries=$((tries + 1))
		if [ "$tries" -gt 100 ] || ! kill -0 "$server_pid" 2>/dev/null; then
			echo "bench-targets: the server did not start:" >&2
			cat "$work/server.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	fingerprint=$(sed -n 's/.*"msg":"listening".*"fingerprint":"\([^"]*\)".*/\1/p' "$work/server.log" | head -n 1)
}

stop_server() {
	kill -TERM "$server_pid"
	wait "$server_pid" || true
	server_pid=
}

# measure NAME BENCH-FLAGS...: RUNS runs, each against a fresh server.
measure() {
	name=$1
	shift
	i=1
	while [ "$i" -le "$RUNS" ]; do
		start_server
		echo "bench-targets: $name, run $i of $RUNS" >&2
		taskset -c "$BENCH_CPU" "$MESSAGER" bench --server "127.0.0.1:$PORT" \
			--server-pid "$server_pid" --fingerprint "$fingerprint" --json "$@" \
			>"$OUT/$name-$i.json" || echo "bench-targets: $name run $i reported failures (see $OUT/$name-$i.json)" >&2
		stop_server
		i=$((i + 1))
	done
}

# median NAME JQ-EXPRESSION: the median over the runs of NAME.
median() {
	for f in "$OUT/$1"-*.json; do
		jq -r "$2" "$f"
	done | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "n/a" }'
}

throughput() {
	measure throughput --pairs "$PAIRS" --size 100 --window 64 --duration "$DURATION" --warmup 2s
	echo "1. throughput (100 pairs, 100 B, window 64, $DURATION), median of $RUNS:"
	echo "   delivered msgs/s       $(median throughput '.msgs_per_s | floor')   (target >= 1500000)"
	echo "   server CPU us/msg      $(median throughput '.server_usage.cpu_per_msg_us')   (target <= 0.5)"
	echo "   lost, out of order     $(median throughput '.lost'), $(median throughput '.out_of_order')   (target 0, 0)"
	echo "   bench CPU utilization  $(median throughput '.bench.utilization')   (near 1: the bench may be the limit)"
	echo "   server peak RSS        $(median throughput '.server_usage.peak_rss') bytes"
	warnings throughput
}

# warnings NAME: every run's warnings, e.g. a core shared with others.
warnings() {
	for f in "$OUT/$1"-*.json; do
		jq -r --arg f "$f" '.warnings // [] | .[] | "   warning (\($f)): \(.)"' "$f"
	done
}

efficiency() {
	measure efficiency --pairs "$PAIRS" --size 100 --rate 200000 --duration "$DURATION" --warmup 2s
	echo "2. efficiency (100 pairs, 200,000 msgs/s, $DURATION), median of $RUNS:"
	echo "   delivered msgs/s       $(median efficiency '.msgs_per_s | floor')"
	echo "   server CPU us/msg      $(median efficiency '.server_usage.cpu_per_msg_us')   (target <= 1.0)"
	echo "   bench msgs per write   $(median efficiency '.bench.msgs_per_write')   (near 1: messages rarely share a read)"
	echo "   send lag p99 us        $(median efficiency '.schedule_lag.p99_us')"
	warnings efficiency
}

latency() {
	measure latency --pairs "$PAIRS" --size 100 --rate 10000 --duration "$DURATION" --warmup 2s
	echo "3. latency (100 pairs, 10,000 msgs/s, $DURATION), median of $RUNS:"
	echo "   p50 / p99 / p99.9 us   $(median latency '.latency.p50_us') / $(median latency '.latency.p99_us') / $(median latency '.latency.p99_9_us')   (target p99 <= 500, p99.9 <= 2000)"
	echo "   send lag p99 / max us  $(median latency '.schedule_lag.p99_us') / $(median latency '.schedule_lag.max_us')"
	warnings latency
}

scale() {
	measure scale --sessions "$SESSIONS" --idle --hold "$HOLD" --probes 1000
	echo "4. scale ($SESSIONS idle sessions held $HOLD), median of $RUNS:"
	echo "   sessions opened        $(median scale '.idle.opened')   (target >= 19000)"
	echo "   server bytes/session   $(median scale '.idle.server_bytes_per_session | floor')   (target <= 20480)"
	echo "   probes relayed         $(median scale '.idle.probes_relayed') of $(median scale '.idle.probes_sent')"
	echo "   probe p99 us           $(median scale '.idle.probe_latency.p99_us')"
	for f in "$OUT"/scale-*.json; do
		stopped=$(jq -r '.idle.stopped // empty' "$f")
		[ -z "$stopped" ] || echo "   $f: $stopped"
	done
	warnings scale
}

case "${1:-all}" in
throughput | efficiency | latency | scale) "$1" ;;
all)
	throughput
	efficiency
	latency
	scale
	;;
*)
	echo "usage: $0 [throughput|efficiency|latency|scale|all]" >&2
	exit 2
	;;
esac
