package harness

import (
	"fmt"
	"slices"
	"strings"
)

// MisspeltVariables warns of the variables of environ (os.Environ's form, NAME=value) that the harness does
// not read but that look like one it does (meantVariable): MAXWAIT or max_wait for MAX_WAIT, TOKENB for
// TOKEN_B, GATES for GATE. Such a variable is ignored, so the run would quietly take the default instead: a
// 10-minute MAX_WAIT, no second user, no release gate. Each warning names the variable and the one meant,
// never the value (it may be a secret).
func MisspeltVariables(environ []string) []string {
	var warnings []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if meant := meantVariable(name); meant != "" {
			warnings = append(warnings, fmt.Sprintf("%s is set, but the harness reads no such variable (ignored): did you mean %s?", name, meant))
		}
	}
	return warnings
}

// meantVariable is the variable of the harness that name, not one itself, is a likely misspelling of; ""
// when there is none. A name is one when, upper-cased and without '_' and '-', it equals a variable's name
// so written or its plural, or is one edit away from one of at least 6 letters (two from one of at least
// 10): shorter names are too close to unrelated ones.
func meantVariable(name string) string {
	if name == "" || slices.ContainsFunc(Variables, func(v struct{ Name, Default, Meaning string }) bool { return v.Name == name }) {
		return ""
	}
	norm := normalizeVariable(name)
	best, bestDist := "", 3
	for _, v := range Variables {
		known := normalizeVariable(v.Name)
		allowed := 0
		switch {
		case len(known) >= 10:
			allowed = 2
		case len(known) >= 6:
			allowed = 1
		}
		d := editDistance(norm, known)
		if norm == known+"S" { // a plural: GATES, TOKENS
			d = 1
		} else if d > allowed {
			continue
		}
		if d < bestDist {
			best, bestDist = v.Name, d
		}
	}
	return best
}

func normalizeVariable(name string) string {
	return strings.ToUpper(strings.NewReplacer("_", "", "-", "").Replace(name))
}
