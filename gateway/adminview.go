package gateway

import (
	"context"
	"net"
	"time"

	"github.com/sekisho/sekisho/balancer"
	"github.com/sekisho/sekisho/gateway/admin"
	"github.com/sekisho/sekisho/gateway/admin/console"
)

// adminView is what the admin listener sees of the gateway: the
// generation that serves when it asks (admin.Gateway).
type adminView struct{ g *Gateway }

var _ admin.Gateway = adminView{}

func (v adminView) Ready() (bool, []string) { return v.g.Ready() }
func (v adminView) Reload() error           { return v.g.Reload() }

func (v adminView) Stats(ctx context.Context) *admin.Snapshot { return v.g.current().stats(ctx) }
func (v adminView) Pools() []*balancer.Pool                   { return v.g.current().pools }
func (v adminView) Policies() []admin.Policy                  { return v.g.current().Policies() }
func (v adminView) Events() console.Lister                    { return liveEvents(v) }

func (v adminView) SetServerState(backend, server string, st balancer.State) error {
	return v.g.SetServerState(backend, server, st)
}

func (v adminView) SetServerWeight(backend, server string, w int) error {
	return v.g.SetServerWeight(backend, server, w)
}

func (v adminView) Tables() []admin.Table {
	g := v.g.current()
	out := make([]admin.Table, len(g.tables))
	for i, t := range g.tables {
		out[i] = admin.Table{Name: t.name, Config: t.cfg, Store: t.store}
	}
	return out
}

func (v adminView) TLSUsage() map[string]any {
	g := v.g.current()
	out := map[string]any{}
	for _, f := range g.frontends {
		if u, ok := g.TLSUsage(f.name); ok {
			out[f.name] = u
		}
	}
	return out
}

// Bans lists the bans in force, every frontend's (up to a page each).
func (v adminView) Bans(ctx context.Context) ([]admin.Ban, error) {
	var out []admin.Ban
	now := time.Now()
	for _, f := range v.g.current().frontends {
		if f.handler == nil || f.handler.bans == nil {
			continue
		}
		bans, err := f.handler.bans.list(ctx, now)
		if err != nil {
			return nil, err
		}
		out = append(out, bans...)
	}
	return out, nil
}

// LiftBan ends a client's ban on every frontend.
func (v adminView) LiftBan(ctx context.Context, client string) error {
	for _, f := range v.g.current().frontends {
		if f.handler != nil && f.handler.bans != nil {
			if err := f.handler.bans.lift(ctx, client); err != nil {
				return err
			}
		}
	}
	return nil
}

// liveEvents is the console's view: the events of the generation that serves.
type liveEvents adminView

func (l liveEvents) List(ctx context.Context, f console.Filter, limit int) ([]console.Event, error) {
	return l.g.current().events.List(ctx, f, limit)
}

// Policies are the WAF policies and the rules each runs: their hash and load time.
func (g *Gateway) Policies() []admin.Policy {
	var out []admin.Policy
	for _, p := range g.policies {
		e := p.cur.Load()
		out = append(out, admin.Policy{Name: p.name, Hash: e.Hash(), LoadedAt: e.LoadedAt()})
	}
	return out
}

// AdminAddr is the admin listener's bound address, or nil without one.
func (g *Gateway) AdminAddr() net.Addr {
	if g.admin == nil {
		return nil
	}
	return g.admin.Addr()
}
