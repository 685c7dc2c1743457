package waf

import (
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/tidwall/gjson"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/lexer"
	"github.com/vektah/gqlparser/v2/parser"
)

// A GraphQL document is read by a GraphQL server, which resolves its names
// and never interprets them as SQL, shell or markup: what a client can
// inject through it is its string literals (arguments, default values) and,
// for a server that logs or forwards them, its comments. Yet CRS reads the
// whole document as text, and its syntax trips the rules by itself:
// `$input` is MongoDB's $in to 942290, `{ node ...` a shell command group to
// 932235, `images(first: 5)` a function call. So sekisho presents a GraphQL
// document to the rules as what can carry an attack: each string literal
// (unescaped, as the server sees it) and each comment, as values of the
// same argument (ARGS:json.query), so that a payload in a literal is matched
// and named as before, and an exclusion of the argument still works.
//
// A value counts as a GraphQL document only where GraphQL over HTTP puts
// one: the "query" member of a JSON body (or of each request in a batch),
// the "query" parameter of a GET or a form, or an application/graphql
// body; and only when it parses, in full, as an executable document. Any
// other value, or one that does not parse, is inspected as it is. A
// document that parses holds nothing but names, numbers, punctuation,
// literals and comments, so no other text escapes inspection.

// viewsAction is the action name of the rule that presents GraphQL
// documents and text arrays as above and below (base.conf, rule 200030).
const viewsAction = "sekisho_views"

// isGraphQLKey reports whether an argument holds a GraphQL over HTTP query:
// query, json.query, json.N.query (a batch). It runs for every argument of
// every request, so it is string tests, not a regular expression.
func isGraphQLKey(key string) bool {
	rest, ok := strings.CutSuffix(key, "query")
	if !ok || rest == "" {
		return ok
	}
	rest, ok = strings.CutPrefix(rest, "json.")
	if !ok || rest == "" {
		return ok
	}
	n, ok := strings.CutSuffix(rest, ".")
	return ok && n != "" && strings.Trim(n, "0123456789") == ""
}

// Bounds: a larger or deeper value is inspected as it is.
const (
	viewMaxLen       = 64 << 10
	graphqlMaxDepth  = 64
	graphqlMaxTokens = 16 << 10
)

type views struct{}

func newViewsAction() plugintypes.Action { return views{} }

// Init implements plugintypes.Action.
func (views) Init(plugintypes.RuleMetadata, string) error { return nil }

// Type implements plugintypes.Action.
func (views) Type() plugintypes.ActionType { return plugintypes.ActionTypeNondisruptive }

// Evaluate implements plugintypes.Action: it replaces each GraphQL document
// among the request's arguments by its literals and comments, and each
// array of lines of text by the text; it presents the path's segments as
// arguments; then it adds the decoded forms of every argument.
func (views) Evaluate(r plugintypes.RuleMetadata, tx plugintypes.TransactionState) {
	v := tx.Variables()
	graphqlArgs(v.ArgsGet(), v.ArgsGet().FindAll(), nil)
	// One walk of the body's arguments serves both views: the GraphQL one
	// changes values only, and text arrays are found by their keys.
	post := v.ArgsPost().FindAll()
	graphqlArgs(v.ArgsPost(), post, func(key string) bool {
		return key == "body" && isGraphQLType(first(v.RequestHeaders().Get("content-type")))
	})
	textArrays(v.ArgsPost(), post)
	pathArgs(v.RequestFilename().Get(), v.ArgsPath())
	if v.RequestBodyProcessor().Get() == "XML" {
		xmlDoctype(tx, v.TX())
	}
	limit := &argLimit{tx: tx}
	if !decodedArgs(v.ArgsGet(), limit) || !decodedArgs(v.ArgsPost(), limit) || !decodedArgs(v.ArgsPath(), limit) ||
		!decodedArgs(v.RequestCookies(), limit) {
		if s, ok := v.ArgumentsLimitReached().(setter); ok {
			s.Set("1")
		}
		tx.Interrupt(&types.Interruption{RuleID: r.ID(), Action: "deny", Status: http.StatusBadRequest})
	}
}

// The decoded forms (decoded.go) are added here, after CRS's protocol rules
// (rules/sekisho/views.conf), and after the views above, so that a GraphQL
// document's literals and a text array's text are decoded too.
//
// The work is one pass over each value, and each decoded form no longer
// than its value. Nothing is skipped for its length: the decoded forms
// count toward the inspection budget (ARGS_COMBINED_SIZE, which rule 10003
// checks right after this rule) and toward Coraza's argument limit, so a
// request that they take past either is refused, never passed with a form
// left uninspected.

// decodedArgs adds the decoded forms of args' values, and reports false,
// having added what fits, when they would take args past limit values.
func decodedArgs(args collection.Map, limit *argLimit) bool {
	all := args.FindAll()
	n, key, over := len(all), "", false
	add := func(d string) {
		if n >= limit.value() {
			over = true
			return
		}
		args.Add(key, d)
		n++
	}
	for _, md := range all {
		key = md.Key()
		decodedForms(md.Value(), add)
		jsonInString(md.Value(), add)
		if over {
			return false
		}
	}
	return true
}

// argLimit is a transaction's argument limit, read when a decoded form is
// to be added: most requests add none, and reading it takes reflection.
type argLimit struct {
	tx any
	n  int
}

func (l *argLimit) value() int {
	if l.n == 0 {
		l.n = argumentLimit(l.tx)
	}
	return l.n
}

// A string that holds a JSON document (a review's payload, a webhook's
// "data", a form field a script filled with JSON.stringify) is, to its
// application, the values in it. So a value that is a JSON object or array
// is presented also as its string leaves, each one more value of the same
// argument: at most jsonLeavesMax of them, from a document no deeper than
// jsonStringDepth and no longer than viewMaxLen; one level only (a
// string in it that is JSON again is inspected as the string it is).
const (
	jsonLeavesMax   = 256
	jsonStringDepth = 32
)

func jsonInString(v string, add func(string)) {
	if len(v) < 2 || len(v) > viewMaxLen || v[0] != '{' && v[0] != '[' ||
		nestingExceeds([]byte(v), jsonStringDepth) || !gjson.Valid(v) {
		return
	}
	n := 0
	var walk func(r gjson.Result) bool
	walk = func(r gjson.Result) bool {
		switch {
		case r.IsObject() || r.IsArray():
			ok := true
			r.ForEach(func(k, val gjson.Result) bool {
				if r.IsObject() && k.Str != "" {
					// A member's name is a value a client chose too.
					if n++; n > jsonLeavesMax {
						return false
					}
					add(k.Str)
				}
				ok = walk(val)
				return ok
			})
			return ok
		case r.Type == gjson.String:
			if n++; n > jsonLeavesMax {
				return false
			}
			add(r.Str)
		}
		return true
	}
	walk(gjson.Parse(v))
}

// defaultArgumentLimit is Coraza's SecArgumentsLimit when none is set.
const defaultArgumentLimit = 1000

// argumentLimit is the transaction's SecArgumentsLimit. Coraza keeps it
// on its WAF, which an action reaches only through the transaction's
// exported WAF field (TestDecodedPostArgs_ArgumentLimit shows it found).
func argumentLimit(tx any) int {
	v := reflect.ValueOf(tx)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return defaultArgumentLimit
	}
	w := v.FieldByName("WAF")
	if !w.IsValid() || w.Kind() != reflect.Pointer || w.IsNil() {
		return defaultArgumentLimit
	}
	if l := w.Elem().FieldByName("ArgumentLimit"); l.IsValid() && l.CanInt() && l.Int() > 0 {
		return int(l.Int())
	}
	return defaultArgumentLimit
}

// graphqlArgs rewrites the GraphQL documents among all, args' arguments;
// extra accepts more keys than isGraphQLKey.
func graphqlArgs(args collection.Map, all []types.MatchData, extra func(string) bool) {
	for _, md := range all {
		key := md.Key()
		if !isGraphQLKey(key) && (extra == nil || !extra(key)) {
			continue
		}
		if parts, ok := graphqlParts(md.Value()); ok {
			args.Set(key, parts)
		}
	}
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

func isGraphQLType(ct string) bool {
	t, _, err := mime.ParseMediaType(ct)
	return err == nil && t == "application/graphql"
}

// graphqlParts returns the string literals and comments of doc, or false
// when doc is not an executable GraphQL document within the bounds.
func graphqlParts(doc string) ([]string, bool) {
	if len(doc) > viewMaxLen || !strings.ContainsRune(doc, '{') || nestingOver(doc, graphqlMaxDepth) {
		return nil, false
	}
	src := &ast.Source{Input: doc}
	if _, err := parser.ParseQueryWithTokenLimit(src, graphqlMaxTokens); err != nil {
		return nil, false
	}
	parts := []string{}
	lx := lexer.New(src)
	for {
		tok, err := lx.ReadToken()
		if err != nil {
			return nil, false // the parser accepted it: cannot happen
		}
		switch tok.Kind {
		case lexer.EOF:
			return parts, true
		case lexer.String, lexer.BlockString:
			parts = append(parts, tok.Value)
		case lexer.Comment:
			parts = append(parts, strings.TrimPrefix(tok.Value, "#"))
		}
	}
}

// nestingOver reports whether brackets in s nest deeper than limit, so that
// the recursive parser is never handed a document built to exhaust it.
func nestingOver(s string, limit int) bool {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{', '[', '(':
			if depth++; depth > limit {
				return true
			}
		case '}', ']', ')':
			depth--
		}
	}
	return false
}

// An array of strings that are the lines of one text (a notebook cell's
// "source", an editor's buffer, a message split in lines) is a document its
// application joins, and inspected one line at a time its lines read as
// payloads: a line of code is a short, dense value. So an array of at least
// textArrayMin strings, which joined by line breaks reads as text (isText),
// is presented as the joined text, the first element's value (the others
// are left empty): CRS's rules match it as before, and the semantic checks
// (semantic.go) read it as the text it is. An array that does not read as
// text (tags, ids, a payload split in parts) is inspected as it is.
const (
	textArrayMin = 3
	textArrayMax = 1000 // elements; a larger array is inspected as it is
)

// textArrays rewrites the arrays of lines of text among args, found by the
// keys of all, args' arguments.
func textArrays(args collection.Map, all []types.MatchData) {
	arrays := map[string]int{} // prefix -> number of leaf elements 0..n-1 seen
	for _, md := range all {
		if prefix, i, ok := arrayElement(md.Key()); ok && i < textArrayMax {
			arrays[prefix]++
		}
	}
	for prefix, n := range arrays {
		if n < textArrayMin || n > textArrayMax {
			continue
		}
		lines := make([]string, n)
		ok := true
		for i := range lines {
			vs := args.Get(prefix + "." + strconv.Itoa(i))
			if len(vs) != 1 {
				ok = false
				break
			}
			lines[i] = strings.TrimSuffix(vs[0], "\n")
		}
		if !ok {
			continue
		}
		text := strings.Join(lines, "\n")
		if len(text) > viewMaxLen || !isText(text) {
			continue
		}
		args.Set(prefix+".0", []string{text})
		for i := 1; i < n; i++ {
			args.Set(prefix+"."+strconv.Itoa(i), []string{})
		}
	}
}

// arrayElement cuts a key "PREFIX.N" of a JSON body's array element.
func arrayElement(key string) (prefix string, i int, ok bool) {
	dot := strings.LastIndexByte(key, '.')
	if dot < 0 || !strings.HasPrefix(key, "json.") {
		return "", 0, false
	}
	i, err := strconv.Atoi(key[dot+1:])
	if err != nil || i < 0 || key[dot+1] == '+' {
		return "", 0, false
	}
	return key[:dot], i, true
}

// The path's segments are where many applications take their parameters
// (/users/{id}/orders/{q}), but CRS's attack rules inspect the path as a
// whole in a few rules only (REQUEST_FILENAME), and most of them arguments
// only. So each segment of the decoded path that holds more than a name's
// characters (letters, digits, . _ ~ -) is presented as an argument too,
// ARGS_PATH:path.N (N from 1), which every rule that inspects ARGS reads: a
// payload in /search/<payload> is matched as in ?q=<payload>, and an
// exclusion of ARGS:path.2 covers it. A segment with parameters
// (files;x=1;y=2) gives their values. Such a path is presented whole as
// well (ARGS_PATH:path), for a payload with slashes in it. A segment of a name's characters
// only (an id, a slug, a file name) is left out, but for the text it is
// base64 of, if any. At most pathArgsMax segments.
const pathArgsMax = 64

func pathArgs(path string, args collection.Map) {
	if !isNamePath(path) {
		// And the whole path, for what spans segments ("; cat /etc/passwd").
		args.Add("path", path)
	}
	n := 0
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "" {
			continue
		}
		if n++; n > pathArgsMax {
			return
		}
		key := "path." + strconv.Itoa(n)
		name, params, hasParams := strings.Cut(seg, ";")
		if hasParams {
			// A segment's parameters (name;key=value;...): their values
			// are the arguments, as a query's.
			for p := range strings.SplitSeq(params, ";") {
				if _, v, ok := strings.Cut(p, "="); ok && v != "" {
					addSegment(args, key, v)
				} else if p != "" {
					addSegment(args, key, p)
				}
			}
			seg = name
		}
		addSegment(args, key, seg)
	}
}

// addSegment adds a segment, or a segment parameter's value, unless it is
// a name; a name only for the text it is base64 of.
func addSegment(args collection.Map, key, seg string) {
	if !isNameSegment(seg) {
		args.Add(key, seg)
	} else if d, ok := base64Text(seg); ok {
		args.Add(key, d)
	}
}

// isNameSegment reports whether seg holds only a name's characters.
func isNameSegment(seg string) bool {
	for i := 0; i < len(seg); i++ {
		if !isNameByte(seg[i]) {
			return false
		}
	}
	return true
}

// isNamePath reports whether every segment of path is a name.
func isNamePath(path string) bool {
	for i := 0; i < len(path); i++ {
		if path[i] != '/' && !isNameByte(path[i]) {
			return false
		}
	}
	return true
}

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '~' || c == '-'
}

// An XML document's type declaration (<!DOCTYPE ... [ <!ENTITY ... ]>) is
// where external entities are defined, and Coraza's XML body processor
// presents only element text and attribute values (XML:/*): the
// declaration reaches no rule. So it is read from the body Coraza holds (at
// most doctypeMax bytes) into TX:sekisho_xml_doctype, for the rule that
// looks for external entities (200156, detections.conf) only: as markup,
// it would be XSS to CRS's rules.
const (
	doctypeMax = 64 << 10
	doctypeVar = "sekisho_xml_doctype"
)

func xmlDoctype(tx any, vars collection.Map) {
	br, ok := tx.(interface{ RequestBodyReader() (io.Reader, error) })
	if !ok {
		return
	}
	r, err := br.RequestBodyReader()
	if err != nil {
		return
	}
	head, _ := io.ReadAll(io.LimitReader(r, doctypeMax))
	if d, ok := doctypeOf(head); ok {
		vars.Set(doctypeVar, []string{d})
	}
}

// doctypeOf returns the document type declaration in an XML document's
// prolog, internal subset included (or, in a document without one, the
// first entity declaration).
func doctypeOf(doc []byte) (string, bool) {
	i := indexASCIIFold(doc, "<!DOCTYPE")
	if i < 0 {
		i = indexASCIIFold(doc, "<!ENTITY")
	}
	if i < 0 {
		return "", false
	}
	depth := 0
	for j := i + 1; j < len(doc); j++ {
		switch doc[j] {
		case '[':
			depth++
		case ']':
			depth--
		case '>':
			if depth <= 0 {
				return string(doc[i : j+1]), true
			}
		}
	}
	return string(doc[i:]), true // unterminated: all of it
}

// indexASCIIFold is the offset of the first upper-case ASCII word in doc,
// in any case, or -1 (bytes.ToUpper would move offsets: some letters'
// upper case is longer or shorter in UTF-8).
func indexASCIIFold(doc []byte, word string) int {
	for i := 0; i+len(word) <= len(doc); i++ {
		j := 0
		for j < len(word) && (doc[i+j] == word[j] || doc[i+j]-'a'+'A' == word[j] && 'a' <= doc[i+j] && doc[i+j] <= 'z') {
			j++
		}
		if j == len(word) {
			return i
		}
	}
	return -1
}
