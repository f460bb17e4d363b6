package bench

import (
	"os"
	"testing"
)

func TestReadProcSelf(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS == 0 || s.HWM < s.RSS {
		t.Errorf("memory RSS %d, HWM %d: want 0 < RSS <= HWM", s.RSS, s.HWM)
	}
	if _, err := readProc(-1); err == nil {
		t.Error("readProc(-1) succeeded")
	}
}

func TestStatusKB(t *testing.T) {
	status := []byte("Name:\tx\nVmHWM:\t    2048 kB\nVmRSS:\t  1024 kB\nBad:\tzz kB\n")
	tests := []struct {
		name string
		want uint64
	}{
		{"VmHWM:", 2048 * 1024},
		{"VmRSS:", 1024 * 1024},
		{"Bad:", 0},
		{"Missing:", 0},
	}
	for _, tt := range tests {
		if got := statusKB(status, tt.name); got != tt.want {
			t.Errorf("statusKB(%q) = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestProcFiles(t *testing.T) {
	open, limit, err := procFiles(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if open < 3 || limit < uint64(open) {
		t.Errorf("open %d, limit %d: want at least stdin, stdout and stderr, within the limit", open, limit)
	}
}

func TestCores(t *testing.T) {
	cpus, err := affinity(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(cpus) == 0 {
		t.Fatal("no CPUs in this process's affinity")
	}
	busy, err := coresBusy(cpus)
	if err != nil {
		t.Fatal(err)
	}
	if busy <= 0 {
		t.Errorf("CPUs %v busy %v since boot, want more", cpus, busy)
	}
	if !overlap([]int{0, 1}, []int{1}) || overlap([]int{0}, []int{1}) {
		t.Error("overlap is wrong")
	}
}
