//go:build tools

// Package kube records the control-plane commands that scripts/build-kube.sh
// builds, so that go.mod and go.sum hold everything they need.
package kube

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
