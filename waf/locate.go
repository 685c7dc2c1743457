package waf

import (
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/debuglog"
)

// Coraza's errors name neither the file nor the line of the directive
// that failed (an unknown action, a duplicated id), and the line it counts
// runs on across included files. So when a build fails, it is run once
// more with a locator that follows the parser: every file it includes
// (through the FS) and every directive it reads (through the debug log,
// which Coraza writes for each directive before compiling it). The
// directive being read when the error came is the one to blame. Only the
// failing path pays for this.

// locator follows one build's parser through its files.
type locator struct {
	raw fs.FS // the files as written, for their line numbers

	mu    sync.Mutex
	stack []*frame
	cur   string // the directive being parsed
	at    *frame // where it comes from
	line  int    // its first line, 1-based
	// globbed are the files an Include with a pattern is yet to open: the
	// parser opens them one after another, past the Include's own turn.
	globbed map[string]bool
}

// frame is a file (or the inline directives) the parser is reading.
type frame struct {
	name string
	dirs []directive
	next int // directives read so far
}

// newLocator starts at the inline directives of a build.
func newLocator(raw fs.FS, inline string) *locator {
	l := &locator{raw: raw, globbed: map[string]bool{}}
	l.stack = []*frame{{name: "", dirs: logicalLines(strings.Split(inline, "\n"))}}
	return l
}

// directive notes that the parser reads its next directive, text.
func (l *locator) directive(text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.popDone()
	top := l.stack[len(l.stack)-1]
	l.cur, l.at, l.line = text, nil, 0
	if top.next < len(top.dirs) {
		l.at, l.line = top, top.dirs[top.next].first+1
		top.next++
	}
	if arg, ok := includeArg(text); ok && strings.Contains(arg, "*") {
		names, _ := fs.Glob(l.raw, arg)
		for _, n := range names {
			l.globbed[n] = true
		}
	}
}

// includeArg is the path of an Include directive, as Coraza reads it.
func includeArg(text string) (string, bool) {
	dir, arg, _ := strings.Cut(text, " ")
	if !strings.EqualFold(dir, "Include") {
		return "", false
	}
	if len(arg) >= 3 && arg[0] == '"' && arg[len(arg)-1] == '"' {
		arg = strings.Trim(arg, `"`)
	}
	return strings.TrimSpace(arg), true
}

// opened notes that the parser opened name: a file it includes when the
// directive being parsed is an Include or an Include's pattern matched it
// (other reads are data files).
func (l *locator) opened(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := includeArg(l.cur); !ok && !l.globbed[name] {
		return
	}
	delete(l.globbed, name)
	data, err := fs.ReadFile(l.raw, name)
	if err != nil {
		return
	}
	l.popDone()
	l.stack = append(l.stack, &frame{name: name, dirs: logicalLines(strings.Split(string(data), "\n"))})
}

// popDone drops the files whose directives were all read: the parser is
// back in the file that included them. The inline directives stay.
func (l *locator) popDone() {
	for len(l.stack) > 1 {
		top := l.stack[len(l.stack)-1]
		if top.next < len(top.dirs) {
			return
		}
		l.stack = l.stack[:len(l.stack)-1]
	}
}

// where is the file (as the build's FS names it; "" for the inline
// directives) and line of the directive being parsed, or ok false.
func (l *locator) where() (name string, line int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.at == nil {
		return "", 0, false
	}
	return l.at.name, l.line, true
}

// locFS tells the locator what the parser opens.
type locFS struct {
	fs.FS
	l *locator
}

func (s locFS) Open(name string) (fs.File, error) {
	f, err := s.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if st, serr := f.Stat(); serr == nil && !st.IsDir() {
		s.l.opened(name)
	}
	return f, nil
}

// parseLog is a Coraza debug logger that hands each directive the parser
// reads to the locator and drops everything else.
type parseLog struct{ l *locator }

func (p parseLog) WithOutput(io.Writer) debuglog.Logger          { return p }
func (p parseLog) WithLevel(debuglog.Level) debuglog.Logger      { return p }
func (p parseLog) With(...debuglog.ContextField) debuglog.Logger { return p }
func (p parseLog) Trace() debuglog.Event                         { return debuglog.Noop().Trace() }
func (p parseLog) Debug() debuglog.Event                         { return &parseEvent{l: p.l} }
func (p parseLog) Info() debuglog.Event                          { return debuglog.Noop().Info() }
func (p parseLog) Warn() debuglog.Event                          { return debuglog.Noop().Warn() }
func (p parseLog) Error() debuglog.Event                         { return debuglog.Noop().Error() }

// parseEvent picks Coraza's "Parsing directive" event and its line.
type parseEvent struct {
	l    *locator
	line string
}

func (e *parseEvent) Msg(msg string) {
	if msg == "Parsing directive" {
		e.l.directive(e.line)
	}
}

func (e *parseEvent) Str(key, val string) debuglog.Event {
	if key == "line" {
		e.line = val
	}
	return e
}
func (e *parseEvent) Err(error) debuglog.Event                     { return e }
func (e *parseEvent) Bool(string, bool) debuglog.Event             { return e }
func (e *parseEvent) Int(string, int) debuglog.Event               { return e }
func (e *parseEvent) Uint(string, uint) debuglog.Event             { return e }
func (e *parseEvent) Stringer(string, fmt.Stringer) debuglog.Event { return e }
func (e *parseEvent) IsEnabled() bool                              { return true }

// locate runs the failed build again with a locator and puts the file and
// line of the directive that failed before err: a rules folder's file by
// its path on disk, a crs_dir file likewise, the policy's directives key
// by its line there. err is returned as it is when the place is unknown.
func locate(cfg Config, local ruleFiles, root fs.FS, used *fuser, err error) error {
	f := &fuser{off: used.off, keep: used.keep, semantic: used.semantic, semanticOff: used.semanticOff} // the same rewrite, fresh state
	defer f.finishGate()
	src := directives(cfg, local)
	l := newLocator(root, src)
	conf := coraza.NewWAFConfig().WithRootFS(locFS{fusedFS{root, f}, l}).
		WithDirectives(f.rewrite(src)).WithDebugLogger(parseLog{l})
	if _, again := coraza.NewWAF(conf); again == nil {
		return err // the failure did not come back: no place to name
	}
	name, line, ok := l.where()
	if !ok {
		return err
	}
	switch {
	case name == "":
		// The inline text ends with the policy's directives key.
		noKey := cfg
		noKey.Directives = ""
		before := strings.Count(directives(noKey, local), "\n")
		if cfg.Directives == "" || line <= before {
			return err
		}
		return fmt.Errorf("directives: line %d: %w", line-before, err)
	case strings.HasPrefix(name, localPrefix) && cfg.RulesDir != "":
		name = filepath.Join(cfg.RulesDir, filepath.FromSlash(strings.TrimPrefix(name, localPrefix)))
	case strings.HasPrefix(name, "@owasp_crs/") && cfg.CRSDir != "":
		name = filepath.Join(cfg.CRSDir, "rules", filepath.FromSlash(strings.TrimPrefix(name, "@owasp_crs/")))
	}
	return fmt.Errorf("%s:%d: %w", name, line, err)
}
