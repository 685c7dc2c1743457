package waf

import (
	"sync"
	"sync/atomic"

	"github.com/corazawaf/coraza/v3/experimental/plugins"
)

// Coraza's operator and transformation registries are process-wide and are
// read when rules are compiled, so sekisho's are registered once, before the
// first WAF is built. Each keeps Coraza's semantics: TestCRSEquivalence
// compares every CRS regression request with stock Coraza.
var (
	pluginsOnce       sync.Once
	pluginsRegistered atomic.Bool // for tests that need stock Coraza in the same binary
)

func registerPlugins() {
	pluginsOnce.Do(func() {
		plugins.RegisterOperator("rx", newRX)
		plugins.RegisterOperator("pm", newPM)
		plugins.RegisterOperator("pmFromFile", newPMFromFile)
		plugins.RegisterOperator("pmf", newPMFromFile)
		plugins.RegisterOperator(fusedOperator, newFusedOp)
		plugins.RegisterOperator(crsOperator, newCRSOp)
		plugins.RegisterAction(viewsAction, newViewsAction)
		plugins.RegisterAction(gateAction, newGateAction)
		registerTransformations()
		pluginsRegistered.Store(true)
	})
}
