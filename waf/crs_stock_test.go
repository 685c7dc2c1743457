package waf

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// stockChannelsFS serves channelsFile and detectionsFile to stock Coraza, which lacks the
// @sekisho_crs operator: each rule using it becomes one rule per CRS check
// it names, with the CRS rule's own operator and transformations as CRS
// writes them, numbered stockCheckBase + ruleID*1000 + i. Stock Coraza then
// computes what @sekisho_crs must match: the union of the CRS checks.
type stockChannelsFS struct{ fs.FS }

// stockCheckBase numbers the stock copies; run maps them back to their rule.
const stockCheckBase = 1_000_000_000

func (s stockChannelsFS) Open(name string) (fs.File, error) {
	if name != channelsFile && name != detectionsFile {
		return s.FS.Open(name)
	}
	crs := map[int]secRule{}
	err := forEachRuleFile(s.FS, func(_ string, data []byte) {
		eachRule(data, func(r secRule) {
			for _, a := range r.acts {
				if a.key == "id" {
					n, _ := strconv.Atoi(a.val)
					crs[n] = r
				}
			}
		})
	})
	if err != nil {
		return nil, err
	}
	return rewritten(s.FS, name, func(data []byte) ([]byte, error) { return stockCopies(data, crs), nil })
}

// stockCopies is a rule file with each @sekisho_crs rule replaced by its
// stock copies.
func stockCopies(data []byte, crs map[int]secRule) []byte {
	var out strings.Builder
	for _, d := range logicalLines(strings.Split(string(data), "\n")) {
		r, ok := parseSecRule(d.text)
		if !ok || !strings.HasPrefix(r.op, `"@`+crsOperator+" ") {
			out.WriteString(d.text + "\n")
			continue
		}
		id := -1
		var acts []string
		for _, a := range r.acts {
			if a.key == "id" {
				id, _ = strconv.Atoi(a.val)
				continue
			}
			acts = append(acts, a.raw)
		}
		for i, f := range strings.Fields(strings.Trim(r.op, `"`)[len(crsOperator)+2:]) {
			n, _ := strconv.Atoi(f)
			c, ok := crs[n]
			if !ok {
				continue
			}
			var extra []string
			for _, a := range c.acts {
				if a.key == "t" && a.val != "none" || a.key == "multimatch" {
					extra = append(extra, a.raw)
				}
			}
			// @pmFromFile reads its data beside the rule's file.
			op := strings.Replace(c.op, "@pmFromFile ", "@pmFromFile ../@owasp_crs/", 1)
			fmt.Fprintf(&out, "SecRule %s %s \"id:%d,%s\"\n", r.vars, op,
				stockCheckBase+id*1000+i, strings.Join(append(acts, extra...), ","))
		}
	}
	return []byte(out.String())
}
