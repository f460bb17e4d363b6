#!/bin/sh
# bench-targets.sh runs the performance measurements of docs/performance.md:
# a server pinned to one CPU, "messager bench" pinned to another, each
# measurement RUNS times (default 3) against a fresh server, the median
# printed. JSON reports of every run are kept in OUT.
#
#   scripts/bench-targets.sh [throughput|efficiency|latency|scale|group|presence|ws|cluster|all]
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
# The ws target runs the 1:1 load (100 pairs, 100 B, window 64) three
# ways in turn: messager over TLS, messager over its WebSocket, and
# nats-server's own WebSocket listener (NATS_WS_PORT, default 18557), and
# prints the medians and the ratios.
#
# The cluster target runs (a) a two-node nats-server cluster, routes on
# loopback (NATS_CLUSTER_PORT, default 18575, and the two ports after it),
# publishers on node A and subscribers on node B; (b) two messager nodes
# (serve --cluster-name, --cluster-listen, --routes, --cluster-secret;
# node B listens on CLUSTER_PORT, default 18565, routes on the two ports
# after it), senders on A and receivers on B; (c) the same messager
# cluster with every pair on node A, against one unclustered node. Both
# nodes of a cluster are pinned to SERVER_CPU, the load to BENCH_CPU, for
# nats and messager alike: the two nodes share one core, so their CPU
# per message together is what is compared. The script waits until each
# messager node has heard the other ("cluster node joined" in its log),
# then CLUSTER_SETTLE (default 2s) more; node A's count of the records
# and batches it sent B is kept as OUT/links-NAME-I.json.
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
NATS_WS_PORT=${NATS_WS_PORT:-18557}
CLUSTER_PORT=${CLUSTER_PORT:-18565}
NATS_CLUSTER_PORT=${NATS_CLUSTER_PORT:-18575}
CLUSTER_SETTLE=${CLUSTER_SETTLE:-2}

work=$(mktemp -d)
server_pid=
node_pids=
cleanup() {
	for p in $server_pid $node_pids; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
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
		websocket {
		  listen: "127.0.0.1:$NATS_WS_PORT"
		  tls {
		    cert_file: "$work/nats-cert.pem"
		    key_file: "$work/nats-key.pem"
		  }
		  compression: false
		}
	EOF
	# A cluster of two: node A takes clients on NATS_PORT, node B on
	# NATS_CLUSTER_PORT; each routes to the other on loopback.
	for node in a b; do
		if [ "$node" = a ]; then
			client=$NATS_PORT route=$((NATS_CLUSTER_PORT + 1)) peer=$((NATS_CLUSTER_PORT + 2))
		else
			client=$NATS_CLUSTER_PORT route=$((NATS_CLUSTER_PORT + 2)) peer=$((NATS_CLUSTER_PORT + 1))
		fi
		cat >"$work/nats-$node.conf" <<-EOF
			server_name: "bench-$node"
			listen: "127.0.0.1:$client"
			tls {
			  cert_file: "$work/nats-cert.pem"
			  key_file: "$work/nats-key.pem"
			}
			cluster {
			  name: "bench"
			  listen: "127.0.0.1:$route"
			  routes: ["nats-route://127.0.0.1:$peer"]
			}
		EOF
	done
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

# start_nats CONF: starts a nats-server pinned to SERVER_CPU with CONF and
# waits until it is ready; it sets nats_pid.
start_nats() {
	log=$work/$(basename "$1" .conf).log
	rm -f "$log"
	taskset -c "$SERVER_CPU" "$NATS_SERVER" -c "$1" 2>"$log" &
	nats_pid=$!
	tries=0
	until grep -q 'Server is ready' "$log" 2>/dev/null; do
		tries=$((tries + 1))
		if [ "$tries" -gt 100 ] || ! kill -0 "$nats_pid" 2>/dev/null; then
			echo "bench-targets: nats-server did not start:" >&2
			cat "$log" >&2
			exit 1
		fi
		sleep 0.1
	done
}

# measure_nats_once NAME I NATSREF-FLAGS...: one nats-server from
# nats.conf; the flags come after --server 127.0.0.1:NATS_PORT, so a
# --server among them wins (the WebSocket listener's port).
measure_nats_once() {
	name=$1 i=$2
	shift 2
	start_nats "$work/nats.conf"
	server_pid=$nats_pid
	echo "bench-targets: $name, run $i of $RUNS" >&2
	taskset -c "$BENCH_CPU" "$NATSREF" --server "127.0.0.1:$NATS_PORT" --server-pid "$server_pid" \
		--ca "$work/nats-cert.pem" --json "$@" \
		>"$OUT/$name-$i.json" || echo "bench-targets: $name run $i reported failures (see $OUT/$name-$i.json)" >&2
	stop_server
}

# measure_nats_cluster NAME I NATSREF-FLAGS...: run I against a fresh
# two-node nats-server cluster, publishers on node A and subscribers on
# node B, again while other processes disturbed it.
measure_nats_cluster() {
	name=$1 i=$2
	shift 2
	try=0
	while :; do
		start_nats "$work/nats-a.conf"
		pid_a=$nats_pid
		node_pids="$pid_a"
		start_nats "$work/nats-b.conf"
		pid_b=$nats_pid
		node_pids="$pid_a $pid_b"
		sleep "$CLUSTER_SETTLE"
		echo "bench-targets: $name, run $i of $RUNS" >&2
		taskset -c "$BENCH_CPU" "$NATSREF" --server "127.0.0.1:$NATS_PORT" --server-pid "$pid_a" \
			--server-b "127.0.0.1:$NATS_CLUSTER_PORT" --server-pid-b "$pid_b" \
			--ca "$work/nats-cert.pem" --json "$@" \
			>"$OUT/$name-$i.json" || echo "bench-targets: $name run $i reported failures (see $OUT/$name-$i.json)" >&2
		stop_nodes
		disturbed "$name-$i" "$try" || break
		try=$((try + 1))
	done
}

stop_nodes() {
	for p in $node_pids; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	node_pids=
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

# pairs_flags are the 1:1 load of the ws and cluster targets, the load of
# target 1.
pairs_flags() {
	echo "--pairs $PAIRS --size 100 --window 64 --duration $DURATION --warmup 2s"
}

ws() {
	nats_tools
	i=1
	while [ "$i" -le "$RUNS" ]; do
		# shellcheck disable=SC2046 # a word list
		measure_once ws-tls "$i" "" $(pairs_flags)
		# shellcheck disable=SC2046
		measure_once ws-ws "$i" "" --transport ws $(pairs_flags)
		# shellcheck disable=SC2046
		measure_nats nats-ws "$i" --server "127.0.0.1:$NATS_WS_PORT" --transport ws $(pairs_flags)
		i=$((i + 1))
	done
	t_rate=$(median ws-tls '.msgs_per_s | floor')
	w_rate=$(median ws-ws '.msgs_per_s | floor')
	n_rate=$(median nats-ws '.msgs_per_s | floor')
	t_cpu=$(median ws-tls '.server_usage.cpu_per_msg_us * 1000 | round / 1000')
	w_cpu=$(median ws-ws '.server_usage.cpu_per_msg_us * 1000 | round / 1000')
	n_cpu=$(median nats-ws '.server_usage.cpu_per_msg_us * 1000 | round / 1000')
	echo "7. WebSocket 1:1 relay ($PAIRS pairs, 100 B, window 64, $DURATION), median of $RUNS:"
	echo "   msgs/s                 messager tls $t_rate, messager ws $w_rate, nats ws $n_rate"
	echo "   messager ws / tls      $(ratio "$w_rate" "$t_rate")x   (target >= 0.6)"
	echo "   messager ws / nats ws  $(ratio "$w_rate" "$n_rate")x   (target >= 1.5)"
	echo "   server CPU us/msg      messager tls $t_cpu, messager ws $w_cpu, nats ws $n_cpu ($(ratio "$w_cpu" "$n_cpu")x nats ws)"
	echo "   lost, out of order     messager ws $(median ws-ws '.lost'), $(median ws-ws '.out_of_order'); nats ws $(median nats-ws '.lost'), $(median nats-ws '.out_of_order')   (target 0, 0)"
	echo "   bench CPU utilization  tls $(median ws-tls '.bench.utilization * 100 | round / 100'), ws $(median ws-ws '.bench.utilization * 100 | round / 100'), nats ws $(median nats-ws '.bench.utilization * 100 | round / 100')   (near 1: the load may be the limit)"
	warnings ws-tls
	warnings ws-ws
	warnings nats-ws
}

# start_node NAME PORT SERVE-FLAGS...: a messager node pinned to
# SERVER_CPU with the shared bench users, a certificate of its own and no
# admin socket (the nodes share the users' folder); it sets node_pid and
# node_fp once the node listens.
start_node() {
	# Not "name": the caller's run name must survive (sh has no locals).
	node=$1 port=$2
	shift 2
	log=$work/$node.log
	rm -f "$log"
	taskset -c "$SERVER_CPU" "$MESSAGER" serve --listen "127.0.0.1:$port" \
		--users "$work/user.csv" --cert "$work/$node-cert.pem" --key "$work/$node-key.pem" \
		--admin-socket off --log-format json --node-name "$node" "$@" 2>"$log" &
	node_pid=$!
	node_pids="$node_pids $node_pid"
	tries=0
	until grep -q '"msg":"listening"' "$log" 2>/dev/null; do
		tries=$((tries + 1))
		if [ "$tries" -gt 100 ] || ! kill -0 "$node_pid" 2>/dev/null; then
			echo "bench-targets: messager node $node did not start:" >&2
			cat "$log" >&2
			exit 1
		fi
		sleep 0.1
	done
	node_fp=$(sed -n 's/.*"msg":"listening".*"fingerprint":"\([^"]*\)".*/\1/p' "$log" | head -n 1)
}

# start_cluster: two messager nodes routed to each other, A on PORT and B
# on CLUSTER_PORT; it sets pid_a, fp_a, pid_b, fp_b.
start_cluster() {
	route_a=$((CLUSTER_PORT + 1)) route_b=$((CLUSTER_PORT + 2))
	start_node cluster-a "$PORT" --cluster-name bench --cluster-listen "127.0.0.1:$route_a" \
		--routes "nats-route://127.0.0.1:$route_b" --cluster-secret "$work/cluster.secret"
	pid_a=$node_pid fp_a=$node_fp
	start_node cluster-b "$CLUSTER_PORT" --cluster-name bench --cluster-listen "127.0.0.1:$route_b" \
		--routes "nats-route://127.0.0.1:$route_a" --cluster-secret "$work/cluster.secret"
	pid_b=$node_pid fp_b=$node_fp
	# Each node logs "cluster node joined" once it has heard the other.
	tries=0
	until grep -q '"msg":"cluster node joined"' "$work/cluster-a.log" 2>/dev/null &&
		grep -q '"msg":"cluster node joined"' "$work/cluster-b.log" 2>/dev/null; do
		tries=$((tries + 1))
		if [ "$tries" -gt 100 ]; then
			echo "bench-targets: the messager nodes did not meet:" >&2
			cat "$work/cluster-a.log" "$work/cluster-b.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	sleep "$CLUSTER_SETTLE"
}

# measure_cluster NAME I across|local BENCH-FLAGS...: run I against a
# fresh messager cluster: senders on A and receivers on B (across), or
# every pair on A (local); again while other processes disturbed it.
measure_cluster() {
	name=$1 i=$2 shape=$3
	shift 3
	try=0
	while :; do
		start_cluster
		echo "bench-targets: $name, run $i of $RUNS" >&2
		if [ "$shape" = across ]; then
			taskset -c "$BENCH_CPU" "$MESSAGER" bench --server "127.0.0.1:$PORT" --server-pid "$pid_a" \
				--fingerprint "$fp_a" --server-b "127.0.0.1:$CLUSTER_PORT" --server-pid-b "$pid_b" \
				--fingerprint-b "$fp_b" --json "$@" \
				>"$OUT/$name-$i.json" || echo "bench-targets: $name run $i reported failures (see $OUT/$name-$i.json)" >&2
		else
			taskset -c "$BENCH_CPU" "$MESSAGER" bench --server "127.0.0.1:$PORT" --server-pid "$pid_a" \
				--fingerprint "$fp_a" --json "$@" \
				>"$OUT/$name-$i.json" || echo "bench-targets: $name run $i reported failures (see $OUT/$name-$i.json)" >&2
		fi
		stop_nodes
		# Node A logs, as it stops, the records and batches (NATS
		# messages) it sent node B.
		grep '"msg":"cluster link closed"' "$work/cluster-a.log" >"$OUT/links-$name-$i.json" || true
		disturbed "$name-$i" "$try" || break
		try=$((try + 1))
	done
}

cluster() {
	nats_tools
	if ! "$MESSAGER" serve --help 2>&1 | grep -q -- --cluster-name; then
		echo "bench-targets: this messager has no serve --cluster-name: only the nats-server cluster is measured" >&2
		messager_cluster=
	else
		messager_cluster=1
		(umask 077 && "$MESSAGER" cluster secret >"$work/cluster.secret")
		chmod 600 "$work/cluster.secret"
	fi
	i=1
	while [ "$i" -le "$RUNS" ]; do
		# shellcheck disable=SC2046 # a word list
		measure_nats_cluster nats-cluster "$i" $(pairs_flags)
		if [ -n "$messager_cluster" ]; then
			# shellcheck disable=SC2046
			measure_cluster cluster-across "$i" across $(pairs_flags)
			# shellcheck disable=SC2046
			measure_cluster cluster-local "$i" local $(pairs_flags)
			# shellcheck disable=SC2046
			measure_once cluster-single "$i" "" $(pairs_flags)
		fi
		i=$((i + 1))
	done
	n_rate=$(median nats-cluster '.msgs_per_s | floor')
	n_cpu=$(median nats-cluster '.server_usage.cpu_per_msg_us * 1000 | round / 1000')
	echo "8. cluster 1:1 relay ($PAIRS pairs, 100 B, window 64, $DURATION; both nodes on CPU $SERVER_CPU, load on CPU $BENCH_CPU), median of $RUNS:"
	echo "   (a) nats, A to B       $n_rate msgs/s, $n_cpu us/msg both nodes (node A $(median nats-cluster '.server_usage.nodes[0].cpu_per_msg_us * 1000 | round / 1000'), node B $(median nats-cluster '.server_usage.nodes[1].cpu_per_msg_us * 1000 | round / 1000')), lost $(median nats-cluster '.lost')"
	if [ -z "$messager_cluster" ]; then
		echo "   (b), (c) messager      not measured: serve has no --cluster-name"
	else
		m_rate=$(median cluster-across '.msgs_per_s | floor')
		m_cpu=$(median cluster-across '.server_usage.cpu_per_msg_us * 1000 | round / 1000')
		l_rate=$(median cluster-local '.msgs_per_s | floor')
		s_rate=$(median cluster-single '.msgs_per_s | floor')
		echo "   (b) messager, A to B   $m_rate msgs/s, $m_cpu us/msg both nodes (node A $(median cluster-across '.server_usage.nodes[0].cpu_per_msg_us * 1000 | round / 1000'), node B $(median cluster-across '.server_usage.nodes[1].cpu_per_msg_us * 1000 | round / 1000')), lost $(median cluster-across '.lost'), CNT $(median cluster-across '.cnt')"
		echo "   (b) / (a) rate         $(ratio "$m_rate" "$n_rate")x   (target >= 2)"
		echo "   (b) / (a) CPU per msg  $(ratio "$m_cpu" "$n_cpu")x   (target <= 0.5)"
		echo "   (b) records per batch  $(median links-cluster-across '.records / .batches | floor') (A to B: $(median links-cluster-across '.records') records in $(median links-cluster-across '.batches') NATS messages)"
		echo "   (c) clustered, local   $l_rate msgs/s, $(median cluster-local '.server_usage.cpu_per_msg_us * 1000 | round / 1000') us/msg; one unclustered node $s_rate msgs/s, $(median cluster-single '.server_usage.cpu_per_msg_us * 1000 | round / 1000') us/msg"
		echo "   (c) clustered / single $(ratio "$l_rate" "$s_rate")x   (target >= 0.9)"
		warnings cluster-across
		warnings cluster-local
		warnings cluster-single
	fi
	warnings nats-cluster
}

case "${1:-all}" in
throughput | efficiency | latency | scale | group | presence | ws | cluster) "$1" ;;
all)
	throughput
	efficiency
	latency
	scale
	group
	presence
	ws
	cluster
	;;
*)
	echo "usage: $0 [throughput|efficiency|latency|scale|group|presence|ws|cluster|all]" >&2
	exit 2
	;;
esac
