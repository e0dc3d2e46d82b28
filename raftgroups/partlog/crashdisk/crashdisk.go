package crashdisk

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Tree is the content of a directory tree: regular files by path relative
// to its root, and every directory (parents first).
type Tree struct {
	Files map[string][]byte
	Dirs  []string
}

// Read reads the tree under root.
func Read(root string) (Tree, error) {
	t := Tree{Files: map[string][]byte{}}
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		switch {
		case e.IsDir():
			if rel != "." {
				t.Dirs = append(t.Dirs, rel)
			}
		case e.Type().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			t.Files[rel] = b
		}
		return nil
	})
	if err != nil {
		return Tree{}, fmt.Errorf("crashdisk: read %s: %w", root, err)
	}
	return t, nil
}

// Write recreates the tree under root, which must be missing or empty.
func (t Tree) Write(root string) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("crashdisk: %w", err)
	}
	for _, d := range t.Dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return fmt.Errorf("crashdisk: %w", err)
		}
	}
	for p, b := range t.Files {
		path := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("crashdisk: %w", err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return fmt.Errorf("crashdisk: %w", err)
		}
	}
	return nil
}

// Copy copies the tree under src to dst: what a SIGKILL leaves.
func Copy(src, dst string) error {
	t, err := Read(src)
	if err != nil {
		return err
	}
	return t.Write(dst)
}

// Disk tracks what of the tree under a root is durable.
type Disk struct {
	root  string
	names map[string]bool   // files whose directory entry is durable
	data  map[string][]byte // fsynced content of files
}

// New starts tracking root, taking everything in it as durable.
func New(root string) (*Disk, error) {
	d := &Disk{root: root}
	return d, d.Synced()
}

// Root is the directory tracked.
func (d *Disk) Root() string { return d.root }

// Synced records that everything under root is now durable, as after a
// full sync.
func (d *Disk) Synced() error {
	cur, err := Read(d.root)
	if err != nil {
		return err
	}
	d.names, d.data = map[string]bool{}, map[string][]byte{}
	for p, b := range cur.Files {
		d.names[p] = true
		d.data[p] = b
	}
	return nil
}

// SyncedFiles records an fsync of each file (paths relative to the root):
// its content is durable, its name only once its directory is synced.
func (d *Disk) SyncedFiles(paths ...string) error {
	for _, p := range paths {
		b, err := os.ReadFile(filepath.Join(d.root, p))
		if err != nil {
			return fmt.Errorf("crashdisk: %w", err)
		}
		d.data[p] = b
	}
	return nil
}

// SyncedDir records an fsync of directory dir (relative to the root, "."
// for the root): the names it holds are durable, and names it no longer
// holds are durably gone. A file whose name becomes durable without an
// fsync of its own keeps no durable bytes.
func (d *Disk) SyncedDir(dir string) error {
	ents, err := os.ReadDir(filepath.Join(d.root, dir))
	if err != nil {
		return fmt.Errorf("crashdisk: %w", err)
	}
	here := map[string]bool{}
	for _, e := range ents {
		if e.Type().IsRegular() {
			here[filepath.Join(dir, e.Name())] = true
		}
	}
	for p := range d.names {
		if filepath.Dir(p) == filepath.Clean(dir) && !here[p] {
			delete(d.names, p)
			delete(d.data, p)
		}
	}
	for p := range here {
		d.names[p] = true
		if _, ok := d.data[p]; !ok {
			d.data[p] = nil
		}
	}
	return nil
}

// SyncedNames records that the directory entries of these files are
// durable: their directory was fsynced while they existed (and nothing
// else it held then is known to be).
func (d *Disk) SyncedNames(paths ...string) error {
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(d.root, p)); err != nil {
			return fmt.Errorf("crashdisk: %w", err)
		}
		d.names[p] = true
		if _, ok := d.data[p]; !ok {
			d.data[p] = nil
		}
	}
	return nil
}

// Durable returns the fsynced bytes of file p and whether its name is
// durable.
func (d *Disk) Durable(p string) ([]byte, bool) { return d.data[p], d.names[p] }

// Crash writes to dst (missing or empty) one state that a power loss now
// could leave, chosen with rng, and describes what it dropped.
func (d *Disk) Crash(rng *rand.Rand, dst string) (string, error) {
	cur, err := Read(d.root)
	if err != nil {
		return "", err
	}
	out := Tree{Files: map[string][]byte{}, Dirs: cur.Dirs}
	var desc []string
	for _, p := range sortedKeys(cur.Files) {
		b := cur.Files[p]
		synced := d.data[p]
		if !bytes.HasPrefix(b, synced) {
			return "", fmt.Errorf("crashdisk: %s changed other than by appending since its last fsync (%d bytes fsynced, %d now)", p, len(synced), len(b))
		}
		if !d.names[p] && rng.IntN(3) == 0 {
			desc = append(desc, fmt.Sprintf("%s: name lost", p))
			continue
		}
		tail := b[len(synced):]
		if len(tail) == 0 {
			out.Files[p] = b
			continue
		}
		keep := rng.IntN(len(tail) + 1)
		kept := slices.Clone(b[:len(synced)+keep])
		switch r := rng.IntN(10); {
		case r < 2:
			kept = slices.Clone(b)
			desc = append(desc, fmt.Sprintf("%s: kept all %d unsynced bytes", p, len(tail)))
		case r < 6:
			desc = append(desc, fmt.Sprintf("%s: kept %d of %d unsynced bytes", p, keep, len(tail)))
		case r < 8:
			z := rng.IntN(len(tail) - keep + 1)
			kept = append(kept, make([]byte, z)...)
			desc = append(desc, fmt.Sprintf("%s: kept %d of %d unsynced bytes, then %d zeros", p, keep, len(tail), z))
		default:
			g := rng.IntN(len(tail) - keep + 1)
			for range g {
				kept = append(kept, byte(rng.IntN(256)))
			}
			desc = append(desc, fmt.Sprintf("%s: kept %d of %d unsynced bytes, then %d random bytes", p, keep, len(tail), g))
		}
		out.Files[p] = kept
	}
	// Deleted since the directory's last fsync: the name may come back.
	for _, p := range sortedKeys(d.data) {
		if _, ok := cur.Files[p]; !ok && d.names[p] && rng.IntN(2) == 0 {
			out.Files[p] = slices.Clone(d.data[p])
			desc = append(desc, fmt.Sprintf("%s: deletion lost", p))
		}
	}
	if err := out.Write(dst); err != nil {
		return "", err
	}
	if len(desc) == 0 {
		return "nothing unsynced", nil
	}
	return strings.Join(desc, "; "), nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// SeedEnv and IterationsEnv tune the randomized crash tests: the seed to
// replay, and how many iterations to run instead of each test's short
// default (make chaos runs more).
const (
	SeedEnv       = "EDDY_CRASH_SEED"
	IterationsEnv = "EDDY_CRASH_ITERATIONS"
)

// Seed returns the seed for a randomized test: $EDDY_CRASH_SEED, or a new
// one. It logs the seed, and on failure how to replay it.
func Seed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(SeedEnv); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", SeedEnv, v, err)
		}
		seed = s
	}
	t.Logf("seed %d", seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay with %s=%d go test -run '^%s$'", SeedEnv, seed, t.Name())
		}
	})
	return seed
}

// Iterations returns $EDDY_CRASH_ITERATIONS when set, else def.
func Iterations(t testing.TB, def int) int {
	t.Helper()
	v := os.Getenv(IterationsEnv)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", IterationsEnv, v)
	}
	return n
}

// TempDir returns a fresh directory for crash states, on tmpfs when there
// is one: the tests fsync a lot and model the disk themselves.
func TempDir(t testing.TB) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "eddy-crash-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}
