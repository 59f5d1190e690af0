package ort

import (
	"strconv"
	"strings"
)

// Files that tell how much memory the process may still use.
const (
	procMeminfo          = "/proc/meminfo"
	cgroupV2MemoryMax    = "/sys/fs/cgroup/memory.max"
	cgroupV2MemoryNow    = "/sys/fs/cgroup/memory.current"
	cgroupV1MemoryLimit  = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
	cgroupV1MemoryNow    = "/sys/fs/cgroup/memory/memory.usage_in_bytes"
	cgroupV1NoLimitAbove = 1 << 60
)

// AvailableMemory returns the bytes the process can still allocate before
// the system reclaims memory by force: the kernel's MemAvailable estimate,
// lowered to what the cgroup memory limit leaves. It returns false when
// neither can be read. Like AvailableCPUs, it reads only the cgroup files
// of the namespace root.
func AvailableMemory() (int64, bool) {
	return availableMemory(readFile)
}

func availableMemory(read func(string) (string, error)) (int64, bool) {
	avail, ok := memAvailable(read)
	if left, limited := cgroupMemoryLeft(read); limited && (!ok || left < avail) {
		return left, true
	}
	return avail, ok
}

// memAvailable reads MemAvailable from /proc/meminfo, given in kB.
func memAvailable(read func(string) (string, error)) (int64, bool) {
	s, err := read(procMeminfo)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(s, "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, false
			}
			return kb * 1024, true
		}
	}
	return 0, false
}

// cgroupMemoryLeft returns the cgroup's memory limit minus its usage, and
// false when no limit is set or the files cannot be read.
func cgroupMemoryLeft(read func(string) (string, error)) (int64, bool) {
	limitFile, usageFile := cgroupV2MemoryMax, cgroupV2MemoryNow
	if _, err := read(limitFile); err != nil {
		limitFile, usageFile = cgroupV1MemoryLimit, cgroupV1MemoryNow
	}
	limit, ok := readBytes(read, limitFile)
	// cgroup v2 writes "max" for no limit, and v1 a number near 2^63.
	if !ok || limit >= cgroupV1NoLimitAbove {
		return 0, false
	}
	usage, ok := readBytes(read, usageFile)
	if !ok {
		return 0, false
	}
	return max(limit-usage, 0), true
}

func readBytes(read func(string) (string, error), path string) (int64, bool) {
	s, err := read(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n, err == nil
}
