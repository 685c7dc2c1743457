package waftest

import (
	"encoding/base64"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"text/template"

	crstests "github.com/corazawaf/coraza-coreruleset/v4/tests"
	"gopkg.in/yaml.v3"
)

// FTWStage is one request of the OWASP CRS regression corpus (the ftw
// YAML files that coraza-coreruleset ships) and the rule IDs the WAF
// must, and must not, match for it.
type FTWStage struct {
	Name string // rule-test/stage, e.g. 942100-3/0
	Dir  string // the rule file's folder, e.g. REQUEST-942-APPLICATION-ATTACK-SQLI
	// A stage gives either its request's parts or the raw request.
	// Version "" is an HTTP/0.9 request line (no version).
	Method, URI, Version string
	Headers              map[string]string
	Data                 string // go-ftw's templates expanded
	// NoAutocomplete is autocomplete_headers: false: the request goes out
	// with its own headers alone (no Content-Length added for Data).
	NoAutocomplete bool
	Raw            []byte // encoded_request, decoded
	Expect, Forbid []int
}

type ftwYAML struct {
	RuleID int `yaml:"rule_id"`
	Tests  []struct {
		TestID int `yaml:"test_id"`
		Stages []struct {
			Input struct {
				Method         string            `yaml:"method"`
				URI            string            `yaml:"uri"`
				Version        *string           `yaml:"version"` // "" differs from none
				Headers        map[string]string `yaml:"headers"`
				Data           string            `yaml:"data"`
				EncodedRequest string            `yaml:"encoded_request"`
				Autocomplete   *bool             `yaml:"autocomplete_headers"`
			} `yaml:"input"`
			Output struct {
				Log struct {
					ExpectIDs   []int `yaml:"expect_ids"`
					NoExpectIDs []int `yaml:"no_expect_ids"`
				} `yaml:"log"`
			} `yaml:"output"`
		} `yaml:"stages"`
	} `yaml:"tests"`
}

// LoadFTW reads every stage of the corpus, in file order. Missing method,
// URI and version default to GET, / and HTTP/1.1, as go-ftw's do.
func LoadFTW() ([]FTWStage, error) {
	var out []FTWStage
	err := fs.WalkDir(crstests.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		data, err := fs.ReadFile(crstests.FS, p)
		if err != nil {
			return err
		}
		var f ftwYAML
		if err := yaml.Unmarshal(data, &f); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for _, tc := range f.Tests {
			for si, st := range tc.Stages {
				in := st.Input
				s := FTWStage{Name: fmt.Sprintf("%d-%d/%d", f.RuleID, tc.TestID, si), Dir: path.Dir(p),
					Method: in.Method, URI: in.URI, Version: "HTTP/1.1", Headers: in.Headers,
					NoAutocomplete: in.Autocomplete != nil && !*in.Autocomplete,
					Expect:         st.Output.Log.ExpectIDs, Forbid: st.Output.Log.NoExpectIDs}
				if in.Version != nil {
					s.Version = *in.Version
				}
				if s.Data, err = expand(in.Data); err != nil {
					return fmt.Errorf("%s %s: data: %w", p, s.Name, err)
				}
				if in.EncodedRequest != "" {
					if s.Raw, err = base64.StdEncoding.DecodeString(in.EncodedRequest); err != nil {
						return fmt.Errorf("%s %s: %w", p, s.Name, err)
					}
				}
				if s.Method == "" {
					s.Method = "GET"
				}
				if s.URI == "" {
					s.URI = "/"
				}
				out = append(out, s)
			}
		}
		return nil
	})
	return out, err
}

// expand runs go-ftw's template over a stage's data. The corpus uses one
// function of the sprig library go-ftw has, repeat, which is all this
// provides: data with another fails to load rather than go out unexpanded.
func expand(data string) (string, error) {
	if !strings.Contains(data, "{{") {
		return data, nil
	}
	t, err := template.New("data").Funcs(template.FuncMap{"repeat": func(n int, s string) string { return strings.Repeat(s, n) }}).Parse(data)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, nil); err != nil {
		return "", err
	}
	return b.String(), nil
}
