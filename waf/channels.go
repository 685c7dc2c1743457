package waf

import (
	"bufio"
	"bytes"
	"io"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
)

// channelsFile extends CRS's attack rules to the request channels CRS
// leaves out for them (rules/sekisho/channels.conf), loaded right after CRS.
const channelsFile = "sekisho/channels.conf"

// channelsFS serves channelsFile without the lines whose rule the CRS in
// use lacks: a crs_dir may hold another CRS version, or one with rules
// taken out, and Coraza refuses SecRuleUpdateTargetById for a missing id.
// In it and in detectionsFile, it resolves @sekisho_crs operators against
// that CRS (resolveCRSChecks).
type channelsFS struct{ fs.FS }

var (
	ruleIDRe   = regexp.MustCompile(`\bid:(\d+)`)
	updateIDRe = regexp.MustCompile(`^\s*SecRuleUpdateTargetById\s+(\d+)\s`)
	crsOpRe    = regexp.MustCompile(`"@` + crsOperator + ` ([0-9 ]*)"`)
)

func (c channelsFS) Open(name string) (fs.File, error) {
	if name != channelsFile && name != detectionsFile {
		return c.FS.Open(name)
	}
	return rewritten(c.FS, name, func(data []byte) ([]byte, error) {
		ids, checks, err := crsIndex(c.FS)
		if err != nil {
			return nil, err
		}
		return resolveCRSChecks(keepKnownRules(data, ids), checks), nil
	})
}

// keepKnownRules blanks each SecRuleUpdateTargetById line of conf whose
// rule is not in ids (blank, not dropped, so that Coraza's line numbers
// in an error still point into the file).
func keepKnownRules(conf []byte, ids map[int]bool) []byte {
	var out bytes.Buffer
	r := bufio.NewReader(bytes.NewReader(conf))
	for {
		line, err := r.ReadString('\n')
		if m := updateIDRe.FindStringSubmatch(line); m != nil {
			if id, _ := strconv.Atoi(m[1]); !ids[id] {
				line = "# (not in this CRS) " + strings.TrimLeft(line, " \t")
			}
		}
		out.WriteString(line)
		if err == io.EOF {
			return out.Bytes()
		}
	}
}

// resolveCRSChecks replaces the CRS rule ids of each @sekisho_crs operator
// in conf with the keys of their checks in crsChecks. Ids the CRS in use
// lacks (or whose rule is chained) are left out; an operator left with none
// never matches.
func resolveCRSChecks(conf []byte, checks map[int]crsCheck) []byte {
	return crsOpRe.ReplaceAllFunc(conf, func(m []byte) []byte {
		var keys []string
		for _, f := range strings.Fields(string(crsOpRe.FindSubmatch(m)[1])) {
			id, _ := strconv.Atoi(f)
			if c, ok := checks[id]; ok {
				k := c.key()
				crsChecks.Store(k, c)
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			return []byte(`"@noMatch"`)
		}
		return []byte(`"@` + crsOperator + " " + strings.Join(keys, " ") + `"`)
	})
}
