package harness

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// nothingChecked tells whether no selected scenario was checked: each one skipped or not applicable.
func nothingChecked(results []ScenarioResult) bool {
	return len(results) > 0 && !slices.ContainsFunc(results, func(r ScenarioResult) bool { return r.Status == StatusPassed || r.Status == StatusFailed })
}

// NothingCheckedReasons says why no selected scenario was checked (NothingChecked): each reason once, with the
// requirements of the scenarios it stopped, and the fix.
func (r Result) NothingCheckedReasons() string {
	var reasons []string
	ids := map[string][]string{}
	for _, s := range r.Results {
		reason := "skipped: " + cmp.Or(s.Reason, string(s.Status))
		if s.Status == StatusNotApplicable {
			reason = "not applicable: " + cmp.Or(s.Reason, string(s.Status))
		}
		if _, ok := ids[reason]; !ok {
			reasons = append(reasons, reason)
		}
		for _, id := range s.Requirements {
			if !slices.Contains(ids[reason], id) {
				ids[reason] = append(ids[reason], id)
			}
		}
	}
	var b strings.Builder
	if len(r.Results) == 1 {
		b.WriteString("the one selected scenario was skipped or not applicable, so the run vouches for nothing")
	} else {
		fmt.Fprintf(&b, "each of the %d selected scenarios was skipped or not applicable, so the run vouches for nothing", len(r.Results))
	}
	for _, reason := range reasons {
		fmt.Fprintf(&b, "\n  %s: %s", strings.Join(ids[reason], ", "), reason)
	}
	b.WriteString("\n  fix: give what the skips ask for, or select scenarios that apply (TAGS, FEATURES, PROFILE)")
	return b.String()
}
