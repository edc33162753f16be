//go:build tools

// Package charttest records the helm command that scripts/test-chart.sh
// builds for `helm lint`, so that go.mod and go.sum hold everything it needs.
package charttest

import _ "helm.sh/helm/v3/cmd/helm"
