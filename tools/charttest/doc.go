// Package charttest holds the tests of the Helm chart in charts/parley:
// it renders the chart as `helm install --dry-run` does (Helm's own Go
// packages, client-only), decodes every manifest strictly into typed
// Kubernetes objects, and checks what a production install depends on:
// hardened pods, probes, least-privilege RBAC, no secret values, the
// config file Parley will read, alerts and the dashboard.
//
// It is a module of its own so that Helm's dependency tree stays out of
// Parley's main module. scripts/test-chart.sh runs it.
package charttest
