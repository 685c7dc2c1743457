package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every link of the repository's Markdown files, and every path the
// README writes as `../...`, names a file inside the repository that
// exists: nothing points to the web or to folders beside the checkout.
func TestDocs_LinksStayInTheRepository(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	up := regexp.MustCompile("`(\\.\\./[^`\\s]+)`")
	checked := 0
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".md") {
			return nil
		}
		doc, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		var targets []string
		for _, m := range link.FindAllStringSubmatch(string(doc), -1) {
			targets = append(targets, m[1])
		}
		if rel == "README.md" {
			for _, m := range up.FindAllStringSubmatch(string(doc), -1) {
				targets = append(targets, m[1])
			}
		}
		for _, target := range targets {
			checked++
			file, _, _ := strings.Cut(target, "#")
			if file == "" {
				continue // a heading of the same file
			}
			if regexp.MustCompile(`^[a-zA-Z][a-zA-Z+.-]*:`).MatchString(file) || filepath.IsAbs(file) {
				t.Errorf("%s: %s leads out of the repository", rel, target)
				continue
			}
			abs := filepath.Join(filepath.Dir(p), filepath.FromSlash(file))
			if r, err := filepath.Rel(root, abs); err != nil || strings.HasPrefix(r, "..") {
				t.Errorf("%s: %s leads out of the repository", rel, target)
			} else if _, err := os.Stat(abs); err != nil {
				t.Errorf("%s: %s does not exist", rel, target)
			}
		}
		return nil
	})
	if checked < 20 {
		t.Fatalf("only %d links found: the walk missed the documents", checked)
	}
}

// The README says what `make test` needs: root, and every Debian package
// a test installs when it is missing (each debpkg.Need in the tests).
func TestDocs_READMESaysWhatMakeTestInstalls(t *testing.T) {
	root, _ := filepath.Abs("..")
	doc, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(doc), "`make test` runs")
	if i < 0 {
		t.Fatal("the README does not say what `make test` needs")
	}
	para, _, _ := strings.Cut(string(doc)[i:], "\n\n")
	need := regexp.MustCompile(`debpkg\.Need\(\w+, "[^"]+", "([^"]+)"\)`)
	pkgs := map[string]bool{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if strings.HasSuffix(p, "_test.go") {
			src, _ := os.ReadFile(p)
			for _, m := range need.FindAllStringSubmatch(string(src), -1) {
				pkgs[m[1]] = true
			}
		}
		return nil
	})
	if len(pkgs) < 3 {
		t.Fatalf("found only %v installed by the tests", pkgs)
	}
	for pkg := range pkgs {
		if !strings.Contains(para, "`"+pkg+"`") {
			t.Errorf("the README's `make test` paragraph does not name %s:\n%s", pkg, para)
		}
	}
	if !strings.Contains(para, "root") || !strings.Contains(para, "apt-get") {
		t.Errorf("the paragraph does not say root and apt-get:\n%s", para)
	}
}

// The README is the landing page: it stays short and links every
// document in docs/, so a newcomer can reach each one from it.
func TestDocs_READMELinksEveryDoc(t *testing.T) {
	root, _ := filepath.Abs("..")
	doc, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(doc), "\n"); n > 150 {
		t.Errorf("README.md has %d lines; the reference belongs in docs/ (at most 150)", n)
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if len(docs) == 0 {
		t.Fatal("no documents in docs/")
	}
	for _, p := range docs {
		if link := "](docs/" + filepath.Base(p) + ")"; !strings.Contains(string(doc), link) {
			t.Errorf("README.md does not link docs/%s", filepath.Base(p))
		}
	}
}
