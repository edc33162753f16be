package confirm

import (
	"os"
	"testing"

	"github.com/parley-chatops/parley/internal/testenv/pgtest"
	"github.com/parley-chatops/parley/internal/testenv/storetest"
)

// One PostgreSQL server for the package's tests; each test gets its own
// database on it.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// The suites run on SQLite and on PostgreSQL (internal/testenv/storetest).
type (
	backend  = storetest.Backend
	database = storetest.Database
)

func backends() []backend { return storetest.Backends() }

func forBackends(t *testing.T, test func(t *testing.T, bk backend)) {
	t.Helper()
	storetest.ForBackends(t, test)
}
