package harness

import (
	"cmp"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ehealth-dk/fut-conformance/steps"
)

// Console formats (FORMAT). The compact one is the default: a vendor reads one line per scenario, each
// failure once, and a verdict per requirement; godog's own formatters stay available.
const (
	FormatCompact  = "compact"
	FormatPretty   = "pretty"
	FormatProgress = "progress"
)

// Formats lists the accepted values of FORMAT, the default first.
var Formats = []string{FormatCompact, FormatPretty, FormatProgress}

// consoleWidth is the width the compact console keeps to, so that it reads in a terminal and a CI log alike.
const consoleWidth = 120

// console writes the run's report on the console (Config.Out). In the compact format it prints a line per
// scenario as each one ends, then the failures, the grouped findings, the requirement table and the verdict;
// in godog's formats godog prints the scenarios and their failures, and the console adds the rest.
type console struct {
	mu     sync.Mutex
	out    io.Writer
	format string
}

func newConsole(out io.Writer, format string) *console {
	if format == "" {
		format = FormatCompact
	}
	return &console{out: out, format: format}
}

// godogFormatter is the godog formatter that writes to the console, or "" when the console writes alone.
func (c *console) godogFormatter() string {
	if c.format == FormatCompact {
		return ""
	}
	return c.format
}

func (c *console) header(res Result, seed int64) {
	order := ""
	if seed != 0 {
		order = fmt.Sprintf("scenarios in random order: RANDOM_SEED=%d repeats it\n", seed)
	}
	c.printf("FUT conformance: target %s, profile %s\n%s\n", res.Target, res.Profile, order)
}

// scenario prints one ended scenario: its status, seconds, requirement IDs and name, clipped to the width.
func (c *console) scenario(r ScenarioResult) {
	if c.format != FormatCompact {
		return
	}
	line := fmt.Sprintf("%-7s %5.1fs  %-25s  %s", statusMark(string(r.Status)), r.Duration.Seconds(), strings.Join(r.Requirements, " "), r.Name)
	c.printf("%s\n", clip(line, consoleWidth))
}

func statusMark(status string) string {
	switch status {
	case "passed":
		return "✓"
	case "failed":
		return "✗"
	case "skipped":
		return "skipped"
	case "not applicable", "not-applicable":
		return "n/a"
	}
	return status
}

// summary prints everything after the scenarios. Each failure is printed once, here, with its transcript and
// reproducer (godog's formats print it themselves); findings that repeat across scenarios are grouped.
func (c *console) summary(res Result) {
	var b strings.Builder
	if c.format == FormatCompact && len(res.Failures) > 0 {
		fmt.Fprintf(&b, "\nFailures: %d\n", len(res.Failures))
		for _, r := range res.Results {
			if r.Failure == nil {
				continue
			}
			fmt.Fprintf(&b, "\n✗ %s  %s (%s)\n", strings.Join(r.Requirements, " "), r.Name, r.File)
			b.WriteString(indent(strings.TrimRight(r.Failure.Message, "\n"), "    "))
		}
	}
	warnings, skips, known := res.Findings.Warnings(), res.Findings.Skips(), res.Findings.KnownDeviations()
	if len(known) > 0 {
		fmt.Fprintf(&b, "\nKnown deviations accepted by profile %s: %d\n", res.Profile, len(known))
		writeGroups(&b, groupFindings(known, true))
	}
	if len(warnings) > 0 {
		fmt.Fprintf(&b, "\nWarnings (SHOULD or MAY requirements not met; STRICT=1 makes a SHOULD fail the scenarios that check it): %d\n", len(warnings))
		writeGroups(&b, groupFindings(warnings, true))
	}
	if len(skips) > 0 {
		fmt.Fprintf(&b, "\nSkipped, not checked: %d\n", len(skips))
		writeGroups(&b, groupFindings(skips, false))
	}
	if notChecked := res.Findings.NotChecked(); len(notChecked) > 0 {
		fmt.Fprintf(&b, "\nNot checked (a bound of the run or an untrusted origin): %d\n", len(notChecked))
		writeGroups(&b, groupFindings(notChecked, false))
	}
	var notApplicable []steps.Finding
	for _, r := range res.Results {
		if r.Status == StatusNotApplicable {
			notApplicable = append(notApplicable, steps.Finding{Scenario: r.Name, Requirement: strings.Join(r.Requirements, " "), Message: r.Reason})
		}
	}
	if len(notApplicable) > 0 {
		fmt.Fprintf(&b, "\nNot applicable in profile %s: %d\n", res.Profile, len(notApplicable))
		writeGroups(&b, groupFindings(notApplicable, false))
	}
	printPreflight(&b, res.Preflight)
	for _, f := range res.NotSelected {
		fmt.Fprintf(&b, "\nNot run: %s\n", f)
	}
	writeRequirementTable(&b, res.Requirements)
	if g := res.Gate; g != nil {
		if g.Passed {
			b.WriteString("\nRelease gate (GATE=1): passed, every MUST requirement of the selected features was checked and passed\n")
		} else {
			fmt.Fprintf(&b, "\nRelease gate (GATE=1): FAILED, %s not checked and passed:\n", countOf(len(g.Unchecked), "MUST requirement"))
			for _, r := range g.Unchecked {
				line := fmt.Sprintf("  %s  %s", r.ID, r.Verdict)
				if r.Reason != "" {
					line += ": " + r.Reason
				}
				b.WriteString(line + "\n")
			}
		}
	}
	writeVerdict(&b, res)
	c.printf("%s", b.String())
}

func (c *console) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.out, format, args...)
}

// writeRequirementTable lays the requirements out in two columns, top to bottom then left to right, so that
// the table of a whole run stays a dozen lines.
func writeRequirementTable(b *strings.Builder, rows []RequirementResult) {
	if len(rows) == 0 {
		return
	}
	b.WriteString("\nRequirements (verdict per requirement; details in the HTML report):\n")
	half := (len(rows) + 1) / 2
	cell := func(r RequirementResult) string { return fmt.Sprintf("%-20s %-6s %-8s", r.ID, r.Severity, r.Verdict) }
	for i := range half {
		line := "  " + cell(rows[i])
		if j := i + half; j < len(rows) {
			line += "    " + cell(rows[j])
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
}

// writeVerdict is the last lines: the verdict with target and profile, the counts, the requirements that
// failed or were not checked, by ID, and the reports.
func writeVerdict(b *strings.Builder, res Result) {
	verdict := "FAIL"
	switch {
	case res.NothingChecked:
		verdict = "NOTHING CHECKED"
	case res.Passed:
		verdict = "PASS"
	}
	count := map[Status]int{}
	for _, r := range res.Results {
		count[r.Status]++
	}
	byStatus := map[string][]string{}
	var order []string
	for _, r := range res.Requirements {
		v := string(r.Verdict)
		if _, seen := byStatus[v]; !seen {
			order = append(order, v)
		}
		byStatus[v] = append(byStatus[v], r.ID)
	}
	slices.SortFunc(order, func(a, b string) int { return requirementStatusRank(a) - requirementStatusRank(b) })
	var tally []string
	for _, s := range order {
		tally = append(tally, fmt.Sprintf("%d %s", len(byStatus[s]), s))
	}
	fmt.Fprintf(b, "\n%s: %s against %s in profile %s\n", verdict, countOf(res.Scenarios, "scenario"), res.Target, res.Profile)
	counts := fmt.Sprintf("%d passed, %d failed, %d skipped", count[StatusPassed], count[StatusFailed], count[StatusSkipped])
	if n := count[StatusNotApplicable]; n > 0 {
		counts += fmt.Sprintf(", %d not applicable", n)
	}
	fmt.Fprintf(b, "  %s; %s; requirements: %s; %s\n",
		counts, countOf(len(res.Findings.Warnings()), "warning"), strings.Join(tally, ", "), res.Duration.Round(100*time.Millisecond))
	for _, s := range order {
		if s == "pass" {
			continue
		}
		b.WriteString(wrapList("  "+s+": ", byStatus[s], consoleWidth))
	}
	if len(res.Reports) > 0 {
		dir, names := filepath.Dir(res.Reports[0]), make([]string, 0, len(res.Reports))
		for _, r := range res.Reports {
			if filepath.Dir(r) != dir {
				dir = ""
				break
			}
			names = append(names, filepath.Base(r))
		}
		if dir == "" {
			names = res.Reports
		}
		fmt.Fprintf(b, "  reports in %s: %s\n", cmp.Or(dir, "several directories"), strings.Join(names, ", "))
	}
}

// requirementStatusRank orders the statuses from the verdict's point of view: failures first.
func requirementStatusRank(s string) int {
	if i := slices.Index([]string{"fail", "error", "blocked", "warning", "skipped", "not-run", "not-applicable", "pass"}, s); i >= 0 {
		return i
	}
	return 6 // any verdict added later sorts before pass
}

// findingGroup is findings that say the same thing, in one or more scenarios.
type findingGroup struct {
	requirements []string
	message      string // the first one's
	count        int
	scenarios    []string
}

var (
	urlPattern    = regexp.MustCompile(`https?://[^\s"']+`)
	quotedPattern = regexp.MustCompile(`"[^"]*"`)
	numberPattern = regexp.MustCompile(`[0-9]+`)
)

// groupFindings groups findings whose messages differ only in URLs, quoted values and numbers (the job id,
// the entry index, the value that came back), by requirement too when byRequirement, in order of appearance.
func groupFindings(list []steps.Finding, byRequirement bool) []findingGroup {
	var groups []findingGroup
	index := map[string]int{}
	for _, f := range list {
		key := numberPattern.ReplaceAllString(quotedPattern.ReplaceAllString(urlPattern.ReplaceAllString(f.Message, "URL"), `""`), "0")
		if byRequirement {
			key = f.Requirement + "\x00" + key
		}
		i, ok := index[key]
		if !ok {
			i = len(groups)
			index[key] = i
			groups = append(groups, findingGroup{message: f.Message})
		}
		g := &groups[i]
		g.count++
		if !slices.Contains(g.requirements, f.Requirement) {
			g.requirements = append(g.requirements, f.Requirement)
		}
		if !slices.Contains(g.scenarios, f.Scenario) {
			g.scenarios = append(g.scenarios, f.Scenario)
		}
	}
	return groups
}

func writeGroups(b *strings.Builder, groups []findingGroup) {
	for _, g := range groups {
		fmt.Fprintf(b, "  %s  %s\n", strings.Join(g.requirements, ", "), g.message)
		where := fmt.Sprintf("in %q", g.scenarios[0])
		if len(g.scenarios) > 1 {
			where = fmt.Sprintf("in %d scenarios: %s", len(g.scenarios), strings.Join(g.scenarios, "; "))
		}
		if g.count > 1 {
			where = fmt.Sprintf("%d times, %s", g.count, where)
		}
		b.WriteString(clip("      "+where, consoleWidth) + "\n")
	}
}

// wrapList writes prefix and the items separated by commas, wrapped at width under the first item: every
// requirement ID stays visible.
func wrapList(prefix string, items []string, width int) string {
	var b strings.Builder
	pad := strings.Repeat(" ", utf8.RuneCountInString(prefix))
	line := prefix
	for i, item := range items {
		if i < len(items)-1 {
			item += ","
		}
		switch {
		case line == prefix:
			line += item
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(item) > width:
			b.WriteString(line + "\n")
			line = pad + item
		default:
			line += " " + item
		}
	}
	b.WriteString(line + "\n")
	return b.String()
}

// clip keeps the first n runes of s, the last one an ellipsis when s is longer.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if line == "" {
			b.WriteString("\n")
			continue
		}
		b.WriteString(prefix + line + "\n")
	}
	return b.String()
}

// countOf is n and the noun, singular for one: "1 scenario", "2 scenarios", "0 warnings".
func countOf(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
