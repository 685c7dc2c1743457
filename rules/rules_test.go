package rules

import (
	"io/fs"
	"testing"
)

func TestFS_HoldsCRSAndOwnFiles(t *testing.T) {
	root := FS()
	for _, name := range []string{"@coraza.conf-recommended", "@crs-setup.conf.example", "sekisho/base.conf"} {
		if _, err := fs.Stat(root, name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	crs, err := fs.Glob(root, "@owasp_crs/*.conf")
	if err != nil || len(crs) < 20 {
		t.Fatalf("CRS rule files = %d (%v), want the CRS v4 set", len(crs), err)
	}
}
