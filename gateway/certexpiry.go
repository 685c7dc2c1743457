package gateway

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sekisho/sekisho/certs"
	"github.com/sekisho/sekisho/waf/alert"
)

// certCheckEvery is how often served certificates are checked for expiry.
const certCheckEvery = time.Hour

var descCertExpiry = prometheus.NewDesc("sekisho_certificate_expiry_timestamp_seconds",
	"When each served certificate expires (its NotAfter), by frontend, name, source (file, acme, self_signed) and file.",
	[]string{"frontend", "name", "source", "file"}, nil)

// servedCerts is every certificate the generation's frontends serve; of
// several with the same labels (ACME's old and renewed one), the latest.
func (g *Gateway) servedCerts() map[[4]string]certs.Cert {
	out := map[[4]string]certs.Cert{}
	for _, f := range g.frontends {
		if f.certs == nil {
			continue
		}
		for _, c := range f.certs.Certificates() {
			k := [4]string{f.name, c.Name, c.Source, c.File}
			if c.NotAfter.After(out[k].NotAfter) {
				out[k] = c
			}
		}
	}
	return out
}

// collectCerts sends the expiry gauges.
func (g *Gateway) collectCerts(ch chan<- prometheus.Metric) {
	for k, c := range g.servedCerts() {
		ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, float64(c.NotAfter.Unix()), k[:]...)
	}
}

// checkCerts raises cert.expiring for each served certificate within the
// alerts' cert_expiring of its expiry, once a day per certificate.
func (g *Gateway) checkCerts(now time.Time) {
	if g.alerts == nil || g.cfg.Alerts == nil {
		return
	}
	within := g.cfg.Alerts.CertExpiring
	for k, c := range g.servedCerts() {
		left := c.NotAfter.Sub(now)
		if left > within {
			continue
		}
		id := fmt.Sprint(k, c.NotAfter.Unix())
		if last, ok := g.sh.certWarned[id]; ok && now.Sub(last) < 24*time.Hour {
			continue
		}
		g.sh.certWarned[id] = now
		g.log.Warn().Str("frontend", k[0]).Str("name", c.Name).Str("source", c.Source).Time("not_after", c.NotAfter).Msg("certificate close to its expiry")
		g.alerts.Emit(alert.Event{Type: alert.EventCertExpiring, Host: c.Name,
			Message: fmt.Sprintf("expires in %s (not after %s)", left.Round(time.Hour), c.NotAfter.UTC().Format(time.RFC3339)),
			Fields:  map[string]string{"frontend": k[0], "source": c.Source, "file": c.File, "not_after": c.NotAfter.UTC().Format(time.RFC3339)}})
	}
}

// watchCerts checks the serving generation's certificates at once and
// every certCheckEvery until stop is closed.
func (sh *shared) watchCerts(stop <-chan struct{}) {
	t := time.NewTicker(certCheckEvery)
	defer t.Stop()
	for {
		sh.cur.Load().checkCerts(time.Now())
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
