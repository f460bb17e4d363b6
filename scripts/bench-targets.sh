#!/bin/sh
# bench-targets.sh runs the performance measurements of docs/performance.md:
# a server pinned to one CPU, "messager bench" pinned to another, each
# measurement RUNS times (default 3) against a fresh server, the median
# printed. JSON reports of every run are kept in OUT.
#
#   scripts/bench-targets.sh [throughput|efficiency|latency|scale|group|presence|all]
#
# Environment: MESSAGER (binary, default "messager" on PATH), SERVER_CPU
# (default 0), BENCH_CPU (default 1), RUNS (default 3), OUT (default
# bench-results), PORT (default 18555), DURATION (default 10s), SESSIONS
# (default 19000), HOLD (default 35s: long enough for every idle session
# to get one CHECK at the server's default 30 s interval).
#
# The group target runs messager's group fan-out and the same load
# against nats-server side by side, a messager run and a NATS run in turn,
# and prints the medians and their ratio. GROUP_SIZES (default "100
# 1000") are the members; NATS_SERVER is the nats-server binary (default:
# the one on PATH, else "go install github.com/nats-io/nats-server/v2@latest"),
# NATSREF the reference load (default: built from scripts/natsref), and
# NATS_PORT its port (default 18556). The presence target takes
# WATCHERS (default 10000), WATCH (100), CHURN (500 logins and as many
# logouts a second) and PRESENCE_PAIRS (10 relay pairs: the relay fills
# the bench's core either way, and fewer pairs keep the watchers' and the
# churn's turns on it short).
#
# A run in which other processes took more than MAX_OTHERS (default 0.1)
# of the server's or the bench's CPU is kept as NAME-I.disturbed-K.json
# and run again, up to RETRIES (default 3) times; the last try counts.
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
GROUP_SIZES=${GROUP_SIZES:-100 1000}
NATS_PORT=${NATS_PORT:-18556}
WATCHERS=${WATCHERS:-10000}
WATCH=${WATCH:-100}
CHURN=${CHURN:-500}
PRESENCE_PAIRS=${PRESENCE_PAIRS:-10}
MAX_OTHERS=${MAX_OTHERS:-0.1}
RETRIES=${RETRIES:-3}

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

# Every bench user of every target: pairs, idle and watching sessions,
# the largest group, the churning users.
largest_group=0
for n in $GROUP_SIZES; do
	[ "$n" -le "$largest_group" ] || largest_group=$n
done
most_sessions=$SESSIONS
[ "$WATCHERS" -le "$most_sessions" ] || most_sessions=$WATCHERS
"$MESSAGER" bench --write-users "$work/user.csv" --pairs "$PAIRS" --sessions "$most_sessions" \
	--group-size "$largest_group" --presence --churn "$CHURN" >/dev/null

# start_server [SERVE-FLAGS...] starts a fresh server pinned to SERVER_CPU
# and waits until it logs that it listens; it sets server_pid and
# fingerprint.
start_server() {
	rm -f "$work/server.log"
	taskset -c "$SERVER_CPU" "$MESSAGER" serve --listen "127.0.0.1:$PORT" \
		--users "$work/user.csv" --cert "$work/cert.pem" --key "$work/key.pem" \
		--log-format json "$@" 2>"$work/server.log" &
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
		measure_once "$name" "$i" "" "$@"
		i=$((i + 1))
	done
}

# measure_once NAME I SERVE-FLAGS BENCH-FLAGS...: run I of NAME against a
# fresh server started with SERVE-FLAGS (one word list, may be empty),
# again while other processes disturbed it.
measure_once() {
	name=$1 i=$2 serve_flags=$3
	shift 3
	try=0
	while :; do
		# shellcheck disable=SC2086 # SERVE-FLAGS is a word list
		start_server $serve_flags
		echo "bench-targets: $name, run $i of $RUNS" >&2
		taskset -c "$BENCH_CPU" "$MESSAGER" bench --server "127.0.0.1:$PORT" \
			--server-pid "$server_pid" --fingerprint "$fingerprint" --json "$@" \
			>"$OUT/$name-$i.json" || echo "bench-targets: $name run $i reported failures (see $OUT/$name-$i.json)" >&2
		stop_server
		disturbed "$name-$i" "$try" || break
		try=$((try + 1))
	done
}

# disturbed RUN TRY: whether other processes took more than MAX_OTHERS of
# the server's or the bench's CPUs in RUN (then kept aside) and TRY is
# below RETRIES.
disturbed() {
	others=$(jq -r '[.bench.others_share // 0, .server_usage.others_share // 0] | max' "$OUT/$1.json" 2>/dev/null || echo 0)
	if awk -v o="$others" -v m="$MAX_OTHERS" 'BEGIN { exit !(o > m) }' && [ "$2" -lt "$RETRIES" ]; then
		mv "$OUT/$1.json" "$OUT/$1.disturbed-$2.json"
		echo "bench-targets: $1 disturbed (others took $others of a pinned CPU), running it again" >&2
		return 0
	fi
	return 1
}

# nats_tools finds nats-server and the reference load, installing and
# building them when needed.
nats_tools() {
	if [ -z "${NATS_SERVER:-}" ]; then
		NATS_SERVER=$(command -v nats-server || true)
	fi
	if [ -z "$NATS_SERVER" ]; then
		echo "bench-targets: installing nats-server (go install github.com/nats-io/nats-server/v2@latest)" >&2
		GOBIN="$work/bin" go install github.com/nats-io/nats-server/v2@latest
		NATS_SERVER=$work/bin/nats-server
	fi
	if [ -z "${NATSREF:-}" ]; then
		(cd "$(dirname "$0")/.." && go build -o "$work/natsref" ./scripts/natsref)
		NATSREF=$work/natsref
	fi
	"$MESSAGER" cert --cert "$work/nats-cert.pem" --key "$work/nats-key.pem" --host 127.0.0.1 >/dev/null 2>&1
	cat >"$work/nats.conf" <<-EOF
		listen: "127.0.0.1:$NATS_PORT"
		tls {
		  cert_file: "$work/nats-cert.pem"
		  key_file: "$work/nats-key.pem"
		}
	EOF
	"$NATS_SERVER" --version >"$OUT/nats-server-version.txt"
}

# measure_nats NAME I NATSREF-FLAGS...: run I against a fresh nats-server
# pinned like messager's server, again while other processes disturbed it.
measure_nats() {
	name=$1 i=$2
	shift 2
	try=0
	while :; do
		measure_nats_once "$name" "$i" "$@"
		disturbed "$name-$i" "$try" || break
		try=$((try + 1))
	done
}

measure_nats_once() {
	name=$1 i=$2
	shift 2
	rm -f "$work/nats.log"
	taskset -c "$SERVER_CPU" "$NATS_SERVER" -c "$work/nats.conf" 2>"$work/nats.log" &
	server_pid=$!
	tries=0
	until grep -q 'Server is ready' "$work/nats.log" 2>/dev/null; do
		tries=$((tries + 1))
		if [ "$tries" -gt 100 ] || ! kill -0 "$server_pid" 2>/dev/null; then
			echo "bench-targets: nats-server did not start:" >&2
			cat "$work/nats.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "bench-targets: $name, run $i of $RUNS" >&2
	taskset -c "$BENCH_CPU" "$NATSREF" --server "127.0.0.1:$NATS_PORT" --server-pid "$server_pid" \
		--ca "$work/nats-cert.pem" --json "$@" \
		>"$OUT/$name-$i.json" || echo "bench-targets: $name run $i reported failures (see $OUT/$name-$i.json)" >&2
	stop_server
}

# ratio A B: A / B to two decimals, or n/a.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'
}

# median NAME JQ-EXPRESSION: the median over the runs of NAME.
median() {
	for f in "$OUT/$1"-[0-9].json "$OUT/$1"-[0-9][0-9].json; do
		[ ! -e "$f" ] || jq -r "$2" "$f"
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
	for f in "$OUT/$1"-[0-9].json "$OUT/$1"-[0-9][0-9].json; do
		[ ! -e "$f" ] || jq -r --arg f "$f" '.warnings // [] | .[] | "   warning (\($f)): \(.)"' "$f"
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
	for f in "$OUT"/scale-[0-9].json; do
		stopped=$(jq -r '.idle.stopped // empty' "$f")
		[ -z "$stopped" ] || echo "   $f: $stopped"
	done
	warnings scale
}

group() {
	nats_tools
	for n in $GROUP_SIZES; do
		# A group holds at most 500 members by default; the sender is one.
		serve_flags="--max-members $((n + 1))"
		i=1
		while [ "$i" -le "$RUNS" ]; do
			measure_once "group-$n" "$i" "$serve_flags" --group-size "$n" --size 100 --window 64 \
				--duration "$DURATION" --warmup 2s
			measure_nats "nats-$n" "$i" --subscribers "$n" --size 100 --window 64 \
				--duration "$DURATION" --warmup 2s
			i=$((i + 1))
		done
		m_rate=$(median "group-$n" '.group.deliveries_per_s | floor')
		n_rate=$(median "nats-$n" '.group.deliveries_per_s | floor')
		m_cpu=$(median "group-$n" '.server_usage.cpu_per_msg_us * 1000 | round / 1000')
		n_cpu=$(median "nats-$n" '.server_usage.cpu_per_msg_us * 1000 | round / 1000')
		echo "5. group fan-out to $n members (1 sender, 100 B, window 64, $DURATION), median of $RUNS:"
		echo "   deliveries/s           messager $m_rate, nats $n_rate: $(ratio "$m_rate" "$n_rate")x   (target >= 3)"
		echo "   server CPU us/delivery messager $m_cpu, nats $n_cpu: $(ratio "$m_cpu" "$n_cpu")x   (target <= 0.25)"
		echo "   lost, out of order     messager $(median "group-$n" '.lost'), $(median "group-$n" '.out_of_order'); nats $(median "nats-$n" '.lost'), $(median "nats-$n" '.out_of_order')   (target 0, 0)"
		echo "   members in another order $(median "group-$n" '.group.order_differs')   (target 0)"
		echo "   latency p99 us         messager $(median "group-$n" '.latency.p99_us | floor'), nats $(median "nats-$n" '.latency.p99_us | floor')"
		echo "   bench CPU utilization  messager $(median "group-$n" '.bench.utilization * 100 | round / 100'), nats $(median "nats-$n" '.bench.utilization * 100 | round / 100')   (near 1: the load may be the limit)"
		warnings "group-$n"
		warnings "nats-$n"
	done
}

presence() {
	measure presence --presence --sessions "$WATCHERS" --watch "$WATCH" --churn "$CHURN" \
		--pairs "$PRESENCE_PAIRS" --size 100 --window 64 --duration "$DURATION" --warmup 2s
	echo "6. presence ($WATCHERS sessions x $WATCH watches, $CHURN logins + $CHURN logouts/s, $PRESENCE_PAIRS relay pairs, $DURATION per phase), median of $RUNS:"
	echo "   logins/s, logouts/s    $(median presence '.presence.logins_per_s | floor'), $(median presence '.presence.logouts_per_s | floor')   (asked $CHURN)"
	echo "   PRESENCE lines/s       $(median presence '.presence.presence_lines_per_s | floor') carrying $(median presence '.presence.presence_names_per_s | floor') names/s"
	echo "   delay p50 / p99 / max ms $(median presence '.presence.delay.p50_us / 1000 | floor') / $(median presence '.presence.delay.p99_us / 1000 | floor') / $(median presence '.presence.delay.max_us / 1000 | floor')"
	echo "   watchers always right  $(median presence '.presence.correct_share * 10000 | round / 10000')   (target 1: right within 1.5 s)"
	echo "   watchers right at end  $(median presence '.presence.final_share * 10000 | round / 10000')   (target 1)"
	echo "   server bytes/entry     $(median presence '.presence.server_bytes_per_watch_entry | floor')   (target <= 64; $(median presence '.presence.server_bytes_per_watch_entry_after_churn | floor') after the churn)"
	echo "   relay with/without     $(median presence '.presence.relay_ratio * 100 | round / 100')   (target >= 0.8; $(median presence '.presence.churn.relay_msgs_per_s | floor') vs $(median presence '.presence.quiet.relay_msgs_per_s | floor') msgs/s)"
	echo "   server-bound estimate  $(median presence '.presence.server_bound_relay_ratio * 100 | round / 100')   (the share of the server's core the churn leaves to the relay; the churn took $(median presence '.presence.churn_server_cpu * 100 | round / 100') cores)"
	echo "   server CPU cores       $(median presence '.presence.quiet.server_cpu * 100 | round / 100') without churn, $(median presence '.presence.churn.server_cpu * 100 | round / 100') with it"
	echo "   bench CPU cores        $(median presence '.presence.quiet.bench_cpu * 100 | round / 100') without churn, $(median presence '.presence.churn.bench_cpu * 100 | round / 100') with it"
	warnings presence
}

case "${1:-all}" in
throughput | efficiency | latency | scale | group | presence) "$1" ;;
all)
	throughput
	efficiency
	latency
	scale
	group
	presence
	;;
*)
	echo "usage: $0 [throughput|efficiency|latency|scale|group|presence|all]" >&2
	exit 2
	;;
esac
