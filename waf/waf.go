package waf

import (
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental"
)

// Engine is a compiled WAF policy, safe for concurrent use by any number of requests.
type Engine struct {
	cfg      Config
	waf      experimental.WAFWithOptions // nil when the mode is off
	hash     string
	loadedAt time.Time
}

// Hash identifies the rules the engine runs (RulesHash).
func (e *Engine) Hash() string { return e.hash }

// LoadedAt is when the engine's rules were compiled.
func (e *Engine) LoadedAt() time.Time { return e.loadedAt }

// Config is the policy the engine was built from.
func (e *Engine) Config() Config { return e.cfg }

// New compiles the policy's rules from root, which must hold Coraza's
// recommended configuration, CRS v4 and sekisho's base file (rules.FS()).
func New(cfg Config, root fs.FS) (*Engine, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("waf policy %q: %w", cfg.Name, err)
	}
	hash, err := RulesHash(cfg)
	if err != nil {
		return nil, fmt.Errorf("waf policy %q: %w", cfg.Name, err)
	}
	e := &Engine{cfg: cfg, hash: hash, loadedAt: time.Now()}
	if cfg.Mode == ModeOff {
		return e, nil
	}
	var local ruleFiles
	if cfg.RulesDir != "" || cfg.CRSDir != "" {
		o := overlayFS{root: root}
		if cfg.RulesDir != "" {
			if local, err = listRuleFiles(cfg.RulesDir); err != nil {
				return nil, fmt.Errorf("waf policy %q: %w", cfg.Name, err)
			}
			o.local = os.DirFS(cfg.RulesDir)
		}
		if cfg.CRSDir != "" {
			if _, err := os.Stat(filepath.Join(cfg.CRSDir, "rules")); err != nil {
				return nil, fmt.Errorf("waf policy %q: crs_dir: a coreruleset folder holds rules/: %w", cfg.Name, err)
			}
			o.crs = os.DirFS(cfg.CRSDir)
		}
		root = o
	}
	root = channelsFS{root}
	if err := checkCRSFiles(root); err != nil {
		return nil, fmt.Errorf("waf policy %q: crs_dir: %w", cfg.Name, err)
	}
	registerPlugins()
	f := &fuser{semantic: *cfg.SemanticChecks, semanticOff: semanticOff(cfg), pl: cfg.ParanoiaLevel}
	w, err := build(cfg, local, root, f)
	f.finishGate()
	if again := f.retry(); err == nil && again != nil {
		f = again
		w, err = build(cfg, local, root, f)
		f.finishGate()
	}
	if err != nil {
		return nil, fmt.Errorf("waf policy %q: loading rules: %w", cfg.Name, locate(cfg, local, root, f, err))
	}
	wo, ok := w.(experimental.WAFWithOptions)
	if !ok {
		return nil, fmt.Errorf("waf policy %q: coraza WAF lacks transaction options", cfg.Name)
	}
	e.waf = wo
	// The atom DFA, shared by all policies, is brought up to date now
	// rather than by this policy's first request.
	atomDFA(math.MaxInt)
	return e, nil
}

// CRS's files are included in three parts, so that sekisho's views come
// between its protocol and its attack rules (rules/sekisho/views.conf).
// checkCRSFiles makes sure the parts hold every file of the CRS in use.
const (
	crsProtocolFiles = "@owasp_crs/REQUEST-9[0-2]*.conf"
	crsAttackFiles   = "@owasp_crs/REQUEST-9[3-9]*.conf"
	crsResponseFiles = "@owasp_crs/RESPONSE-*.conf"
	viewsFile        = "sekisho/views.conf"
	detectionsFile   = "sekisho/detections.conf"
)

// checkCRSFiles refuses a CRS whose rule files the three parts would not
// all include (a crs_dir with a file of another name).
func checkCRSFiles(root fs.FS) error {
	all, err := fs.Glob(root, "@owasp_crs/*.conf")
	if err != nil {
		return err
	}
	included := map[string]bool{}
	for _, p := range []string{crsProtocolFiles, crsAttackFiles, crsResponseFiles} {
		files, err := fs.Glob(root, p)
		if err != nil {
			return err
		}
		for _, f := range files {
			included[f] = true
		}
	}
	for _, f := range all {
		if !included[f] {
			return fmt.Errorf("%s: a CRS rule file is named REQUEST-9NN-*.conf or RESPONSE-9NN-*.conf", path.Base(f))
		}
	}
	return nil
}

// build compiles the policy with its rules rewritten by f (fuse.go).
func build(cfg Config, local ruleFiles, root fs.FS, f *fuser) (coraza.WAF, error) {
	return coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(fusedFS{root, f}).WithDirectives(f.rewrite(directives(cfg, local))))
}

// Directives returns the SecLang configuration that a policy compiles to,
// its rules folder aside.
func Directives(c Config) string { return directives(c, ruleFiles{}) }

func directives(c Config, local ruleFiles) string {
	engine := "On"
	if c.Mode == ModeDetect {
		engine = "DetectionOnly"
	}
	action := "Reject"
	if c.RequestBodyLimitAction == LimitProcessPartial {
		action = "ProcessPartial"
	}
	// Coraza refuses a body whose length reaches its limit, so a limit one
	// byte larger accepts bodies of exactly RequestBodyLimit bytes. The whole
	// inspected body stays in memory: never more than the limit. Rule 10001
	// enforces the inspection budget on multipart text fields after parsing
	// and before any CRS rule of phase 2 runs (other bodies are held to it
	// before they are read, in Tx.InspectRequest).
	coraLimit := c.RequestBodyLimit + 1
	var b strings.Builder
	fmt.Fprintf(&b, `Include @coraza.conf-recommended
Include sekisho/base.conf
SecRuleEngine %s
SecRequestBodyLimit %d
SecRequestBodyInMemoryLimit %d
SecRequestBodyLimitAction %s
SecRule ARGS_COMBINED_SIZE "@gt %d" "id:10001,phase:2,t:none,log,deny,status:413,msg:'Arguments larger than the inspection budget (request_body_no_files_limit)'"
%sInclude @crs-setup.conf.example
SecAction "id:900000,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level=%d"
SecAction "id:900110,phase:1,pass,t:none,nolog,setvar:tx.inbound_anomaly_score_threshold=%d,setvar:tx.outbound_anomaly_score_threshold=%d"
%sInclude `+crsProtocolFiles+`
Include `+viewsFile+`
SecRule ARGS_COMBINED_SIZE "@gt %d" "id:10003,phase:2,t:none,log,deny,status:413,msg:'Arguments and their decoded forms larger than the inspection budget (request_body_no_files_limit)'"
Include `+detectionsFile+`
Include `+crsAttackFiles+`
Include `+crsResponseFiles+`
Include `+channelsFile+`
%s%s`, engine, coraLimit, coraLimit, action, c.RequestBodyNoFilesLimit, responseBodyDirectives(c), c.ParanoiaLevel, c.InboundAnomalyThreshold, c.OutboundAnomalyThreshold,
		includes(slices.Concat(local.setup, local.pluginConfig, local.before, local.pluginBefore)), c.RequestBodyNoFilesLimit,
		responseBodyAfterCRS(c),
		includes(slices.Concat(local.pluginAfter, local.after, local.custom)))
	if c.Directives != "" {
		b.WriteString(c.Directives)
		b.WriteByte('\n')
	}
	b.WriteString(rulesOffDirectives(c))
	return b.String()
}

// responseBodyDirectives turn on Coraza's response body phase for a policy
// that inspects bodies. The gateway picks the bodies (by the policy's
// media types, which may be wildcards Coraza's exact list cannot say) and
// hands over at most ResponseBodyLimit decoded bytes; rule 10002 has
// Coraza inspect whatever it was handed. One byte over the limit, as for
// requests, since Coraza stops at the limit rather than after it.
func responseBodyDirectives(c Config) string {
	if c.InspectResponse == nil || c.InspectResponseBody == nil || !*c.InspectResponse || !*c.InspectResponseBody {
		return ""
	}
	return fmt.Sprintf(`SecResponseBodyAccess On
SecResponseBodyLimit %d
SecResponseBodyLimitAction ProcessPartial
SecAction "id:10002,phase:3,pass,t:none,nolog,ctl:forceResponseBodyVariable=On"
`, c.ResponseBodyLimit+1)
}

// responseBodyAfterCRS drops CRS's skip of compressed responses (one rule
// at the top of each RESPONSE-95x file): ModSecurity sees a gzip body as
// it travels, sekisho hands the rules the decoded text, and a body in an
// encoding it does not decode is not handed over at all. Kept, the skip
// would let any server that compresses leak unseen.
func responseBodyAfterCRS(c Config) string {
	if responseBodyDirectives(c) == "" {
		return ""
	}
	return "SecRuleRemoveById 950010 951010 952010 953010 954010 955010 956010\n"
}
