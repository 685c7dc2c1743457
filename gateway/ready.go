package gateway

// Ready tells whether the gateway should get traffic, and if not, why:
// it serves on every listener, is not shutting down, and every backend a
// route needs has a server that may take a request. Redis is not asked: a
// replica serves from its local tables without it.
func (g *Gateway) Ready() (bool, []string) {
	g = g.current()
	var why []string
	if g.draining.Load() {
		why = append(why, "shutting down")
	}
	if !g.serving.Load() {
		why = append(why, "not serving yet")
	}
	for _, p := range g.routed {
		if !p.Usable() {
			why = append(why, "backend "+p.Name+": no usable server")
		}
	}
	return len(why) == 0, why
}
