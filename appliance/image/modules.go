package image

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// module is a kernel module to put into the initramfs.
type module struct {
	Name string // as modules.dep spells the file, without .ko
	Path string // absolute path of the .ko file
}

// modName normalises a module name: the kernel treats - and _ alike.
func modName(s string) string {
	s = filepath.Base(s)
	s, _, _ = strings.Cut(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// resolveModules returns the modules to load for names, dependencies
// first, from dir (/lib/modules/<version>): modules.dep gives each
// module's dependencies; names in modules.builtin are part of the kernel
// and skipped. A name in neither is an error naming it, so a typo in
// kernel.modules fails the build instead of the boot.
func resolveModules(dir string, names []string) ([]module, error) {
	depFile, err := os.ReadFile(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}
	deps := map[string][]string{}
	paths := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(depFile))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		file, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n := modName(file)
		paths[n] = file
		deps[n] = strings.Fields(rest)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			builtin[modName(l)] = true
		}
	}
	var out []module
	seen := map[string]bool{}
	var visit func(n string, from string) error
	visit = func(n, from string) error {
		if seen[n] || builtin[n] {
			return nil
		}
		file, ok := paths[n]
		if !ok {
			if from != "" {
				return fmt.Errorf("kernel modules: %s (needed by %s) is not in %s/modules.dep", n, from, dir)
			}
			return fmt.Errorf("kernel.modules: %s is neither a module in %s/modules.dep nor built into the kernel", n, dir)
		}
		seen[n] = true
		// modules.dep lists the full dependency closure; walking it
		// depth-first still puts every dependency before its user.
		for _, d := range deps[n] {
			if err := visit(modName(d), n); err != nil {
				return err
			}
		}
		if !strings.HasSuffix(file, ".ko") {
			return fmt.Errorf("kernel modules: %s is compressed (%s); the initramfs loads plain .ko files", n, file)
		}
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		out = append(out, module{Name: n, Path: file})
		return nil
	}
	for _, n := range names {
		if err := visit(modName(n), ""); err != nil {
			return nil, err
		}
	}
	return out, nil
}
