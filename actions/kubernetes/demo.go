package kubernetes

import (
	_ "embed"
	"slices"
)

//go:embed demo-shop.yaml
var demoShop []byte

// DemoManifests returns the demo shop: namespaces prod and staging with
// checkout, payments, auth, cart, search and frontend (prod) and checkout,
// payments, auth and cart (staging), their rollout history, a crash-prone
// payments pod with warning events and a recent scale of search. Load it
// with NewSandbox. The slice is a copy.
func DemoManifests() []byte { return slices.Clone(demoShop) }
