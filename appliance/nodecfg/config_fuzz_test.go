package nodecfg

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// fuzzDir holds the file FuzzLoad writes each input to; one per fuzz
// process.
var fuzzDir = sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "eddy-nodecfg-fuzz") })

// FuzzLoad feeds arbitrary bytes to the node config loader as a file on
// disk and asserts that it never panics and that its answers agree: Load
// of the file, Parse of the bytes, and ReadFile followed by ApplyDefaults
// and Validate accept the same inputs and yield the same config; an
// accepted config written back as YAML loads again to the same config;
// and the accessors the node calls on a loaded config work. The seeds in
// testdata/fuzz/FuzzLoad are the device configs in firmware-config
// (TestWriteConfigCorpus).
func FuzzLoad(f *testing.F) {
	f.Add([]byte("node_id: 3\nlisten:\n  quic: 127.0.0.1:1\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir, err := fuzzDir()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "node.yaml")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		loaded, lerr := Load(path)
		parsed, perr := Parse(b)
		if (lerr == nil) != (perr == nil) {
			t.Fatalf("Load: %v; Parse: %v", lerr, perr)
		}
		raw, rerr := ReadFile(path)
		if lerr != nil {
			if rerr == nil {
				raw.ApplyDefaults()
				if raw.Validate() == nil {
					t.Fatalf("Load refused (%v) what ReadFile, ApplyDefaults and Validate accept", lerr)
				}
			}
			return
		}
		if !reflect.DeepEqual(loaded, parsed) {
			t.Fatalf("Load and Parse differ:\n%+v\n%+v", loaded, parsed)
		}
		if rerr != nil {
			t.Fatalf("Load accepted what ReadFile refuses: %v", rerr)
		}
		raw.ApplyDefaults()
		if err := raw.Validate(); err != nil || !reflect.DeepEqual(raw, loaded) {
			t.Fatalf("ReadFile+ApplyDefaults+Validate: %v\n%+v\nLoad:\n%+v", err, raw, loaded)
		}
		if err := loaded.Validate(); err != nil {
			t.Fatalf("a loaded config fails validation: %v", err)
		}
		out, err := yaml.Marshal(&loaded)
		if err != nil {
			t.Fatalf("marshal a loaded config: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("a loaded config written back does not load: %v\n%s", err, out)
		}
		// Compared as YAML: an empty list or map and an absent one are the
		// same setting.
		if out2, err := yaml.Marshal(&again); err != nil || string(out2) != string(out) {
			t.Fatalf("written back and loaded again, the config changed:\n%s\n%s", out, out2)
		}
		_ = loaded.Plugins.CallBudget()
		_, _, _ = loaded.Groups.GroupTimeouts()
		_ = loaded.RetentionInterval()
		_ = loaded.TopicDefaults()
	})
}

var writeConfigCorpus = flag.Bool("write-fuzz-corpus", false, "rewrite the generated seed corpora under testdata/fuzz")

// TestWriteConfigCorpus copies the device configs of firmware-config into
// the seed corpora of FuzzLoad and FuzzParse (with -write-fuzz-corpus);
// without the flag it checks they still load.
func TestWriteConfigCorpus(t *testing.T) {
	files, err := filepath.Glob("../../firmware-config/examples/*/node*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no device configs (%v)", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(b); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if !*writeConfigCorpus {
			continue
		}
		name := "gen-" + strings.ReplaceAll(strings.TrimPrefix(file, "../../firmware-config/examples/"), "/", "-")
		for _, target := range []string{"FuzzLoad", "FuzzParse"} {
			dir := filepath.Join("testdata", "fuzz", target)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
