package bench

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/mmadac/mmadac/runtime/ort"
)

// loadAverage returns the 1, 5 and 15 minute load averages from
// /proc/loadavg, or zeros where that file cannot be read.
func loadAverage() [3]float64 {
	var out [3]float64
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return out
	}
	fields := strings.Fields(string(data))
	for i := 0; i < 3 && i < len(fields); i++ {
		out[i], _ = strconv.ParseFloat(fields[i], 64)
	}
	return out
}

// resetPeakRSS resets the kernel's resident-set high-water mark of this
// process (writing 5 to /proc/self/clear_refs, Linux 4.0 and later), so
// that peakRSS covers what follows. Where the write fails, peakRSS keeps
// the high-water mark since the process started.
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS returns VmHWM of /proc/self/status in bytes: the largest
// resident set of the process, which counts the backend's native memory
// as well as Go's heap. It returns 0 where the file cannot be read.
func peakRSS() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "VmHWM:") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			return 0
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return 0
		}
		return kb << 10
	}
	return 0
}

// Machine describes where a benchmark ran.
type Machine struct {
	// CPU is the model name from /proc/cpuinfo.
	CPU string `json:"cpu"`
	// LogicalCPUs is runtime.NumCPU; AvailableCPUs lowers it to the
	// cgroup CPU quota (the ONNX Runtime thread default).
	LogicalCPUs   int    `json:"logical_cpus"`
	AvailableCPUs int    `json:"available_cpus"`
	GOMAXPROCS    int    `json:"gomaxprocs"`
	GoVersion     string `json:"go_version"`
	OS            string `json:"os"`
	Arch          string `json:"arch"`
	// ORTLibrary is the ONNX Runtime library path that would be loaded.
	ORTLibrary string `json:"ort_library,omitempty"`
}

// DescribeMachine collects the Machine fields of this process.
func DescribeMachine() Machine {
	m := Machine{LogicalCPUs: runtime.NumCPU(), AvailableCPUs: ort.AvailableCPUs(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if p, err := ort.LibraryPath(); err == nil {
		m.ORTLibrary = p
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	return m
}
