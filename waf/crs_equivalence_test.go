package waf

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"

	"github.com/sekisho/sekisho/rules"
	"github.com/sekisho/sekisho/waf/waftest"
)

type ftwCase struct {
	name                 string
	method, uri, version string
	headers              [][2]string
	body                 string
}

func loadFTW() ([]ftwCase, error) {
	stages, err := waftest.LoadFTW()
	if err != nil {
		return nil, err
	}
	var cases []ftwCase
	for _, st := range stages {
		if strings.HasPrefix(st.Dir, "RESPONSE-") {
			continue
		}
		c := ftwCase{name: st.Name, method: st.Method, uri: st.URI, version: st.Version, body: st.Data}
		if st.Raw != nil {
			req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(st.Raw)))
			if err != nil {
				continue // a request Go cannot parse never reaches the WAF in sekisho either
			}
			c.method, c.uri, c.version = req.Method, req.RequestURI, req.Proto
			for k, vs := range req.Header {
				for _, v := range vs {
					c.headers = append(c.headers, [2]string{k, v})
				}
			}
			c.headers = append(c.headers, [2]string{"Host", req.Host})
			var b bytes.Buffer
			b.ReadFrom(req.Body)
			c.body = b.String()
		} else {
			for k, v := range st.Headers {
				c.headers = append(c.headers, [2]string{k, v})
			}
			slices.SortFunc(c.headers, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
		}
		cases = append(cases, c)
	}
	return cases, nil
}

// verdict is what one case did in a WAF: every matched rule (logged or
// not) and the interruption.
type verdict struct {
	IDs    []int `json:"ids"`
	RuleID int   `json:"rule_id"`
	Status int   `json:"status"`
}

func run(w coraza.WAF, c ftwCase) verdict {
	tx := w.NewTransaction()
	defer tx.Close()
	// As Engine.NewTx does: sekisho's operators remember per transaction.
	trackTx(tx)
	defer untrackTx(tx)
	tx.ProcessConnection("127.0.0.1", 40000, "127.0.0.1", 80)
	tx.ProcessURI(c.uri, c.method, c.version)
	for _, h := range c.headers {
		tx.AddRequestHeader(h[0], h[1])
	}
	it := tx.ProcessRequestHeaders()
	if it == nil && c.body != "" {
		it, _, _ = tx.WriteRequestBody([]byte(c.body))
	}
	if it == nil {
		it, _ = tx.ProcessRequestBody()
	}
	var v verdict
	for _, mr := range tx.MatchedRules() {
		id := mr.Rule().ID()
		if id >= stockCheckBase {
			id = (id - stockCheckBase) / 1000 // a stock copy of one check of a sekisho rule
		}
		if n := len(v.IDs); n == 0 || v.IDs[n-1] != id {
			v.IDs = append(v.IDs, id)
		}
	}
	if it != nil {
		v.RuleID, v.Status = it.RuleID, it.Status
	}
	return v
}

// runAll runs every case through w, two at a time.
func runAll(w coraza.WAF, cases []ftwCase) map[string]verdict {
	out := make(map[string]verdict, len(cases))
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan ftwCase)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				v := run(w, c)
				mu.Lock()
				out[c.name] = v
				mu.Unlock()
			}
		}()
	}
	for _, c := range cases {
		work <- c
	}
	close(work)
	wg.Wait()
	return out
}

// equivalencePolicy runs every CRS rule: paranoia level 4.
func equivalencePolicy() Config {
	// Stock CRS has no semantic checks and no views (decoded forms,
	// GraphQL): they add and remove matches by design and are measured
	// elsewhere (the ftw corpus through the gateway, e2e/crs_test.go).
	no := false
	c := Config{Name: "pl4", ParanoiaLevel: 4, SemanticChecks: &no, Directives: "SecRuleRemoveById 200030"}
	c.SetDefaults()
	return c
}

// referenceEnv makes the test binary compute stock Coraza's verdicts into
// the named file and exit: Coraza's operator registry is process-wide, so
// stock Coraza needs a process in which sekisho's operators were never
// registered. (Transformations are bound when rules are compiled, so one
// stock WAF built first in this process keeps them: newTransformProbe.)
const referenceEnv = "SEKISHO_CRS_STOCK_REFERENCE"

func TestMain(m *testing.M) {
	if out := os.Getenv(referenceEnv); out != "" {
		if err := writeStockReference(out); err != nil {
			fmt.Fprintln(os.Stderr, "stock reference:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	var err error
	if stockTransforms, err = newTransformProbe(); err != nil {
		fmt.Fprintln(os.Stderr, "stock transformation probe:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func writeStockReference(path string) error {
	// sekisho's views (base.conf, rule 200030) is an action stock
	// Coraza lacks: here it does nothing, so that a CRS case holding a
	// GraphQL document would show up as a difference.
	plugins.RegisterAction(viewsAction, func() plugintypes.Action { return stockNoop{} })
	plugins.RegisterAction(gateAction, func() plugintypes.Action { return stockNoop{} })
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(stockChannelsFS{rules.FS()}).WithDirectives(Directives(equivalencePolicy())))
	if err != nil {
		return err
	}
	if pluginsRegistered.Load() {
		return errors.New("sekisho's plugins are registered: this would not be stock Coraza")
	}
	cases, err := loadFTW()
	if err != nil {
		return err
	}
	data, err := json.Marshal(runAll(w, cases))
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// TestCRSEquivalence runs every request test of the CRS regression corpus
// (coraza-coreruleset's ftw files; response tests need a backend's body and
// sekisho does not inspect response bodies) through stock Coraza (Go regexp,
// in a child process) and through sekisho's engine (RE2 @rx), at paranoia
// level 4 so every rule runs, and requires the same matched rules and the
// same interruption for each.
func TestCRSEquivalence(t *testing.T) {
	refPath := filepath.Join(t.TempDir(), "stock.json")
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), referenceEnv+"="+refPath)
	var childOut bytes.Buffer
	child.Stdout, child.Stderr = &childOut, &childOut
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}

	e, err := New(equivalencePolicy(), rules.FS())
	if err != nil {
		t.Fatal(err)
	}
	cases, err := loadFTW()
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 4000 {
		t.Fatalf("only %d ftw cases loaded", len(cases))
	}
	ours := runAll(e.waf.(coraza.WAF), cases)

	if err := child.Wait(); err != nil {
		t.Fatalf("stock reference process: %v\n%s", err, childOut.String())
	}
	data, err := os.ReadFile(refPath)
	if err != nil {
		t.Fatal(err)
	}
	var stock map[string]verdict
	if err := json.Unmarshal(data, &stock); err != nil {
		t.Fatal(err)
	}
	if len(stock) != len(ours) {
		t.Fatalf("stock ran %d cases, sekisho %d", len(stock), len(ours))
	}
	blocked := 0
	for _, c := range cases {
		a, b := stock[c.name], ours[c.name]
		if !slices.Equal(a.IDs, b.IDs) || a.RuleID != b.RuleID || a.Status != b.Status {
			t.Errorf("%s: stock %+v, sekisho %+v", c.name, a, b)
		}
		if a.Status != 0 {
			blocked++
		}
	}
	t.Logf("%d CRS ftw request cases compared; %d blocked by both", len(cases), blocked)
}

// stockNoop stands for a sekisho action in the stock reference.
type stockNoop struct{}

func (stockNoop) Init(plugintypes.RuleMetadata, string) error                     { return nil }
func (stockNoop) Evaluate(plugintypes.RuleMetadata, plugintypes.TransactionState) {}
func (stockNoop) Type() plugintypes.ActionType                                    { return plugintypes.ActionTypeNondisruptive }
