package steps

import (
	"slices"
	"sort"
	"sync"
)

// Finding is a warning or a skip, kept for the run's summary.
type Finding struct {
	Scenario    string
	Requirement string
	Message     string
}

// Findings collects, across the scenarios of one run, what passed with a reservation: SHOULD deviations
// (warnings) and scenarios that could not be checked (skips). It is safe for concurrent scenarios.
type Findings struct {
	mu       sync.Mutex
	warnings []Finding
	skips    []Finding
	known    []Finding
	// notChecked: parts of a scenario left unchecked by a bound of the run (DOWNLOAD_WAIT, MAX_FILES) or an
	// untrusted origin; the scenario's verdict stands on what was checked.
	notChecked []Finding
}

func (f *Findings) knownDeviation(x Finding) {
	f.add(func(f *Findings) *[]Finding { return &f.known }, x)
}
func (f *Findings) warn(x Finding) { f.add(func(f *Findings) *[]Finding { return &f.warnings }, x) }
func (f *Findings) skip(x Finding) { f.add(func(f *Findings) *[]Finding { return &f.skips }, x) }
func (f *Findings) notCheck(x Finding) {
	f.add(func(f *Findings) *[]Finding { return &f.notChecked }, x)
}

// AddWarning records a warning from outside the steps (a harness check, a test of the reports).
func (f *Findings) AddWarning(x Finding) { f.warn(x) }

// add records x once in the list of f that field names: a deviation seen on every poll of one job is one
// finding. A nil f collects nothing (field is a function so that no field of nil is addressed).
func (f *Findings) add(field func(*Findings) *[]Finding, x Finding) {
	if f == nil {
		return
	}
	list := field(f)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(*list, x) {
		*list = append(*list, x)
	}
}

// KnownDeviations returns the answers the profile accepts although the other sources would not.
func (f *Findings) KnownDeviations() []Finding { return f.sorted(func() []Finding { return f.known }) }

// Warnings returns the SHOULD deviations, sorted by requirement then scenario.
func (f *Findings) Warnings() []Finding { return f.sorted(func() []Finding { return f.warnings }) }

// Skips returns the scenarios that could not be checked and why.
func (f *Findings) Skips() []Finding { return f.sorted(func() []Finding { return f.skips }) }

// NotChecked returns what a scenario left unchecked, and why: a bound of the run or an untrusted origin.
func (f *Findings) NotChecked() []Finding { return f.sorted(func() []Finding { return f.notChecked }) }

func (f *Findings) sorted(list func() []Finding) []Finding {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	out := append([]Finding(nil), list()...)
	f.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Requirement != out[j].Requirement {
			return out[i].Requirement < out[j].Requirement
		}
		return out[i].Scenario < out[j].Scenario
	})
	return out
}
