package balancer

// Adopt carries into p what old, the same backend before a config reload,
// knows of the servers both have (same name and address): their health
// (active and passive checks' verdicts), observed latency and bandwidth,
// slow start, and the administrative state and weight set at run time,
// unless the config changed that server's state or weight. A server that stays does not go
// through Rise good checks again, and one an operator drained stays drained.
// Call it before p serves.
func (p *Pool) Adopt(old *Pool) {
	for _, s := range p.servers {
		o := old.byName[s.Name]
		if o == nil || o.Address != s.Address {
			continue
		}
		s.down.Store(o.down.Load())
		s.netFails.Store(o.netFails.Load())
		s.serverErrs.Store(o.serverErrs.Load())
		s.ejectedUntil.Store(o.ejectedUntil.Load())
		s.rampFrom.Store(o.rampFrom.Load())
		s.latency.Store(o.latency.Load())
		s.bw.copyFrom(&o.bw)
		s.lastCheck.Store(o.lastCheck.Load())
		if o.cfgState == s.cfgState {
			s.state.Store(o.state.Load())
		}
		if s.state.Load() == o.state.Load() {
			s.changed.Store(o.changed.Load()) // no change of state: the time of the last one stays
		}
		if o.cfgWeight == s.cfgWeight {
			s.weight.Store(o.weight.Load())
		}
	}
}

func (b *bandwidth) copyFrom(o *bandwidth) {
	o.mu.Lock()
	r, last := o.r, o.last
	o.mu.Unlock()
	b.mu.Lock()
	b.r, b.last = r, last
	b.mu.Unlock()
}
