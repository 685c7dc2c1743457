package waf

import (
	"mime"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
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

// graphqlKey matches the arguments that hold a GraphQL over HTTP query.
var graphqlKey = regexp.MustCompile(`^(?:json\.(?:[0-9]+\.)?)?query$`)

// Bounds: a larger or deeper value is inspected as it is.
const (
	graphqlMaxLen    = 64 << 10
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
// array of lines of text by the text; then it adds the decoded forms of
// every argument.
func (views) Evaluate(r plugintypes.RuleMetadata, tx plugintypes.TransactionState) {
	v := tx.Variables()
	graphqlArgs(v.ArgsGet(), nil)
	graphqlArgs(v.ArgsPost(), func(key string) bool {
		return key == "body" && isGraphQLType(first(v.RequestHeaders().Get("content-type")))
	})
	textArrays(v.ArgsPost())
	limit := argumentLimit(tx)
	if !decodedArgs(v.ArgsGet(), limit) || !decodedArgs(v.ArgsPost(), limit) {
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
func decodedArgs(args collection.Map, limit int) bool {
	all := args.FindAll()
	n := len(all)
	for _, md := range all {
		key, over := md.Key(), false
		decodedForms(md.Value(), func(d string) {
			if n >= limit {
				over = true
				return
			}
			args.Add(key, d)
			n++
		})
		if over {
			return false
		}
	}
	return true
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

// graphqlArgs rewrites the GraphQL documents of one argument collection;
// extra accepts more keys than graphqlKey.
func graphqlArgs(args collection.Map, extra func(string) bool) {
	for _, md := range args.FindAll() {
		key := md.Key()
		if !graphqlKey.MatchString(key) && (extra == nil || !extra(key)) {
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
	if len(doc) > graphqlMaxLen || !strings.ContainsRune(doc, '{') || nestingOver(doc, graphqlMaxDepth) {
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

// textArrays rewrites the arrays of lines of text among args.
func textArrays(args collection.Map) {
	arrays := map[string]int{} // prefix -> number of leaf elements 0..n-1 seen
	for _, md := range args.FindAll() {
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
		if len(text) > graphqlMaxLen || !isText(text) {
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
