package enforce_test

import (
	"os"
	"testing"

	"github.com/apiwarden/apiwarden/internal/pgtest"
)

// pg is the PostgreSQL server of the cluster-mode benchmark; it starts
// only when a benchmark asks it for a database.
var pg pgtest.Server

func TestMain(m *testing.M) { os.Exit(pg.RunTests(m)) }
