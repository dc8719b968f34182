package components

import "strconv"

// Progress is a fan-out's counters, for the progress bar.
type Progress struct {
	Total    int
	Done     int
	Failed   int
	Pending  int
	Percent  int // (done + failed) of total, 0..100
	Finished bool
}

// Processed is how many users are finished, successfully or not.
func (p Progress) Processed() int { return p.Done + p.Failed }

// State names the bar's state for styling: "running", "done" or "failed"
// (finished with failures).
func (p Progress) State() string {
	switch {
	case !p.Finished:
		return "running"
	case p.Failed > 0:
		return "failed"
	default:
		return "done"
	}
}

// DoneWidth and FailedWidth are the bar segments in the SVG's 0..1000 user
// units (SVG attributes, not inline styles, so the CSP allows them).
func (p Progress) DoneWidth() string { return p.width(p.Done) }

// FailedX is where the failed segment starts.
func (p Progress) FailedX() string { return p.width(p.Done) }

// FailedWidth is the failed segment's width.
func (p Progress) FailedWidth() string { return p.width(p.Failed) }

func (p Progress) width(n int) string {
	if p.Total <= 0 {
		return "0"
	}
	return strconv.Itoa(n * progressUnits / p.Total)
}

// progressUnits is the SVG bar's width in user units.
const progressUnits = 1000
