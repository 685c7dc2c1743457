package config

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// configDoc is the reference of every key, relative to this package.
const configDoc = "../../docs/configuration.md"

// docKey is one key of the configuration file: its path as the reference
// writes it ("frontends[].bind[].address": [] for a list's items, * for a
// map's keys) and its type in the reference's words.
type docKey struct{ path, typ string }

// yamlKeys lists the keys t decodes, as yaml.v3 reads them: a field's yaml
// tag names it (else its lower-case name), "-" and unexported fields are
// skipped, ",inline" fields lend their keys to the struct that holds them;
// structs, pointers to them, and lists and maps of them are walked into.
func yamlKeys(t reflect.Type, prefix string) []docKey {
	var keys []docKey
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if strings.Contains(","+opts+",", ",inline,") {
			keys = append(keys, yamlKeys(ft, prefix)...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		keys = append(keys, docKey{path, docType(ft)})
		switch elem := deref(ft); {
		case ft.Kind() == reflect.Struct:
			keys = append(keys, yamlKeys(ft, path)...)
		case ft.Kind() == reflect.Slice && elem.Kind() == reflect.Struct:
			keys = append(keys, yamlKeys(elem, path+"[]")...)
		case ft.Kind() == reflect.Map && elem.Kind() == reflect.Struct:
			keys = append(keys, yamlKeys(elem, path+".*")...)
		}
	}
	return keys
}

// deref is the element type of a list or map, pointers taken away.
func deref(t reflect.Type) reflect.Type {
	if t.Kind() != reflect.Slice && t.Kind() != reflect.Map {
		return t
	}
	t = t.Elem()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

var durationType = reflect.TypeOf(time.Duration(0))

// docType names a key's type as the reference writes it.
func docType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.Slice:
		return "list of " + docType(t.Elem()) + "s"
	case t.Kind() == reflect.Map:
		return "map of " + docType(t.Elem()) + "s"
	}
	switch t.Kind() {
	case reflect.Struct:
		return "section"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "int"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return t.Kind().String()
}

// docRow is a row of the reference's tables: | `path` | type | default | meaning |.
var docRow = regexp.MustCompile("(?m)^\\| `([^`]+)` \\| ([^|]*?) \\|")

// Every key the configuration file takes is in docs/configuration.md, in
// a table row of its own with the type it has; and every row there names
// a key that exists, so a key renamed or removed leaves no stale entry.
func TestDoc_ConfigurationMDListsEveryKey(t *testing.T) {
	doc, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, m := range docRow.FindAllStringSubmatch(string(doc), -1) {
		if _, dup := rows[m[1]]; dup {
			t.Errorf("%s: `%s` has two rows", configDoc, m[1])
		}
		rows[m[1]] = strings.TrimSpace(m[2])
	}
	keys := yamlKeys(reflect.TypeOf(Config{}), "")
	if len(keys) < 100 {
		t.Fatalf("found only %d keys: the walk missed the structs", len(keys))
	}
	known := map[string]bool{}
	for _, k := range keys {
		known[k.path] = true
		typ, ok := rows[k.path]
		switch {
		case !ok:
			t.Errorf("%s has no row for `%s` (%s)", configDoc, k.path, k.typ)
		case typ != k.typ:
			t.Errorf("%s: `%s` is a %s, the row says %q", configDoc, k.path, k.typ, typ)
		}
	}
	for path := range rows {
		if !known[path] {
			t.Errorf("%s has a row for `%s`, which the configuration has no key for", configDoc, path)
		}
	}
	t.Logf("%d keys walked, checked against %s", len(keys), configDoc)
}
