package harness

import (
	"fmt"
	"slices"
	"strings"
)

// features names the two features for FEATURES and the summary.
var featureTags = map[string]string{"export": "$export-poll-status", "report": "$get-report-job-status"}

// selection turns FEATURES and TAGS (validated by Config.Validate) into one godog tag expression, and lists
// the features left out.
func selection(features []string, tags string) (expr string, left []string, err error) {
	if len(features) == 0 || len(features) == len(featureTags) {
		return tags, nil, nil
	}
	var terms []string
	for _, f := range features {
		terms = append(terms, "@"+f)
	}
	for _, f := range sortedKeys(featureTags) {
		if !slices.Contains(features, f) {
			left = append(left, fmt.Sprintf("the %s feature (%s)", f, featureTags[f]))
		}
	}
	expr = strings.Join(terms, ",")
	if tags != "" {
		expr += " && " + tags
	}
	return expr, left, nil
}

// validateTags refuses what godog's tag filter would panic on or silently misread: empty terms, and the
// "not"/"and"/"or" words of other tools. godog's syntax is "@a,@b && ~@c": commas OR, && AND, ~ NOT.
func validateTags(expr string) error {
	if strings.TrimSpace(expr) == "" {
		return nil
	}
	for _, group := range strings.Split(expr, "&&") {
		for _, term := range strings.Split(group, ",") {
			term = strings.TrimSpace(term)
			name := strings.TrimPrefix(strings.TrimPrefix(term, "~"), "@")
			if name == "" || strings.ContainsAny(name, " ()!|@~") {
				return fmt.Errorf("TAGS=%q: %q is not a tag term; godog's syntax is '@a,@b && ~@c' (comma: or, &&: and, ~: not)", expr, term)
			}
		}
	}
	return nil
}
