package ort

import (
	"os"
	"testing"
)

// fakeFiles serves file contents from a map, as the kernel would.
func fakeFiles(files map[string]string) func(string) (string, error) {
	return func(path string) (string, error) {
		if s, ok := files[path]; ok {
			return s, nil
		}
		return "", os.ErrNotExist
	}
}

func TestAvailableMemorySources(t *testing.T) {
	meminfo := "MemTotal:       24000000 kB\nMemAvailable:   2000000 kB\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
		ok    bool
	}{
		{"meminfo only", map[string]string{procMeminfo: meminfo}, 2000000 * 1024, true},
		{"cgroup v2 without a limit", map[string]string{procMeminfo: meminfo, cgroupV2MemoryMax: "max\n", cgroupV2MemoryNow: "100\n"}, 2000000 * 1024, true},
		{"cgroup v2 limit below MemAvailable", map[string]string{procMeminfo: meminfo, cgroupV2MemoryMax: "1000000\n", cgroupV2MemoryNow: "400000\n"}, 600000, true},
		{"cgroup v2 limit above MemAvailable", map[string]string{procMeminfo: meminfo, cgroupV2MemoryMax: "9000000000000\n", cgroupV2MemoryNow: "0\n"}, 2000000 * 1024, true},
		{"cgroup v1 limit", map[string]string{procMeminfo: meminfo, cgroupV1MemoryLimit: "1000\n", cgroupV1MemoryNow: "250\n"}, 750, true},
		{"cgroup v1 without a limit", map[string]string{procMeminfo: meminfo, cgroupV1MemoryLimit: "9223372036854771712\n", cgroupV1MemoryNow: "5\n"}, 2000000 * 1024, true},
		{"usage above the limit", map[string]string{cgroupV2MemoryMax: "100\n", cgroupV2MemoryNow: "150\n"}, 0, true},
		{"nothing readable", map[string]string{}, 0, false},
		{"meminfo without MemAvailable", map[string]string{procMeminfo: "MemTotal: 5 kB\n"}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := availableMemory(fakeFiles(tc.files))
			if ok != tc.ok {
				t.Errorf("ok = %v, want %v", ok, tc.ok)
			}
			if got != tc.want {
				t.Errorf("available = %d, want %d", got, tc.want)
			}
		})
	}
}
