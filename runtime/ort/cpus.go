package ort

import (
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Files that hold the CPU quota of the process's cgroup.
const (
	cgroupV2CPUMax    = "/sys/fs/cgroup/cpu.max"
	cgroupV1CPUQuota  = "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"
	cgroupV1CPUPeriod = "/sys/fs/cgroup/cpu/cpu.cfs_period_us"
)

// AvailableCPUs returns how many CPUs the process can keep busy: the number
// of CPUs it may run on (runtime.NumCPU, which follows the affinity mask),
// lowered to the cgroup CPU quota rounded up when a quota is set. It is the
// default for Options.IntraOpThreads, because more threads than the quota
// allows only take turns on the same CPU time.
//
// NOTE: only the quota files of the cgroup namespace root are read
// (/sys/fs/cgroup/cpu.max for cgroup v2, cpu.cfs_quota_us and
// cpu.cfs_period_us under /sys/fs/cgroup/cpu for v1). That is the process's
// own cgroup inside a container with a private cgroup namespace, but not
// on a host where the process sits in a nested cgroup.
func AvailableCPUs() int {
	n := runtime.NumCPU()
	if q, ok := cgroupCPUQuota(readFile); ok && q < n {
		n = q
	}
	return max(n, 1)
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// cgroupCPUQuota returns the CPU quota in whole CPUs, rounded up, and false
// when no quota is set or the files cannot be read.
func cgroupCPUQuota(read func(string) (string, error)) (int, bool) {
	if s, err := read(cgroupV2CPUMax); err == nil {
		// The format is "QUOTA PERIOD" in microseconds, or "max PERIOD".
		fields := strings.Fields(s)
		if len(fields) != 2 || fields[0] == "max" {
			return 0, false
		}
		return quotaCPUs(fields[0], fields[1])
	}
	quota, err := read(cgroupV1CPUQuota)
	if err != nil {
		return 0, false
	}
	period, err := read(cgroupV1CPUPeriod)
	if err != nil {
		return 0, false
	}
	// cgroup v1 writes -1 for "no quota", which quotaCPUs rejects.
	return quotaCPUs(strings.TrimSpace(quota), strings.TrimSpace(period))
}

func quotaCPUs(quota, period string) (int, bool) {
	q, err1 := strconv.ParseInt(quota, 10, 64)
	p, err2 := strconv.ParseInt(period, 10, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0, false
	}
	return int((q + p - 1) / p), true
}
