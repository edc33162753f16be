// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3 at
// the version k8s.io/kubernetes's own dependency graph selects, so that the
// test control plane needs nothing from outside the Go module proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
