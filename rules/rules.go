// Package rules holds the WAF rule data that ships with sekisho: its base
// configuration and, through the coraza-coreruleset module, OWASP CRS v4.
// It is data with a thin Go shim; nothing here runs rules.
package rules

import (
	"embed"
	"io/fs"
	"strings"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
)

//go:embed sekisho/*.conf
var own embed.FS

// Prefix is the folder under which sekisho's own files appear in FS.
const Prefix = "sekisho/"

// FS returns one file system with CRS v4 and Coraza's recommended
// configuration at its root (@coraza.conf-recommended, @crs-setup.conf.example,
// @owasp_crs/) and sekisho's own files under Prefix.
func FS() fs.FS { return merged{} }

type merged struct{}

func (merged) Open(name string) (fs.File, error) {
	if name == strings.TrimSuffix(Prefix, "/") || strings.HasPrefix(name, Prefix) {
		return own.Open(name)
	}
	return coreruleset.FS.Open(name)
}
