package sampler

import "fmt"

// TextSchedule is the transfer count per step of a block, computed once
// for a run's settings: every block of the generated part starts fully
// masked, so all blocks share NumTransfer(block_length, steps per block).
// `mmadac build` stores it in the bundle; the sampler then only looks it
// up.
func TextSchedule(p TextParams) ([]int, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	blocks := p.GenLength / p.BlockLength
	return NumTransfer(p.BlockLength, p.Steps/blocks), nil
}

// CheckSchedule verifies that a stored schedule fits the run's settings.
func CheckSchedule(p TextParams, sched []int) error {
	want, err := TextSchedule(p)
	if err != nil {
		return err
	}
	if len(want) != len(sched) {
		return fmt.Errorf("the stored schedule has %d steps per block, the settings need %d; rebuild with these settings or drop the schedule", len(sched), len(want))
	}
	for i := range want {
		if want[i] != sched[i] {
			return fmt.Errorf("the stored schedule differs from the settings at step %d (%d vs %d)", i, sched[i], want[i])
		}
	}
	return nil
}

// T2ISchedule folds the t2i sampler's per-step tables for n image tokens:
// floor(n * cos(pi/2 * r)) in float32 (before the per-row clamps to at
// least 1 and at most the masked count minus 1) and the cumulative
// temperature after each step.
func T2ISchedule(n, steps int, temperature float64) (counts []int64, temps []float64) {
	temp := temperature
	for s := 0; s < steps; s++ {
		counts = append(counts, int64(cosineMaskFloor(s, steps, n)))
		temp *= 1 - float64(s+1)/float64(steps)
		temps = append(temps, temp)
	}
	return counts, temps
}
