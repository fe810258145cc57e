// Package priority lowers the CPU priority of this process, so that a
// backup yields the processor to the services it backs up: on a busy
// database server, a dump's compression then waits for the server's
// queries instead of delaying them.
package priority

import "fmt"

// Default is the nice value runner runs at unless told otherwise: low
// enough that production work goes first, not so low (19) that a backup
// starves behind every batch job on the machine.
const Default = 10

// Max is the highest (least favoured) nice value.
const Max = 19

// Lower makes every thread of this process run at nice value n or
// nicer, so that every process started afterwards inherits it. It never
// raises the priority: a process already running at a higher nice value
// (started under nice -n 19, say) keeps it. 0 changes nothing.
func Lower(n int) error {
	if n < 0 || n > Max {
		return fmt.Errorf("nice value %d: want 0 (unchanged) to %d", n, Max)
	}
	if n == 0 {
		return nil
	}
	return lower(n)
}
