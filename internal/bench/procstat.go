package bench

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// clockTicks is the unit of the CPU times in /proc/PID/stat. Linux fixes
// USER_HZ at 100 for user space on every architecture Go supports.
const clockTicks = 100

// procSample is what /proc says about a process at one moment.
type procSample struct {
	// CPU is user plus system time of all the process's threads.
	CPU time.Duration
	// RSS is the resident set now (VmRSS) and HWM its peak (VmHWM).
	RSS, HWM uint64
}

// readProc samples /proc/PID/stat and /proc/PID/status.
func readProc(pid int) (procSample, error) {
	var s procSample
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return s, fmt.Errorf("read server process statistics: %w", err)
	}
	// The command name in parentheses may hold spaces; fields follow the
	// last ')'. utime and stime are fields 14 and 15 of the line, so 12th
	// and 13th after the name.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("read server process statistics: malformed /proc/%d/stat", pid)
	}
	fields := bytes.Fields(stat[i+1:])
	if len(fields) < 13 {
		return s, fmt.Errorf("read server process statistics: short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseUint(string(fields[11]), 10, 64)
	stime, err2 := strconv.ParseUint(string(fields[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("read server process statistics: malformed times in /proc/%d/stat", pid)
	}
	s.CPU = time.Duration(utime+stime) * (time.Second / clockTicks)

	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return s, fmt.Errorf("read server process memory: %w", err)
	}
	s.RSS = statusKB(status, "VmRSS:")
	s.HWM = statusKB(status, "VmHWM:")
	return s, nil
}

// statusKB returns the value in bytes of a "Name:   123 kB" line of
// /proc/PID/status, or 0 when it is missing.
func statusKB(status []byte, name string) uint64 {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte(name))
		if !ok {
			continue
		}
		rest = bytes.TrimSpace(rest)
		rest = bytes.TrimSuffix(rest, []byte("kB"))
		kb, err := strconv.ParseUint(string(bytes.TrimSpace(rest)), 10, 64)
		if err != nil {
			return 0
		}
		return kb * 1024
	}
	return 0
}

// selfCPU returns the CPU time (user plus system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// raiseFileLimit lifts this process's soft limit on open files to the hard
// limit and returns the limit now in force. Children started later inherit
// it.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read open-file limit: %w", err)
	}
	if lim.Cur < lim.Max {
		want := lim
		want.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return lim.Cur, fmt.Errorf("raise open-file limit to %d: %w", lim.Max, err)
		}
		lim = want
	}
	return lim.Cur, nil
}

// procFiles returns how many files a process has open and its soft limit
// on open files, from /proc.
func procFiles(pid int) (open int, limit uint64, err error) {
	dir := "/proc/" + strconv.Itoa(pid)
	entries, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return 0, 0, fmt.Errorf("count server files: %w", err)
	}
	limits, err := os.ReadFile(dir + "/limits")
	if err != nil {
		return 0, 0, fmt.Errorf("read server limits: %w", err)
	}
	for line := range bytes.Lines(limits) {
		rest, ok := bytes.CutPrefix(line, []byte("Max open files"))
		if !ok {
			continue
		}
		fields := bytes.Fields(rest)
		if len(fields) > 0 {
			limit, _ = strconv.ParseUint(string(fields[0]), 10, 64)
		}
	}
	return len(entries), limit, nil
}

// affinity returns the CPUs a process may run on.
func affinity(pid int) ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(pid, &set); err != nil {
		return nil, fmt.Errorf("read CPU affinity: %w", err)
	}
	var cpus []int
	for cpu := range 1024 {
		if set.IsSet(cpu) {
			cpus = append(cpus, cpu)
		}
	}
	return cpus, nil
}

// overlap reports whether two CPU lists share a CPU.
func overlap(a, b []int) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// coresBusy returns the time the given CPUs spent on anything but idle and
// I/O wait since boot, from /proc/stat: user, nice, system, irq, softirq
// and steal (time a virtual machine's CPU was taken by its host).
func coresBusy(cpus []int) (time.Duration, error) {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("read CPU statistics: %w", err)
	}
	var ticks uint64
	for line := range bytes.Lines(stat) {
		fields := bytes.Fields(line)
		if len(fields) < 9 || !bytes.HasPrefix(fields[0], []byte("cpu")) {
			continue
		}
		cpu, err := strconv.Atoi(string(fields[0][3:]))
		if err != nil || !slices.Contains(cpus, cpu) {
			continue // the "cpu" total line, or another CPU
		}
		for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system _ _ irq softirq steal
			v, _ := strconv.ParseUint(string(fields[i]), 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * (time.Second / clockTicks), nil
}
