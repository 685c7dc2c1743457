package waf

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// A policy's rules folder (Config.RulesDir) holds the operator's tuning,
// loaded around the embedded CRS in this order:
//
//	crs-setup.conf          after CRS's setup and the policy's own settings: overrides
//	                        (tx.allowed_methods, tx.allowed_request_content_type, ...)
//	plugins/*-config.conf   CRS v4 plugins' configuration
//	before-crs/*.conf       exclusions that act at run time (ctl:ruleRemoveTargetById ...)
//	plugins/*-before.conf
//	                        OWASP CRS v4
//	plugins/*-after.conf
//	after-crs/*.conf        exclusions that change rules once loaded (SecRuleRemoveById,
//	                        SecRuleUpdateTargetById ...)
//	custom/*.conf           the site's own rules
//
// Files in each place load in name order. Published CRS plugins (WordPress,
// Nextcloud rule exclusions) drop into plugins/ as they are.
type ruleFiles struct {
	setup, pluginConfig, before, pluginBefore, pluginAfter, after, custom []string
}

// localPrefix is where a rules folder appears in the FS the rules load from.
const localPrefix = "local/"

func listRuleFiles(dir string) (ruleFiles, error) {
	var rf ruleFiles
	if _, err := os.Stat(dir); err != nil {
		return rf, fmt.Errorf("rules_dir: %w", err)
	}
	glob := func(pattern string) ([]string, error) {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return nil, err
		}
		out := make([]string, 0, len(m))
		for _, f := range m {
			rel, _ := filepath.Rel(dir, f)
			out = append(out, filepath.ToSlash(rel))
		}
		slices.Sort(out)
		return out, nil
	}
	var errs []error
	for _, p := range []struct {
		dst     *[]string
		pattern string
	}{
		{&rf.pluginConfig, "plugins/*-config.conf"}, {&rf.before, "before-crs/*.conf"},
		{&rf.pluginBefore, "plugins/*-before.conf"}, {&rf.pluginAfter, "plugins/*-after.conf"},
		{&rf.after, "after-crs/*.conf"}, {&rf.custom, "custom/*.conf"},
	} {
		m, err := glob(p.pattern)
		errs = append(errs, err)
		*p.dst = m
	}
	if _, err := os.Stat(filepath.Join(dir, "crs-setup.conf")); err == nil {
		rf.setup = []string{"crs-setup.conf"}
	}
	return rf, errors.Join(errs...)
}

// all lists every file in load order.
func (rf ruleFiles) all() []string {
	return slices.Concat(rf.setup, rf.pluginConfig, rf.before, rf.pluginBefore, rf.pluginAfter, rf.after, rf.custom)
}

func includes(files []string) string {
	var b strings.Builder
	for _, f := range files {
		b.WriteString("Include " + localPrefix + f + "\n")
	}
	return b.String()
}

// RulesHash identifies the rules a policy loads: its settings and every
// file of its rules folder. The same hash means the same rules.
func RulesHash(c Config) (string, error) {
	c.SetDefaults()
	h := sha256.New()
	h.Write([]byte(Directives(c)))
	fmt.Fprintf(h, "\x00inspect_response=%v\x00crs_dir=%s\x00", *c.InspectResponse, c.CRSDir)
	fmt.Fprintf(h, "inspect_response_body=%v\x00response_body_types=%q\x00", *c.InspectResponseBody, c.ResponseBodyTypes)
	fmt.Fprintf(h, "semantic_checks=%v\x00rules_off=%q\x00", *c.SemanticChecks, c.RulesOff)
	if c.CRSDir != "" {
		// A CRS folder is large: its files' sizes and times stand for it.
		err := filepath.WalkDir(c.CRSDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00%d\x00%d\x00", p, info.Size(), info.ModTime().UnixNano())
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("crs_dir: %w", err)
		}
	}
	if c.RulesDir != "" {
		rf, err := listRuleFiles(c.RulesDir)
		if err != nil {
			return "", err
		}
		for _, f := range rf.all() {
			data, err := os.ReadFile(filepath.Join(c.RulesDir, filepath.FromSlash(f)))
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "\x00%s\x00%d\x00", f, len(data))
			h.Write(data)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// overlayFS shows a rules folder under localPrefix beside the embedded
// rules, and a CRS folder on disk in place of the embedded CRS.
type overlayFS struct {
	root  fs.FS
	local fs.FS // nil without a rules folder
	crs   fs.FS // nil: the embedded CRS
}

func (o overlayFS) Open(name string) (fs.File, error) {
	if rest, ok := strings.CutPrefix(name, localPrefix); ok && o.local != nil {
		return o.local.Open(path.Clean(rest))
	}
	if o.crs != nil {
		if rest, ok := strings.CutPrefix(name, "@owasp_crs/"); ok {
			return o.crs.Open(path.Join("rules", rest))
		}
		if name == "@owasp_crs" {
			return o.crs.Open("rules")
		}
		if name == "@crs-setup.conf.example" {
			return o.crs.Open("crs-setup.conf.example")
		}
	}
	return o.root.Open(name)
}
