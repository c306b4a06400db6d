package plugin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// PathEnv is the environment variable listing folders to search for plugin
// binaries, separated like PATH.
const PathEnv = "RUNNEL_PLUGIN_PATH"

// Source says where a plugin was found.
type Source string

// The places Discover looks, in order.
const (
	SourcePath    Source = PathEnv
	SourceBeside  Source = "beside-binary"
	SourceBuiltin Source = "builtin"
)

// Found is one plugin found by Discover.
type Found struct {
	Kind Kind
	Name string
	// Path is the binary; empty for a built-in.
	Path   string
	Source Source
	// Shadowed is true when a plugin of the same name was found earlier in
	// the search order; that earlier one is the one used.
	Shadowed bool
}

// ErrNotFound is matched by the error Find returns when no plugin has the
// name asked for.
var ErrNotFound = errors.New("plugin not found")

// Search is where to look for plugins. The zero value searches
// RUNNEL_PLUGIN_PATH and the folder beside the running binary, with no
// built-ins.
type Search struct {
	// Path replaces RUNNEL_PLUGIN_PATH when not nil.
	Path []string
	// Executable replaces the running binary when not empty: its folder's
	// plugins subfolder is searched.
	Executable string
	// Builtins are the names compiled into the host, searched last.
	Builtins []string
}

type folder struct {
	dir string
	src Source
}

// folders returns the folders to scan, in order, with their sources.
func (s Search) folders() []folder {
	var out []folder
	path := s.Path
	if path == nil {
		path = filepath.SplitList(os.Getenv(PathEnv))
	}
	for _, d := range path {
		if d != "" {
			out = append(out, folder{d, SourcePath})
		}
	}
	exe := s.Executable
	if exe == "" {
		if e, err := os.Executable(); err == nil {
			if r, err := filepath.EvalSymlinks(e); err == nil {
				e = r
			}
			exe = e
		}
	}
	if exe != "" {
		out = append(out, folder{filepath.Join(filepath.Dir(exe), "plugins"), SourceBeside})
	}
	return out
}

// Discover lists every plugin of kind k, in search order: the folders of
// RUNNEL_PLUGIN_PATH, the plugins folder beside the binary, then the
// built-ins. Folders that do not exist are skipped; files that are not
// executable are ignored.
func Discover(k Kind, s Search) []Found {
	prefix := "runnel-" + string(k) + "-"
	seen := map[string]bool{}
	var out []Found
	add := func(f Found) {
		f.Shadowed = seen[f.Name]
		seen[f.Name] = true
		out = append(out, f)
	}
	for _, f := range s.folders() {
		entries, err := os.ReadDir(f.dir)
		if err != nil {
			continue
		}
		var names []string
		for _, e := range entries {
			name, ok := strings.CutPrefix(e.Name(), prefix)
			if !ok || CheckName(name) != nil || !executable(filepath.Join(f.dir, e.Name())) {
				continue
			}
			names = append(names, name)
		}
		sort.Strings(names)
		for _, n := range names {
			add(Found{Kind: k, Name: n, Path: filepath.Join(f.dir, prefix+n), Source: f.src})
		}
	}
	b := append([]string(nil), s.Builtins...)
	sort.Strings(b)
	for _, n := range b {
		add(Found{Kind: k, Name: n, Source: SourceBuiltin})
	}
	return out
}

// Find returns the plugin of kind k called name that the search order
// picks, or an error matching ErrNotFound that lists where it looked.
func Find(k Kind, name string, s Search) (Found, error) {
	if err := CheckName(name); err != nil {
		return Found{}, err
	}
	for _, f := range Discover(k, s) {
		if f.Name == name && !f.Shadowed {
			return f, nil
		}
	}
	var where []string
	for _, f := range s.folders() {
		where = append(where, f.dir)
	}
	return Found{}, fmt.Errorf("%w: no %s plugin %q (looked for %s in %s and among the built-ins %v; set %s to add folders)",
		ErrNotFound, k, name, BinaryName(k, name), strings.Join(where, ", "), s.Builtins, PathEnv)
}

// executable reports whether path is a regular file someone may execute.
func executable(path string) bool {
	st, err := os.Stat(path)
	if err != nil {
		return false
	}
	return st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}
