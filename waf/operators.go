package waf

import (
	"sync"
	"sync/atomic"

	"github.com/corazawaf/coraza/v3/experimental/plugins"
)

// Coraza's operator registry is process-wide and is read when rules are
// compiled, so sekisho's operators are registered once, before the first
// WAF is built. Each keeps Coraza's semantics: TestCRSEquivalence compares
// every CRS regression request with stock Coraza.
var (
	operatorsOnce       sync.Once
	operatorsRegistered atomic.Bool // for tests that need stock Coraza in the same binary
)

func registerOperators() {
	operatorsOnce.Do(func() {
		plugins.RegisterOperator("rx", newRX)
		plugins.RegisterOperator("pm", newPM)
		plugins.RegisterOperator("pmFromFile", newPMFromFile)
		plugins.RegisterOperator("pmf", newPMFromFile)
		operatorsRegistered.Store(true)
	})
}
