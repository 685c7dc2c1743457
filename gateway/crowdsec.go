package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"

	"github.com/sekisho/sekisho/gateway/config"
	"github.com/sekisho/sekisho/gateway/crowdsec"
)

// crowdSecBouncer starts the bouncer of the config's CrowdSec LAPI, or
// takes over prev's when its config did not change. A LAPI out of reach at
// start is not an error: the bouncer keeps pulling in the background, and
// until its first answer no CrowdSec decision applies.
func (g *Gateway) crowdSecBouncer(c *config.Config, prev *Gateway) (*crowdsec.Bouncer, error) {
	cs := c.CrowdSec
	if cs == nil {
		return nil, nil
	}
	if prev != nil && prev.crowdsec != nil && reflect.DeepEqual(cs, prev.cfg.CrowdSec) {
		return prev.crowdsec, nil
	}
	key, err := secret(cs.APIKeyFile, config.CrowdSecAPIKeyEnv)
	if err != nil {
		return nil, fmt.Errorf("crowdsec.api_key_file: %w", err)
	}
	if key == "" {
		return nil, fmt.Errorf("crowdsec.api_key_file: no bouncer key: give api_key_file or %s", config.CrowdSecAPIKeyEnv)
	}
	b := &crowdsec.Bouncer{URL: cs.URL, APIKey: key, Interval: cs.Interval, OnError: func(err error) {
		g.current().log.Warn().Err(err).Msg("crowdsec: pull failed; the last decisions stay")
	}}
	if g.opts.Offline {
		return b, nil // sekisho validate: the config is checked, nothing is dialed
	}
	if err := b.Start(context.Background()); errors.Is(err, crowdsec.ErrConfig) {
		return nil, fmt.Errorf("crowdsec: %w", err)
	} else if err != nil {
		g.log.Warn().Err(err).Msg("crowdsec: the LAPI is not in reach yet; pulling in the background")
	}
	return b, nil
}

// crowdSecSays maps the LAPI's decision on addr to the access step's:
// ban denies, captcha challenges; other types are not applied.
func crowdSecSays(b *crowdsec.Bouncer, addr netip.Addr) (decision, reason string) {
	d, ok := b.Decision(addr)
	if !ok {
		return "", ""
	}
	switch d.Type {
	case "ban":
		return "deny", "crowdsec ban " + d.Scenario
	case "captcha":
		return "challenge", "crowdsec captcha " + d.Scenario
	}
	return "", ""
}
