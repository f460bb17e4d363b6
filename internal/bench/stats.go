package bench

import (
	"fmt"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range: 1 µs to 100 s with three significant digits. Latencies
// are recorded in nanoseconds; below a microsecond nothing on a network
// path is worth telling apart.
const (
	histLowest  = int64(time.Microsecond)
	histHighest = int64(100 * time.Second)
	histDigits  = 3
)

// maxShards caps the number of histograms; each costs about 150 KB.
const maxShards = 8

// shardedHist spreads recording over a few mutex-guarded HDR histograms so
// that many receivers record without contending on one lock. Callers
// record a whole batch under one lock.
type shardedHist struct {
	shards []histShard
}

type histShard struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
	_  [40]byte // keep shards on separate cache lines
}

func newShardedHist(n int) *shardedHist {
	n = max(1, min(n, maxShards))
	s := &shardedHist{shards: make([]histShard, n)}
	for i := range s.shards {
		s.shards[i].h = hdrhistogram.New(histLowest, histHighest, histDigits)
	}
	return s
}

// record adds values (nanoseconds) to the shard chosen by key.
func (s *shardedHist) record(key int, values []int64) {
	sh := &s.shards[key%len(s.shards)]
	sh.mu.Lock()
	for _, v := range values {
		// Values outside the range are clamped, not lost: a message that
		// took longer than the histogram's top still counts.
		_ = sh.h.RecordValue(min(max(v, histLowest), histHighest))
	}
	sh.mu.Unlock()
}

// merged returns one histogram of everything recorded.
func (s *shardedHist) merged() *hdrhistogram.Histogram {
	all := hdrhistogram.New(histLowest, histHighest, histDigits)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		all.Merge(sh.h)
		sh.mu.Unlock()
	}
	return all
}

// Latency summarises a distribution of durations, in microseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_us"`
	P90   float64 `json:"p90_us"`
	P99   float64 `json:"p99_us"`
	P999  float64 `json:"p99_9_us"`
	Max   float64 `json:"max_us"`
	Mean  float64 `json:"mean_us"`
}

func summarize(h *hdrhistogram.Histogram) Latency {
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	return Latency{
		Count: h.TotalCount(),
		P50:   us(h.ValueAtQuantile(50)),
		P90:   us(h.ValueAtQuantile(90)),
		P99:   us(h.ValueAtQuantile(99)),
		P999:  us(h.ValueAtQuantile(99.9)),
		Max:   us(h.Max()),
		Mean:  h.Mean() / 1e3,
	}
}

// maxErrorSamples bounds the distinct error messages a report keeps.
const maxErrorSamples = 10

// errorLog counts errors and keeps the first few distinct messages.
type errorLog struct {
	mu      sync.Mutex
	count   uint64
	samples []string
	seen    map[string]bool
}

func (e *errorLog) add(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.count++
	if e.seen == nil {
		e.seen = make(map[string]bool)
	}
	if len(e.samples) < maxErrorSamples && !e.seen[msg] {
		e.seen[msg] = true
		e.samples = append(e.samples, msg)
	}
}

func (e *errorLog) snapshot() (uint64, []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.count, append([]string(nil), e.samples...)
}
