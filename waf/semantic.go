package waf

import (
	"strconv"
	"strings"
	"unicode"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/libinjection-go"
)

// Semantic checks confirm the matches of CRS rules that recognise an attack
// by its words (SQL keywords and functions, shell command names, JavaScript
// method names, file names) before the match scores. An injection has to
// work where the application puts the value: SQL has to break out of the
// literal it is written into, a shell command has to stand where the shell
// reads a command, script has to reach a browser's parser, and a file name
// has to name a file worth stealing. Words alone do not: "1. Select vendor"
// in meeting notes, `export function` in a code sample, a line of a shell
// script in a ticket, docker-compose.yml uploaded to a deploy tool.
//
// A check rejects a match only where it can tell; everywhere else the CRS
// match stands:
//
//   - sql (CRS 942xxx @rx rules, in text): libinjection, CRS's own SQL
//     tokenizer (rule 942100), finds SQL injection in the value, in the line
//     of the match, or from the match on.
//   - shell (CRS 932xxx, in text): the command or path the rule matched is
//     where a shell reads a command: at the start of the value, or after a
//     separator other than a line break (; | & ` $( ${ <( >() on its line.
//     In text of several lines a line break separates lines of prose or of
//     a script shown to a reader.
//   - script (CRS 941390 JavaScript methods, 934100 Node.js, in text):
//     libinjection finds markup that runs script, or a javascript: or
//     vbscript: URL is in the match's line, or a quote before the match on
//     its line can close a string the value is written into.
//   - file (CRS 930120, 930130, 932180, any value): the value is not the
//     path of a data document (.json, .yaml, .yml, .toml, .lock) with no
//     ".." and no hidden (dot) segment: CRS lists package.json, config.json
//     or docker-compose.yml among restricted files and uploads, which
//     applications serve and accept as data.
//
// "Text" is a value a person wrote: at least three lines with words in them
// and six words (runs of two letters or more) in all, as in a message, a
// ticket, notes or a code sample. Payloads are one or two lines, however
// long; the checks leave them to CRS as it is (but for file, which looks at
// names).
//
// A match a check rejects does not score and is not in the verdict's
// matches; it is in the verdict's Unconfirmed list (rule and check), which
// the gateway logs. semantic_checks: false in a policy turns them off.

// semantic is a check that confirms one rule's matches.
type semantic struct {
	name  string
	rule  int
	check func(value string, span [2]int) bool // span: the match in value, or -1s
}

var semanticChecks = map[string]func(string, [2]int) bool{
	"sql":    confirmSQL,
	"shell":  confirmShell,
	"script": confirmScript,
	"file":   confirmFile,
}

// semanticCheck reads a fused operator's flag NAME@RULE; nil when NAME is
// not a check.
func semanticCheck(flag string) *semantic {
	name, rule, _ := strings.Cut(flag, "@")
	fn, ok := semanticChecks[name]
	if !ok {
		return nil
	}
	id, _ := strconv.Atoi(rule)
	return &semantic{name: name, rule: id, check: fn}
}

// semanticFor names the check of a CRS rule with operator op, or "".
func semanticFor(id int, op string) string {
	switch {
	case id == 930120 || id == 930130 || id == 932180:
		return "file"
	case id/1000 == 942 && op == "rx":
		return "sql"
	case id/1000 == 932:
		return "shell"
	case id == 941390 || id == 934100:
		return "script"
	}
	return ""
}

// Unconfirmed is a CRS rule's match that a semantic check rejected.
type Unconfirmed struct {
	RuleID int
	Check  string
}

// noteUnconfirmed records a rejected match in the transaction's memo.
func noteUnconfirmed(tx plugintypes.TransactionState, s *semantic) {
	m := memoOf(tx)
	if m == nil {
		return
	}
	for _, u := range m.unconfirmed {
		if u.RuleID == s.rule {
			return
		}
	}
	m.unconfirmed = append(m.unconfirmed, Unconfirmed{RuleID: s.rule, Check: s.name})
}

func confirmSQL(v string, span [2]int) bool {
	if isDataDocPath(v) {
		return false
	}
	if !isText(v) || isSQLi(v) {
		return true
	}
	if span[0] < 0 {
		for line := range strings.Lines(v) {
			if isSQLi(line) {
				return true
			}
		}
		return false
	}
	return spansLines(v, span) || isSQLi(lineOf(v, span[0])) || isSQLi(v[span[0]:])
}

func isSQLi(s string) bool {
	ok, _ := libinjection.IsSQLi(s)
	return ok
}

func confirmShell(v string, span [2]int) bool {
	if isDataDocPath(v) {
		return false
	}
	if !isText(v) {
		return true
	}
	if span[0] < 0 {
		return hasShellSeparator(v)
	}
	p := firstNonSpace(v, span[0])
	if strings.TrimSpace(v[:p]) == "" || spansLines(v, span) {
		return true // the value starts with it, or it is not one line's
	}
	return hasShellSeparator(v[lineStart(v, p):max(p, span[1])])
}

func hasShellSeparator(s string) bool {
	return strings.ContainsAny(s, ";|&`") || strings.Contains(s, "$(") || strings.Contains(s, "${") ||
		strings.Contains(s, "<(") || strings.Contains(s, ">(")
}

func confirmScript(v string, span [2]int) bool {
	if isDataDocPath(v) {
		return false
	}
	if !isText(v) || isXSS(v) {
		return true
	}
	if span[0] < 0 {
		return true // the match is not placed: it stands
	}
	if spansLines(v, span) {
		return true
	}
	line := lineOf(v, span[0])
	low := strings.ToLower(line)
	if strings.Contains(low, "javascript:") || strings.Contains(low, "vbscript:") || isXSS(line) {
		return true
	}
	return strings.ContainsAny(v[lineStart(v, span[0]):span[0]], `'"`+"`")
}

func isXSS(s string) bool { return libinjection.IsXSS(s) }

func confirmFile(v string, _ [2]int) bool { return !isDataDocPath(v) }

// isDataDocPath reports whether v is the path of a data document.
func isDataDocPath(v string) bool {
	if len(v) > 255 {
		return false
	}
	ext := v[strings.LastIndexByte(v, '.')+1:]
	switch strings.ToLower(ext) {
	case "json", "yaml", "yml", "toml", "lock":
	default:
		return false
	}
	for seg := range strings.SplitSeq(strings.TrimPrefix(v, "/"), "/") {
		if seg == "" || seg[0] == '.' {
			return false
		}
		for _, c := range seg {
			if !(c == '.' || c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				return false
			}
		}
	}
	return true
}

// isText reports whether v reads as text a person wrote rather than a
// payload: see the comment at the top.
func isText(v string) bool {
	lines, words := 0, 0
	for line := range strings.Lines(v) {
		n := wordCount(line)
		if n > 0 {
			lines++
		}
		words += n
	}
	return lines >= 3 && words >= 6
}

// wordCount counts runs of two letters or more.
func wordCount(s string) int {
	n, run := 0, 0
	for _, r := range s {
		if unicode.IsLetter(r) {
			run++
			continue
		}
		if run >= 2 {
			n++
		}
		run = 0
	}
	if run >= 2 {
		n++
	}
	return n
}

// spansLines reports whether the match, white space around it aside, runs
// over more than one line: text's lines are its units, and what takes
// several is not a word in one (a payload with line breaks for spaces).
func spansLines(v string, span [2]int) bool {
	return strings.ContainsAny(strings.TrimSpace(v[span[0]:span[1]]), "\r\n")
}

// lineStart is the offset of the start of the line holding offset i.
func lineStart(v string, i int) int { return strings.LastIndexByte(v[:i], '\n') + 1 }

// lineOf returns the line holding offset i.
func lineOf(v string, i int) string {
	start := lineStart(v, i)
	end := strings.IndexByte(v[i:], '\n')
	if end < 0 {
		return v[start:]
	}
	return v[start : i+end]
}

// firstNonSpace skips white space (line breaks included) from offset i.
func firstNonSpace(v string, i int) int {
	for i < len(v) && strings.IndexByte(" \t\r\n\v\f", v[i]) >= 0 {
		i++
	}
	return i
}
