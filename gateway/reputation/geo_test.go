package reputation

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// writeMMDB writes a database of the given type mapping each CIDR to its
// record, as MaxMind lays them out.
func writeMMDB(t testing.TB, dbType string, records map[string]mmdbtype.Map) string {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 24,
		Description: map[string]string{"en": "sekisho test " + dbType}})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range records {
		_, network, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Insert(network, rec); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), dbType+".mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func country(iso string) mmdbtype.Map {
	return mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(iso),
		"names": mmdbtype.Map{"en": mmdbtype.String("(name)")}}}
}

func asn(n uint32, org string) mmdbtype.Map {
	return mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint32(n), "autonomous_system_organization": mmdbtype.String(org)}
}

func testGeo(t testing.TB) (countryPath, asnPath string) {
	countryPath = writeMMDB(t, "GeoLite2-Country", map[string]mmdbtype.Map{
		"81.2.69.0/24":   country("GB"),
		"210.130.0.0/16": country("JP"),
		"2a02:c7c::/32":  country("GB"),
		"89.160.20.0/24": {"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String("SE")}},
	})
	asnPath = writeMMDB(t, "GeoLite2-ASN", map[string]mmdbtype.Map{
		"210.130.0.0/16": asn(2497, "Internet Initiative Japan Inc."),
		"2a02:c7c::/32":  asn(5607, "Sky UK Limited"),
	})
	return countryPath, asnPath
}

func TestGeoDB(t *testing.T) {
	g, err := OpenGeo(testGeo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	tests := []struct {
		addr string
		want GeoInfo
	}{
		{"81.2.69.160", GeoInfo{Country: "GB"}},
		{"210.130.1.2", GeoInfo{"JP", 2497, "Internet Initiative Japan Inc."}},
		{"::ffff:210.130.1.2", GeoInfo{"JP", 2497, "Internet Initiative Japan Inc."}},
		{"2a02:c7c:1::1", GeoInfo{"GB", 5607, "Sky UK Limited"}},
		{"89.160.20.1", GeoInfo{Country: "SE"}}, // registered country only
		{"192.0.2.1", GeoInfo{}},
		{"2001:db8::1", GeoInfo{}},
	}
	for _, tt := range tests {
		if got := g.Lookup(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Lookup(%s) = %+v, want %+v", tt.addr, got, tt.want)
		}
	}
	if got := g.Lookup(netip.Addr{}); got != (GeoInfo{}) {
		t.Errorf("Lookup of the zero Addr = %+v", got)
	}
}

func TestGeoDBPartial(t *testing.T) {
	countryPath, asnPath := testGeo(t)
	addr := netip.MustParseAddr("210.130.1.2")
	onlyASN, err := OpenGeo("", asnPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := onlyASN.Lookup(addr); got != (GeoInfo{"", 2497, "Internet Initiative Japan Inc."}) {
		t.Errorf("ASN only: %+v", got)
	}
	onlyCountry, err := OpenGeo(countryPath, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := onlyCountry.Lookup(addr); got != (GeoInfo{Country: "JP"}) {
		t.Errorf("country only: %+v", got)
	}
	none, err := OpenGeo("", "")
	if err != nil || none.Lookup(addr) != (GeoInfo{}) || none.Close() != nil {
		t.Errorf("no databases: %v", err)
	}
	var nilDB *GeoDB
	if nilDB.Lookup(addr) != (GeoInfo{}) {
		t.Error("a nil GeoDB knows something")
	}
}

func TestOpenGeoErrors(t *testing.T) {
	countryPath, asnPath := testGeo(t)
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.mmdb")
	writeFile(t, corrupt, "this is not a MaxMind database")
	data, err := os.ReadFile(countryPath)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.mmdb")
	// Keep the metadata at the end, lose the search tree's start.
	if err := os.WriteFile(truncated, append(make([]byte, 64), data[64:]...), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.mmdb")
	writeFile(t, empty, "")
	tests := []struct {
		country, asn, want string
	}{
		{filepath.Join(dir, "missing.mmdb"), "", "country database " + filepath.Join(dir, "missing.mmdb") + ": no such file"},
		{"", filepath.Join(dir, "missing.mmdb"), "asn database " + filepath.Join(dir, "missing.mmdb") + ": no such file"},
		{corrupt, asnPath, "country database " + corrupt + ":"},
		{countryPath, corrupt, "asn database " + corrupt + ":"},
		{truncated, "", "country database " + truncated + ":"},
		{empty, "", "country database " + empty + ":"},
		{dir, "", "country database " + dir + ": not a regular file"},
		{asnPath, countryPath, "country database " + asnPath + ": a GeoLite2-ASN database, not country"},
		{"", countryPath, "asn database " + countryPath + ": a GeoLite2-Country database, not asn"},
	}
	for _, tt := range tests {
		g, err := OpenGeo(tt.country, tt.asn)
		if err == nil || g != nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("OpenGeo(%q, %q) = %v, want an error containing %q", tt.country, tt.asn, err, tt.want)
		}
	}
}

func BenchmarkGeoDB_Lookup(b *testing.B) {
	g, err := OpenGeo(testGeo(b))
	if err != nil {
		b.Fatal(err)
	}
	addrs := []netip.Addr{netip.MustParseAddr("210.130.1.2"), netip.MustParseAddr("2a02:c7c:1::1"), netip.MustParseAddr("192.0.2.1")}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		_ = g.Lookup(addrs[i%len(addrs)])
	}
}
