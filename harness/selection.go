package harness

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ehealth-dk/fut-conformance/features"
)

// features names the two features for FEATURES and the summary.
var featureTags = map[string]string{"export": "$export-poll-status", "report": "$get-report-job-status"}

// selection turns FEATURES and TAGS (validated by Config.Validate) into one godog tag expression, and lists
// the features left out, each with why. Without FEATURES, a feature runs when some requirement of it applies
// in the profile: the report feature's operations are FUT's, n/a in bulkdata (features/PROFILES.md), and a
// run against an HL7 Bulk Data server must not send them. Naming such a feature in FEATURES is an error.
func selection(features []string, tags string, applicable map[string]bool, profile string) (expr string, chosen, left []string, err error) {
	all := sortedKeys(featureTags)
	for _, f := range features {
		if !applicable[f] {
			return "", nil, nil, fmt.Errorf("FEATURES=%s: the %s feature (%s) does not apply in PROFILE=%s: every requirement of it is n/a there (features/PROFILES.md)",
				strings.Join(features, ","), f, featureTags[f], profile)
		}
	}
	chosen = features
	if len(chosen) == 0 {
		chosen = slices.DeleteFunc(slices.Clone(all), func(f string) bool { return !applicable[f] })
	}
	for _, f := range all {
		switch {
		case slices.Contains(chosen, f):
		case len(features) > 0:
			left = append(left, fmt.Sprintf("the %s feature (%s), left out by FEATURES", f, featureTags[f]))
		default:
			left = append(left, fmt.Sprintf("the %s feature (%s), not applicable in profile %s (every requirement of it is n/a there: features/PROFILES.md)", f, featureTags[f], profile))
		}
	}
	if len(chosen) == len(all) {
		return tags, chosen, nil, nil
	}
	var terms []string
	for _, f := range chosen {
		terms = append(terms, "@"+f)
	}
	expr = strings.Join(terms, ",")
	if tags != "" {
		expr += " && " + tags
	}
	return expr, chosen, left, nil
}

// applicable tells, per feature, whether some requirement its scenarios check applies in the profile.
func (c catalog) applicable(profile string) map[string]bool {
	out := map[string]bool{}
	for _, s := range c.scenarios {
		for f := range featureTags {
			if !slices.Contains(s.Tags, f) {
				continue
			}
			for _, id := range s.Requirements {
				if r, ok := c.requirements[id]; ok && c.profiles.SeverityOf(r, profile) != features.NotApplicable {
					out[f] = true
				}
			}
		}
	}
	return out
}

// validateTags refuses what godog's tag filter would panic on or silently misread: empty terms, and the
// "not"/"and"/"or" words of other tools. godog's syntax is "@a,@b && ~@c": commas OR, && AND, ~ NOT.
func validateTags(expr string) error {
	if strings.TrimSpace(expr) == "" {
		return nil
	}
	var names []string
	for _, group := range strings.Split(expr, "&&") {
		for _, term := range strings.Split(group, ",") {
			term = strings.TrimSpace(term)
			name := strings.TrimPrefix(strings.TrimPrefix(term, "~"), "@")
			if name == "" || strings.ContainsAny(name, " ()!|@~") {
				return fmt.Errorf("TAGS=%q: %q is not a tag term; godog's syntax is '@a,@b && ~@c' (comma: or, &&: and, ~: not)", expr, term)
			}
			names = append(names, name)
		}
	}
	return unknownTags(expr, names)
}

// unknownTags refuses a tag no scenario has: godog ignores it, so a misspelt requirement ID in an "or" would
// quietly leave its scenarios out, and under "~" quietly run the scenarios meant to be left out.
func unknownTags(expr string, names []string) error {
	scenarios, err := features.Scenarios()
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, s := range scenarios {
		for _, t := range s.Tags {
			known[t] = true
		}
	}
	for _, name := range names {
		if known[name] {
			continue
		}
		msg := fmt.Sprintf("TAGS=%q: no scenario has the tag @%s", expr, name)
		if near := nearest(name, slices.Sorted(maps.Keys(known))); near != "" {
			msg += "; did you mean @" + near + "?"
		}
		return fmt.Errorf("%s (the tags are the requirement IDs of features/REQUIREMENTS.md, @export, @report and @cross-user)", msg)
	}
	return nil
}

// nearest is the candidate closest to name, compared without case, when it is a likely misspelling: at most
// two edits away; "" when none is.
func nearest(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(name), strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
