package device

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

const schemaFile = "../../firmware-config/schema.json"

// TestSchemaMatchesConfig keeps firmware-config/schema.json in sync with
// the Go types: every YAML key of Config (the node's included) has a
// property of a matching JSON type, every property has a field, and every
// object refuses unknown keys as the parser does.
func TestSchemaMatchesConfig(t *testing.T) {
	b, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatalf("%s: %v", schemaFile, err)
	}
	compareSchema(t, "", reflect.TypeOf(Config{}), schema)
}

func compareSchema(t *testing.T, at string, typ reflect.Type, s map[string]any) {
	t.Helper()
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if desc, _ := s["description"].(string); desc == "" && at != "" {
		t.Errorf("schema %s: no description (editors show it)", at)
	}
	want := map[reflect.Kind]string{
		reflect.Struct: "object", reflect.Map: "object", reflect.Slice: "array", reflect.String: "string", reflect.Bool: "boolean",
		reflect.Int: "integer", reflect.Int16: "integer", reflect.Int32: "integer", reflect.Int64: "integer", reflect.Uint64: "integer",
	}[typ.Kind()]
	if got, _ := s["type"].(string); got != want {
		t.Errorf("schema %s: type %q, want %q for Go %s", at, got, want, typ)
		return
	}
	switch typ.Kind() {
	case reflect.Slice:
		items, _ := s["items"].(map[string]any)
		if items == nil {
			t.Errorf("schema %s: no items", at)
			return
		}
		if typ.Elem().Kind() == reflect.Struct {
			compareSchema(t, at+"[]", typ.Elem(), items)
		}
	case reflect.Struct:
		if s["additionalProperties"] != false {
			t.Errorf("schema %s: additionalProperties must be false (unknown keys are errors)", at)
		}
		props, _ := s["properties"].(map[string]any)
		var keys []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if key == "" || key == "-" || !f.IsExported() {
				continue
			}
			keys = append(keys, key)
			p, _ := props[key].(map[string]any)
			if p == nil {
				t.Errorf("schema %s: property %q missing (field %s.%s)", at, key, typ.Name(), f.Name)
				continue
			}
			compareSchema(t, strings.TrimPrefix(at+"."+key, "."), f.Type, p)
		}
		for k := range props {
			if !slices.Contains(keys, k) {
				t.Errorf("schema %s: property %q has no field in %s", at, k, typ)
			}
		}
	}
}

// TestExamplesMatchSchema validates every example against the schema, as
// an editor would.
func TestExamplesMatchSchema(t *testing.T) {
	sch := compileSchema(t)
	for _, f := range examples(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if err := sch.Validate(yamlAsJSON(t, f)); err != nil {
				t.Fatal(err)
			}
		})
	}
	// And the schema is not vacuous: a typo is refused.
	bad := map[string]any{"network": map[string]any{"adress": "10.0.2.15/24"}}
	if err := sch.Validate(bad); err == nil {
		t.Fatal("schema accepted network.adress")
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// yamlAsJSON reads a YAML file as the JSON document an editor validates
// (map keys become strings, as in initial_cluster).
func yamlAsJSON(t *testing.T, file string) any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(stringKeys(v))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func stringKeys(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = stringKeys(e)
		}
		return v
	case map[any]any:
		out := map[string]any{}
		for k, e := range v {
			out[fmt.Sprint(k)] = stringKeys(e)
		}
		return out
	case []any:
		for i, e := range v {
			v[i] = stringKeys(e)
		}
		return v
	}
	return v
}
