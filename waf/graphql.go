package waf

import (
	"mime"
	"regexp"
	"strings"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
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

// graphqlAction is the action name of the rule that applies this (base.conf).
const graphqlAction = "sekisho_graphql"

// graphqlKey matches the arguments that hold a GraphQL over HTTP query.
var graphqlKey = regexp.MustCompile(`^(?:json\.(?:[0-9]+\.)?)?query$`)

// Bounds: a larger or deeper value is inspected as it is.
const (
	graphqlMaxLen    = 64 << 10
	graphqlMaxDepth  = 64
	graphqlMaxTokens = 16 << 10
)

type graphqlView struct{}

func newGraphQLAction() plugintypes.Action { return graphqlView{} }

// Init implements plugintypes.Action.
func (graphqlView) Init(plugintypes.RuleMetadata, string) error { return nil }

// Type implements plugintypes.Action.
func (graphqlView) Type() plugintypes.ActionType { return plugintypes.ActionTypeNondisruptive }

// Evaluate implements plugintypes.Action: it replaces each GraphQL document
// among the request's arguments by its literals and comments.
func (graphqlView) Evaluate(_ plugintypes.RuleMetadata, tx plugintypes.TransactionState) {
	v := tx.Variables()
	graphqlArgs(v.ArgsGet(), nil)
	graphqlArgs(v.ArgsPost(), func(key string) bool {
		return key == "body" && isGraphQLType(first(v.RequestHeaders().Get("content-type")))
	})
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
