package reputation

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// GeoDB answers an address's country and autonomous system from
// MaxMind-format (.mmdb) databases: GeoLite2 or GeoIP2 Country (or City) and
// ASN, or others with the same layout. It is safe for concurrent use; to
// take a new edition, open another and swap it in.
type GeoDB struct {
	country *maxminddb.Reader
	asn     *maxminddb.Reader
}

// GeoInfo is what the databases say about an address; fields they do not
// know are empty.
type GeoInfo struct {
	Country string // ISO 3166-1 alpha-2, such as "JP"
	ASN     uint   // such as 2497
	ASOrg   string // such as "Internet Initiative Japan Inc."
}

// countryRecord is the part of a Country or City record the gateway uses.
// The registered country stands in where the database gives no country
// (some anycast and satellite networks).
type countryRecord struct {
	Country    isoCode `maxminddb:"country"`
	Registered isoCode `maxminddb:"registered_country"`
}

type isoCode struct {
	ISOCode string `maxminddb:"iso_code"`
}

// asnRecord is a GeoLite2-ASN record.
type asnRecord struct {
	Number uint   `maxminddb:"autonomous_system_number"`
	Org    string `maxminddb:"autonomous_system_organization"`
}

// OpenGeo opens the country and ASN databases; an empty path leaves that
// part of GeoInfo empty. An error names the file at fault.
func OpenGeo(countryPath, asnPath string) (*GeoDB, error) {
	g := &GeoDB{}
	var err error
	if countryPath != "" {
		if g.country, err = openMMDB(countryPath, "country"); err != nil {
			return nil, err
		}
	}
	if asnPath != "" {
		if g.asn, err = openMMDB(asnPath, "asn"); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// openMMDB reads a database into memory rather than mapping it: a mapped
// file that is truncated or rewritten in place (not every updater renames)
// kills the process with SIGBUS. It is verified whole, so that a corrupt
// file fails here rather than answer wrongly later.
func openMMDB(path, kind string) (*maxminddb.Reader, error) {
	fi, err := os.Stat(path)
	if err == nil && !fi.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	var data []byte
	if err == nil {
		data, err = os.ReadFile(path)
	}
	var r *maxminddb.Reader
	if err == nil {
		r, err = maxminddb.OpenBytes(data)
	}
	if err == nil {
		err = r.Verify()
	}
	if err == nil && wrongKind(r.Metadata.DatabaseType, kind) {
		err = fmt.Errorf("a %s database, not %s", r.Metadata.DatabaseType, kind)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // it would name the file a second time
		}
		return nil, fmt.Errorf("%s database %s: %w", kind, path, err)
	}
	return r, nil
}

// wrongKind catches the two paths given the wrong way round, judging by
// the type the database declares (GeoLite2-ASN, GeoIP2-City, DBIP-Country-Lite).
func wrongKind(dbType, kind string) bool {
	t := strings.ToLower(dbType)
	asn := strings.Contains(t, "asn")
	geo := strings.Contains(t, "country") || strings.Contains(t, "city")
	if kind == "asn" {
		return geo && !asn
	}
	return asn && !geo
}

// Lookup says what the databases know about addr. A record that cannot be
// decoded (the databases were verified when opened) leaves its fields empty.
func (g *GeoDB) Lookup(addr netip.Addr) GeoInfo {
	var info GeoInfo
	if g == nil || !addr.IsValid() {
		return info
	}
	addr = addr.Unmap().WithZone("")
	if g.country != nil {
		var rec countryRecord
		if g.country.Lookup(addr).Decode(&rec) == nil {
			info.Country = rec.Country.ISOCode
			if info.Country == "" {
				info.Country = rec.Registered.ISOCode
			}
		}
	}
	if g.asn != nil {
		var rec asnRecord
		if g.asn.Lookup(addr).Decode(&rec) == nil {
			info.ASN, info.ASOrg = rec.Number, rec.Org
		}
	}
	return info
}

// Close releases the databases, which need no closing to be freed (they
// live in memory): a GeoDB that requests may still hold when a new one is
// swapped in can be left to the garbage collector instead.
func (g *GeoDB) Close() error {
	var errs []error
	for _, r := range []*maxminddb.Reader{g.country, g.asn} {
		if r != nil {
			errs = append(errs, r.Close())
		}
	}
	return errors.Join(errs...)
}
