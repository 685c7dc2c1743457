package waf

import (
	"regexp"
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
// A check rejects a match only in text or prose (below), and only where it
// can tell; everywhere else the CRS match stands:
//
//   - sql (CRS 942xxx @rx rules): libinjection, CRS's own SQL tokenizer
//     (rule 942100), finds SQL injection in the value, in the line of the
//     match, or from the match on; or the match runs over several lines; or
//     prose holds UNION SELECT.
//   - sqlvalue (CRS 942100, libinjection itself, any value): the value is
//     not an e-mail address ("john+or@var.es" reads as `john OR @var`).
//   - shell (CRS's rules that find a command by its name or path, 932160,
//     932161, 932230-932239, 932250, 932260, 932370, 932380): in text, the
//     command stands where a shell reads one: at the start of the value, or
//     after a separator other than a line break (; | & ` $( ${ <( >() on its
//     line; in text a line break separates lines of prose or of a script
//     shown to a reader. In prose, never: a command name followed by plain
//     words ("ls 300 lexus", "zsh is the best!") runs nothing.
//   - script (CRS 941xxx @rx rules, 934100 Node.js): in text, libinjection
//     finds markup that runs script, or a javascript: or vbscript: URL is in
//     the match's line, or a quote before the match on its line can close a
//     string the value is written into. In prose, never: prose has no
//     markup, call or string ("JavaScript: Basics of JavaScript Language").
//   - url (CRS 9311xx @rx rules, remote file inclusion): in text or prose,
//     the value holds a URL ("://").
//   - payload (sekisho's detections.conf): the value is neither text nor
//     prose.
//   - file (CRS 930120, 930130, 932180, any value): the value is not the
//     path of a data document (.json, .yaml, .yml, .toml, .lock) with no
//     ".." and no hidden (dot) segment: CRS lists package.json, config.json
//     or docker-compose.yml among restricted files and uploads, which
//     applications serve and accept as data.
//
// No check finds an injection in a data document's path either.
//
// "Text" is a value a person wrote: at least three lines with words in them
// and six words (runs of two letters or more) in all, as in a message, a
// ticket, notes or a code sample. "Prose" is one line of at least three
// plain words (isProse): a title, a search, a sentence. Other values, the
// shape of payloads, are left to CRS as it is.
//
// A match a check rejects does not score and is not in the verdict's
// matches; it is in the verdict's Unconfirmed list (rule and check), which
// the gateway logs (waf_unconfirmed) and counts
// (sekisho_waf_unconfirmed_total). semantic_checks: false in a policy turns
// the checks off.

// semantic is a check that confirms one rule's matches.
type semantic struct {
	name  string
	rule  int
	check func(value string, span [2]int) bool // span: the match in value, or -1s
}

var semanticChecks = map[string]func(string, [2]int) bool{
	"sql":      confirmSQL,
	"sqlvalue": confirmSQLValue,
	"shell":    confirmShell,
	"script":   confirmScript,
	"file":     confirmFile,
	"payload":  confirmPayload,
	"url":      confirmURL,
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
	case id >= 200150 && id < 200200: // rules/sekisho/detections.conf
		return "payload"
	case id/100 == 9311 && op == "rx":
		return "url"
	case id/1000 == 942 && op == "rx":
		return "sql"
	case id/1000 == 942 && op == "detectSQLi":
		return "sqlvalue"
	case shellWordRules[id]:
		return "shell"
	case id/1000 == 941 && op == "rx", id == 934100:
		return "script"
	}
	return ""
}

// shellWordRules are CRS's rules that find a command by its name or its
// path (Unix and Windows command lists, shell paths): the ones that match
// words. CRS's other command injection rules match syntax (expansions,
// wildcards, FOR /F, PowerShell, shellshock), which no check here reads
// better.
var shellWordRules = map[int]bool{
	932160: true, 932161: true, // Unix shell paths
	932230: true, 932235: true, 932236: true, 932237: true, 932238: true, 932239: true, // Unix commands
	932250: true, 932260: true, // direct Unix command execution
	932370: true, 932380: true, // Windows commands
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
	switch {
	case isDataDocPath(v):
		return false
	case isProse(v):
		return isSQLi(v) || unionSelect.MatchString(v)
	case !isText(v) || isSQLi(v):
		return true
	case span[0] < 0:
		for line := range strings.Lines(v) {
			if isSQLi(line) {
				return true
			}
		}
		return false
	}
	return spansLines(v, span) || isSQLi(lineOf(v, span[0])) || isSQLi(v[span[0]:])
}

// confirmSQLValue confirms libinjection's own matches (CRS 942100) but on
// values of a shape that holds no SQL: an e-mail address ("john+or@var.es"
// is `john OR @var` to libinjection; its '+' may reach the rules as a space
// when a client left it unescaped in a query or form) or a data document's
// path.
func confirmSQLValue(v string, _ [2]int) bool {
	return !isEmail(v) && !isEmail(strings.ReplaceAll(v, " ", "+")) && !isDataDocPath(v)
}

func isSQLi(s string) bool {
	ok, _ := libinjection.IsSQLi(s)
	return ok
}

func confirmShell(v string, span [2]int) bool {
	switch {
	case isDataDocPath(v), isProse(v):
		// Prose holds no path, option, variable or separator: a command
		// word followed by plain words ("ls 300 lexus") runs nothing.
		return false
	case !isText(v):
		return true
	case span[0] < 0:
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
	switch {
	case isDataDocPath(v):
		return false
	case isProse(v):
		// Prose holds no markup, call or string: at most a "JavaScript:"
		// followed by words, which a browser would not run.
		return false
	case !isText(v) || isXSS(v):
		return true
	case span[0] < 0:
		return true // the match is not placed: it stands
	case spansLines(v, span):
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

// confirmURL confirms CRS's remote file inclusion rules (9311xx), which
// look for a URL, unless the value is text or prose that holds none ("Files
// are missing?" is no URL with a trailing '?').
func confirmURL(v string, _ [2]int) bool {
	return strings.Contains(v, "://") || !isText(v) && !isProse(v)
}

// confirmPayload confirms sekisho's own detections (detections.conf) on
// values that are neither text nor prose.
func confirmPayload(v string, _ [2]int) bool { return !isText(v) && !isProse(v) }

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

// isProse reports whether v is one line of plain words: at least three,
// separated by spaces, each made of letters and digits (an apostrophe or a
// hyphen inside), with sentence punctuation (. , ! ? : and parentheses)
// only at its ends. Such a value
// holds none of the syntax an injection needs: no quote to close, no
// operator, parenthesis, path, markup or command separator.
func isProse(v string) bool {
	if strings.ContainsAny(v, "\r\n") {
		return false
	}
	words := 0
	for tok := range strings.FieldsSeq(v) {
		tok = strings.TrimLeft(tok, "(")
		tok = strings.TrimRight(tok, ".,!?:)")
		if tok == "" {
			return false
		}
		for i, r := range tok {
			inner := i > 0 && i < len(tok)-1
			if !(unicode.IsLetter(r) || unicode.IsDigit(r) || inner && (r == '\'' || r == '-' || r == '’')) {
				return false
			}
		}
		words++
	}
	return words >= 3
}

// unionSelect is UNION [ALL|DISTINCT] SELECT: SQL, and never English.
var unionSelect = regexp.MustCompile(`(?i)\bunion\s+(?:(?:all|distinct)\s+)?select\b`)

var emailRe = regexp.MustCompile(`^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$`)

// isEmail reports whether v is an e-mail address of the common form.
func isEmail(v string) bool { return len(v) <= 254 && emailRe.MatchString(v) }

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
