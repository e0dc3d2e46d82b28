// Package pluginstest builds the example plugins for tests in other
// packages: `make plugins` leaves them next to their sources, and a plain
// `go test` builds any that are missing or stale, once per test binary.
package pluginstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	built = map[string][]byte{}
)

// SkipUnderRace skips tests that compile the example plugins (megabytes of
// Go compiled to Wasm): under the race detector wazero's compiler takes
// minutes. `make test` runs them in a second pass without -race.
func SkipUnderRace(t testing.TB) {
	t.Helper()
	if raceEnabled {
		t.Skip("compiles example plugins: run without -race (make test does)")
	}
}

// Example returns the module of plugins/examples/<name>, building it with
// GOOS=wasip1 GOARCH=wasm when needed.
func Example(t testing.TB, name string) []byte {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if m, ok := built[name]; ok {
		return m
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("find the module root: %v", err)
	}
	out := filepath.Join(t.TempDir(), name+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-o", out, "./plugins/examples/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build example plugin %s: %v\n%s", name, err, b)
	}
	m, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	built[name] = m
	return m
}

func moduleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(b))), nil
}
