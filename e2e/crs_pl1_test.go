package e2e

import (
	"io/fs"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/rules"
)

// pl1AttackFloor is the share of the CRS corpus's paranoia level 1 attack
// stages that the default policy must block.
const pl1AttackFloor = 99.5

// The CRS regression corpus's attack stages at paranoia level 1 (stages
// of the application attack files, 930 to 944, that expect a match of a
// PL1 rule) through the gateway with the default policy, blocking: at
// least pl1AttackFloor % are refused. The stages that pass are listed.
func TestCRS_FTWAttacksBlockedAtPL1(t *testing.T) {
	// CRS's test settings (as TestCRS_FTWCorpusThroughTheGateway), but
	// blocking at paranoia level 1: the default policy's.
	g := ftwGateway(t, "setvar:tx.blocking_paranoia_level=1", "", "mode: block")
	pl := crsParanoiaLevels(t)
	var stages []ftwStage
	for _, s := range loadFTWStages(t) {
		if n, err := strconv.Atoi(strings.TrimPrefix(s.file[:11], "REQUEST-")); err != nil || n < 930 || n > 944 {
			continue
		}
		if slices.ContainsFunc(s.expect, func(id int) bool { return pl[id] == 1 }) {
			stages = append(stages, s)
		}
	}
	if len(stages) < 1000 {
		t.Fatalf("only %d PL1 attack stages", len(stages))
	}
	results := sendFTW(g.Addrs["web"], stages)
	var passed []string
	for i, r := range results {
		if r.status < 400 {
			passed = append(passed, stages[i].name)
		}
	}
	sort.Strings(passed)
	rate := 100 * float64(len(stages)-len(passed)) / float64(len(stages))
	t.Logf("PL1 attack stages blocked: %d of %d (%.2f %%); passed: %s", len(stages)-len(passed), len(stages), rate, strings.Join(passed, " "))
	if rate < pl1AttackFloor {
		t.Errorf("%.2f %% of PL1 attack stages blocked, want at least %.1f %%", rate, pl1AttackFloor)
	}
}

// crsParanoiaLevels reads each CRS rule's paranoia level from its tag.
func crsParanoiaLevels(t *testing.T) map[int]int {
	t.Helper()
	rule := regexp.MustCompile(`(?s)id:(\d+),.*?paranoia-level/(\d)`)
	out := map[int]int{}
	files, err := fs.Glob(rules.FS(), "@owasp_crs/REQUEST-9*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("CRS rule files: %v", err)
	}
	for _, f := range files {
		data, err := fs.ReadFile(rules.FS(), f)
		if err != nil {
			t.Fatal(err)
		}
		// One SecRule per chunk, so that a rule without the tag does not
		// take the next rule's.
		for _, chunk := range strings.Split(string(data), "\nSecRule ") {
			if m := rule.FindStringSubmatch(chunk); m != nil {
				id, _ := strconv.Atoi(m[1])
				out[id], _ = strconv.Atoi(m[2])
			}
		}
	}
	return out
}
