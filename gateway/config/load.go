package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a config file, placed at a line and key.
type Error struct {
	File string
	Line int
	Path string
	Msg  string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Path, e.Msg)
}

// Errors is every problem found in a config file, in file order.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Load reads, decodes, defaults and validates a config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse decodes, defaults and validates config data; name is used in errors.
// On failure the error is Errors.
func Parse(name string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Errors{syntaxError(name, err)}
	}
	idx := index(&root)
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, Errors{syntaxError(name, err)}
		}
		var errs Errors
		for _, msg := range te.Errors {
			errs = append(errs, idx.decodeError(name, msg))
		}
		return nil, errs
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		var errs Errors
		for _, e := range flatten(err) {
			path, msg, _ := strings.Cut(e.Error(), ": ")
			errs = append(errs, &Error{File: name, Line: idx.line(path), Path: path, Msg: msg})
		}
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
		return nil, errs
	}
	return &c, nil
}

var lineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func syntaxError(name string, err error) *Error {
	e := &Error{File: name, Line: 1, Msg: err.Error()}
	if m := lineRe.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = m[2]
	}
	return e
}

// nodeIndex maps key paths ("frontends[0].bind[1].address") to where they
// stand in the file.
type nodeIndex struct {
	byPath map[string]int      // path -> line of its key (or item)
	keys   map[int][]keyOnLine // line -> keys written on it
}

type keyOnLine struct{ name, path string }

func index(root *yaml.Node) *nodeIndex {
	idx := &nodeIndex{byPath: map[string]int{"": 1}, keys: map[int][]keyOnLine{}}
	if len(root.Content) > 0 {
		idx.walk(root.Content[0], "")
	}
	return idx
}

func (idx *nodeIndex) walk(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			idx.byPath[p] = k.Line
			idx.keys[k.Line] = append(idx.keys[k.Line], keyOnLine{k.Value, p})
			idx.walk(v, p)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			idx.byPath[p] = item.Line
			idx.walk(item, p)
		}
	}
}

// line finds the line of path, or of its nearest written ancestor when the
// key itself is missing from the file.
func (idx *nodeIndex) line(path string) int {
	for {
		if l, ok := idx.byPath[path]; ok {
			return l
		}
		cut := strings.LastIndexAny(path, ".[")
		if cut < 0 {
			return 1
		}
		path = path[:cut]
	}
}

var unknownFieldRe = regexp.MustCompile(`^field (\S+) not found in type`)

// decodeError turns one of yaml.v3's "line N: ..." messages into an Error
// with the key path.
func (idx *nodeIndex) decodeError(name, msg string) *Error {
	e := &Error{File: name, Line: 1, Msg: msg}
	m := lineRe.FindStringSubmatch(msg)
	if m == nil {
		return e
	}
	e.Line, _ = strconv.Atoi(m[1])
	e.Msg = m[2]
	keys := idx.keys[e.Line]
	if f := unknownFieldRe.FindStringSubmatch(e.Msg); f != nil {
		e.Msg = fmt.Sprintf("unknown key %q", f[1])
		for _, k := range keys {
			if k.name == f[1] {
				e.Path = k.path
			}
		}
		return e
	}
	if len(keys) > 0 {
		e.Path = keys[len(keys)-1].path
	}
	return e
}
