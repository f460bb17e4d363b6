package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/messager/messager/internal/server"
)

func TestPresence(t *testing.T) {
	cfg := Config{Pairs: 1, Sessions: 6, Presence: true, Watch: 5, Churn: 10, ChurnUsers: 40}
	// A short liveness round, so that the memory reads do not wait long.
	srv := startServerFor(t, cfg, func(c *server.Config) { c.CheckInterval = 100 * time.Millisecond })
	base := baseConfig(srv, 1)
	base.Sessions, base.Presence, base.Watch, base.Churn, base.ChurnUsers = 6, true, 5, 10, 40
	base.Duration, base.Warmup = 700*time.Millisecond, 100*time.Millisecond
	base.SettleWait = 2 * time.Second
	rep, err := Run(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Presence
	if rep.Mode != ModePresence || p == nil {
		t.Fatalf("mode %q, presence %v", rep.Mode, p)
	}
	if rep.Errors != 0 || rep.Lost != 0 || rep.OutOfOrder != 0 {
		t.Errorf("errors %d %q, lost %d, out of order %d: want none", rep.Errors, rep.ErrorList, rep.Lost, rep.OutOfOrder)
	}
	if p.WatchEntries != 30 || p.FinalCorrect != 6 || p.FinalShare != 1 {
		t.Errorf("entries %d, final check %d right (%.2f): want 30 entries, all 6 right", p.WatchEntries, p.FinalCorrect, p.FinalShare)
	}
	// 10 logins and 10 logouts a second for 0.7 s.
	if p.Logins < 3 || p.Logouts < 3 || p.LoginsPerSec > 20 || p.ChurnFailed != 0 {
		t.Errorf("%d logins, %d logouts (%.1f/s), %d failed: want about 7 each", p.Logins, p.Logouts, p.LoginsPerSec, p.ChurnFailed)
	}
	// Each watcher watches 5 of 40 users: some of the changes reach some
	// watchers, within the server's rounds of half a second.
	if p.Lines == 0 || p.Names < p.Lines || p.Delay.Count == 0 || p.Delay.Max > 1.5e6 {
		t.Errorf("%d lines, %d names, delay %+v: want lines timed under 1.5 s", p.Lines, p.Names, p.Delay)
	}
	if p.Samples == 0 || p.EntriesChecked == 0 || p.CorrectShare != 1 || p.EntriesWrong != 0 {
		t.Errorf("%d checks of %d entries, %d wrong, correct share %.2f: want every check right", p.Samples, p.EntriesChecked, p.EntriesWrong, p.CorrectShare)
	}
	// Too few logins for the server to settle: read, and said so.
	if p.MemorySettled || p.RSSBefore == 0 || p.RSSWatched == 0 || p.RSSAfter == 0 || !strings.Contains(strings.Join(rep.Warnings, "\n"), "without a settle") {
		t.Errorf("memory %d, %d, %d, settled %v, warnings %q: want three reads, unsettled", p.RSSBefore, p.RSSWatched, p.RSSAfter, p.MemorySettled, rep.Warnings)
	}
	if p.Quiet.RelayMsgsPerSec <= 0 || p.Churned.RelayMsgsPerSec <= 0 || p.RelayRatio <= 0 || rep.MsgsPerSec != p.Churned.RelayMsgsPerSec {
		t.Errorf("relay %.0f then %.0f msgs/s (ratio %.2f), report %.0f: want both phases measured", p.Quiet.RelayMsgsPerSec, p.Churned.RelayMsgsPerSec, p.RelayRatio, rep.MsgsPerSec)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"lines/s carrying", "delay", "bytes per watch entry", "without churn", "6 of 6 right"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Error(err)
	}
}

func TestPresenceWatchLimit(t *testing.T) {
	cfg := Config{Pairs: 1, Sessions: 2, Presence: true, Watch: 5, Churn: 10, ChurnUsers: 20}
	srv := startServerFor(t, cfg, func(c *server.Config) { c.MaxWatch = 3 })
	base := baseConfig(srv, 1)
	base.Sessions, base.Presence, base.Watch, base.Churn, base.ChurnUsers = 2, true, 5, 10, 20
	_, err := Run(context.Background(), base)
	if err == nil || !strings.Contains(err.Error(), "--max-watch 5") {
		t.Fatalf("err = %v, want one naming serve --max-watch 5", err)
	}
}

func TestChurnIndex(t *testing.T) {
	r := &presenceRun{churnPrefix: []byte("b-c-"), users: make([]churnUser, 12)}
	for _, tt := range []struct {
		name string
		want int
		ok   bool
	}{
		{"b-c-000001", 0, true},
		{"b-c-000012", 11, true},
		{"b-c-000013", 0, false},
		{"b-c-000000", 0, false},
		{"b-c-", 0, false},
		{"b-i-000001", 0, false},
		{"b-c-00x001", 0, false},
	} {
		got, ok := r.churnIndex([]byte(tt.name))
		if got != tt.want || ok != tt.ok {
			t.Errorf("churnIndex(%q) = %d, %v; want %d, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestChurnShare(t *testing.T) {
	// Without the churn the relay took 0.8 cores for 2 M msgs/s; with it
	// 0.9 cores went on 0.5 M msgs/s, of which 0.2 for the relay.
	quiet := PresencePhase{RelayMsgsPerSec: 2e6, ServerCPU: 0.8}
	churned := PresencePhase{RelayMsgsPerSec: 0.5e6, ServerCPU: 0.9}
	cpu, ratio := churnShare(quiet, churned, 1)
	if cpu < 0.699 || cpu > 0.701 || ratio < 0.299 || ratio > 0.301 {
		t.Errorf("churnShare = %.3f cores, %.3f: want 0.7, 0.3", cpu, ratio)
	}
	if _, ratio := churnShare(quiet, churned, 0); ratio != 0 {
		t.Errorf("ratio %.3f without known cores, want 0", ratio)
	}
	if cpu, ratio := churnShare(PresencePhase{}, churned, 1); cpu != 0 || ratio != 0 {
		t.Errorf("churnShare without a quiet phase = %v, %v", cpu, ratio)
	}
}
