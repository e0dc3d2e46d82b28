package plugins

import (
	"slices"
	"strings"

	"github.com/eddybroker/eddy/plugins/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The modules a plugin may import from.
const (
	importWASI = "wasi_snapshot_preview1"
	importEddy = "eddy"
)

const exportInitialize = "_initialize"

type signature struct {
	params, results []api.ValueType
}

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func (s signature) String() string {
	names := func(ts []api.ValueType) string {
		parts := make([]string, len(ts))
		for i, t := range ts {
			parts[i] = api.ValueTypeName(t)
		}
		return "(" + strings.Join(parts, ", ") + ")"
	}
	return names(s.params) + " -> " + names(s.results)
}

func sigOf(d api.FunctionDefinition) signature {
	return signature{d.ParamTypes(), d.ResultTypes()}
}

func (s signature) equal(o signature) bool {
	return slices.Equal(s.params, o.params) && slices.Equal(s.results, o.results)
}

// exportSigs are the signatures of the ABI's exports (docs/plugins.md).
var exportSigs = map[string]signature{
	abi.ExportVersion:     {nil, []api.ValueType{i32}},
	abi.ExportInputBuffer: {[]api.ValueType{i32}, []api.ValueType{i32}},
	abi.ExportLastError:   {nil, []api.ValueType{i64}},
	abi.ExportInit:        {[]api.ValueType{i32}, []api.ValueType{i32}},
	abi.ExportValidate:    {[]api.ValueType{i32}, []api.ValueType{i64}},
	abi.ExportPartition:   {[]api.ValueType{i32, i32}, []api.ValueType{i64}},
	abi.ExportRetain:      {[]api.ValueType{i32}, []api.ValueType{i64}},
	exportInitialize:      {nil, nil},
}

// eddyImports are the functions of the eddy host module. A new one
// arrives only with a new ABI minor version.
var eddyImports = map[string]signature{
	"log": {[]api.ValueType{i32, i32, i32}, nil},
}

// hooks maps each hook export to the plugin kind it makes.
var hooks = []struct{ export, kind string }{
	{abi.ExportValidate, abi.KindValidator},
	{abi.ExportPartition, abi.KindPartitioner},
	{abi.ExportRetain, abi.KindRetention},
}

// checkModule refuses a compiled module whose imports or exports break
// the ABI. It returns the kinds the module implements and its imports
// as "module.name".
func checkModule(c wazero.CompiledModule) (kinds, imports []string, err error) {
	for _, d := range c.ImportedFunctions() {
		mod, name, _ := d.Import()
		imports = append(imports, mod+"."+name)
		switch mod {
		case importWASI:
			// wazero's wasi_snapshot_preview1 has every function of the
			// spec; instantiation names any it lacks.
		case importEddy:
			want, ok := eddyImports[name]
			if !ok {
				return nil, nil, refused("module imports %q.%q, which this eddy (ABI %d.%d) does not provide", mod, name, abi.Major, abi.Minor)
			}
			if got := sigOf(d); !got.equal(want) {
				return nil, nil, refused("module imports %q.%q as %v; eddy provides %v", mod, name, got, want)
			}
		default:
			return nil, nil, refused("module imports %q.%q: a plugin may import only %s and %s", mod, name, importWASI, importEddy)
		}
	}
	for _, m := range c.ImportedMemories() {
		mod, name, _ := m.Import()
		return nil, nil, refused("module imports its memory (%q.%q); a plugin must define and export its own memory", mod, name)
	}
	if _, ok := c.ExportedMemories()["memory"]; !ok {
		return nil, nil, refused(`module does not export its memory as "memory"`)
	}
	exports := c.ExportedFunctions()
	for name, want := range exportSigs {
		d, ok := exports[name]
		if !ok {
			continue
		}
		if got := sigOf(d); !got.equal(want) {
			return nil, nil, refused("export %q has type %v; the ABI wants %v", name, got, want)
		}
	}
	for _, name := range []string{abi.ExportVersion, abi.ExportInputBuffer, abi.ExportLastError} {
		if _, ok := exports[name]; !ok {
			if _, start := exports["_start"]; start && name == abi.ExportVersion {
				return nil, nil, refused("module does not export %s and exports _start: it looks like a WASI command, not an eddy plugin (build a reactor: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared)", name)
			}
			return nil, nil, refused("module does not export %s (every plugin must)", name)
		}
	}
	for _, h := range hooks {
		if _, ok := exports[h.export]; ok {
			kinds = append(kinds, h.kind)
		}
	}
	if len(kinds) == 0 {
		return nil, nil, refused("module exports none of the hooks %s, %s, %s", abi.ExportValidate, abi.ExportPartition, abi.ExportRetain)
	}
	slices.Sort(imports)
	return kinds, slices.Compact(imports), nil
}

// checkVersion refuses an ABI version this host cannot run.
func checkVersion(v uint32) error {
	major, minor := v>>16, v&0xFFFF
	if major != abi.Major || minor > abi.Minor {
		return refused("%s says %d.%d; this eddy runs ABI %d.%d", abi.ExportVersion, major, minor, abi.Major, abi.Minor)
	}
	return nil
}

// compileError words a wazero compile error for the person who uploaded
// the module.
func compileError(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "over limit of") {
		return refused("module needs more memory than a plugin may have: %s", msg)
	}
	return refused("module is not valid WebAssembly: %s", msg)
}

func kindOf(export string) string {
	for _, h := range hooks {
		if h.export == export {
			return h.kind
		}
	}
	return export
}
