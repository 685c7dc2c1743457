package waf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/tidwall/gjson"
)

// Body processors of sekisho's own, selected by rules/sekisho/base.conf.
// Without them Coraza parses every body it has no processor for (text/plain,
// application/graphql, NDJSON, none declared) as urlencoded, as CRS asks
// (rule 901340): the text is cut at each & and =, percent-decoded (which the
// backend of a text body never does), and a line break in it becomes a CR/LF
// in an argument name (rule 921150). These processors present such a body
// as the backend reads it.
const (
	// TextProcessor shows the whole body as one value, ARGS_POST:body, and as REQUEST_BODY.
	TextProcessor = "TEXT"
	// NDJSONProcessor reads newline-delimited JSON (application/x-ndjson,
	// JSON Lines): each line is flattened as the JSON processor flattens a
	// document (json.a.b, json.items.0), every line's values under the same keys.
	NDJSONProcessor = "NDJSON"
)

// textArg is the argument name under which TextProcessor shows the body.
const textArg = "body"

// The processors are registered when the package loads, not with the
// operators (registerPlugins): they are part of the configuration
// (base.conf names them), which stock Coraza built in this process for
// TestCRSEquivalence loads too.
func init() {
	plugins.RegisterBodyProcessor("text", func() plugintypes.BodyProcessor { return textProcessor{} })
	plugins.RegisterBodyProcessor("ndjson", func() plugintypes.BodyProcessor { return ndjsonProcessor{} })
}

// setter is what Coraza's single-value variables (REQUEST_BODY) offer to processors.
type setter interface{ Set(string) }

func setRequestBody(v plugintypes.TransactionVariables, body string) {
	if s, ok := v.RequestBody().(setter); ok {
		s.Set(body)
	}
	if s, ok := v.RequestBodyLength().(setter); ok {
		s.Set(strconv.Itoa(len(body)))
	}
}

type textProcessor struct{}

func (textProcessor) ProcessRequest(r io.Reader, v plugintypes.TransactionVariables, _ plugintypes.BodyProcessorOptions) error {
	b, err := io.ReadAll(r) // bounded by the inspection budget (Tx.InspectRequest)
	if err != nil {
		return err
	}
	setRequestBody(v, string(b))
	v.ArgsPost().Add(textArg, string(b))
	return nil
}

func (textProcessor) ProcessResponse(io.Reader, plugintypes.TransactionVariables, plugintypes.BodyProcessorOptions) error {
	return nil
}

type ndjsonProcessor struct{}

func (ndjsonProcessor) ProcessRequest(r io.Reader, v plugintypes.TransactionVariables, o plugintypes.BodyProcessorOptions) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	setRequestBody(v, string(b))
	args, truncated, err := flattenNDJSON(b, o.RequestBodyRecursionLimit, o.ArgumentLimit)
	// Values found before an error are still inspected, as Coraza's JSON processor does.
	for _, kv := range args {
		v.ArgsPost().Add(kv[0], kv[1])
	}
	if truncated {
		if s, ok := v.ArgumentsLimitReached().(setter); ok {
			s.Set("1")
		}
	}
	return err
}

func (ndjsonProcessor) ProcessResponse(io.Reader, plugintypes.TransactionVariables, plugintypes.BodyProcessorOptions) error {
	return nil
}

// The flattened form of a body may take at most flattenFactor times its
// size (floor flattenFloor): deep nesting repeats each key's path in every
// value below it, and this keeps that repetition from costing more than
// the body allows. Coraza's JSON processor has the same bound.
const (
	flattenFactor = 8
	flattenFloor  = 4096
)

// defaultJSONDepth is Coraza's recommended SecRequestBodyJsonDepthLimit,
// for a configuration that sets none.
const defaultJSONDepth = 1024

var errFlattenBudget = errors.New("flattened NDJSON exceeds its byte budget")

// flattenNDJSON flattens each non-empty line of body as a JSON document into
// key, value pairs, at most maxDepth deep and maxArgs values (0: no limit).
// truncated reports values dropped at maxArgs; an invalid line is an error
// that names it.
func flattenNDJSON(body []byte, maxDepth, maxArgs int) (out [][2]string, truncated bool, err error) {
	if maxDepth <= 0 {
		maxDepth = defaultJSONDepth
	}
	f := flattener{maxArgs: maxArgs, budget: max(len(body)*flattenFactor, flattenFloor)}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, len(body)+1)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if nestingExceeds(line, maxDepth) {
			return f.out, f.truncated, fmt.Errorf("line %d: JSON nested deeper than %d", n, maxDepth)
		}
		if !gjson.ValidBytes(line) {
			return f.out, f.truncated, fmt.Errorf("line %d: invalid JSON", n)
		}
		if err := f.walk(gjson.ParseBytes(line), []byte("json")); err != nil {
			return f.out, f.truncated, fmt.Errorf("line %d: %w", n, err)
		}
		if f.truncated {
			break
		}
	}
	return f.out, f.truncated, sc.Err()
}

type flattener struct {
	out       [][2]string
	maxArgs   int
	budget    int
	truncated bool
}

// walk adds the leaves of value under key; for an array also its length, as Coraza does.
func (f *flattener) walk(value gjson.Result, key []byte) error {
	if !value.IsObject() && !value.IsArray() {
		return f.add(key, leaf(value))
	}
	n := 0
	var err error
	value.ForEach(func(k, item gjson.Result) bool {
		if f.truncated {
			return false
		}
		child := append(key[:len(key):len(key)], '.')
		if value.IsObject() {
			child = append(child, k.String()...)
		} else {
			child = strconv.AppendInt(child, int64(n), 10)
		}
		n++
		err = f.walk(item, child)
		return err == nil
	})
	if err == nil && value.IsArray() && !f.truncated {
		err = f.add(key, strconv.Itoa(n))
	}
	return err
}

func (f *flattener) add(key []byte, val string) error {
	if f.maxArgs > 0 && len(f.out) >= f.maxArgs {
		f.truncated = true
		return nil
	}
	if f.budget -= len(key) + len(val); f.budget < 0 {
		return errFlattenBudget
	}
	f.out = append(f.out, [2]string{string(key), val})
	return nil
}

func leaf(v gjson.Result) string {
	switch v.Type {
	case gjson.String:
		return v.Str
	case gjson.Null:
		return ""
	default:
		return v.Raw
	}
}

// nestingExceeds reports, in one pass without recursion, whether the JSON
// text s nests objects and arrays deeper than limit: gjson's validation and
// walk recurse once per level, so depth is checked before either runs.
func nestingExceeds(s []byte, limit int) bool {
	depth, inString, escaped := 0, false, false
	for _, c := range s {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString:
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > limit {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}
