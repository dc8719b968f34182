package app_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// layers ranks permsync's packages (docs/ARCHITECTURE.md): a package may
// import only packages of a higher rank, so arrows point down and there is
// no cycle. A new package goes into this table.
var layers = map[string]float64{
	"cmd/permsync": 0,
	"app":          1,
	"handlers":     2,
	"auth":         3,
	"admin":        3,
	"kindesync":    4,
	"directory":    5,
	"fanout":       5.5,
	"kinde":        6,
	"events":       6,
	"store":        6,
	"apperr":       7,
	"htmx":         7,
	"logctx":       7,
}

// Packages outside the ranking: what each may import of ours.
var (
	// views get typed props and import nothing of ours but views.
	viewsPkgs = []string{"views", "views/components", "views/layouts", "views/pages"}
	// leaves import nothing of ours.
	leafPkgs = []string{"devkinde", "static", "e2e"}
	// test support may import anything; only tests may import it.
	testSupportPkgs = []string{"app/apptest", "internal/testsupport"}
	// benchmark programs and their fixtures (make bench-http, make
	// bench-sse) may import anything, like test support; nothing but
	// other benchmark packages may import them.
	benchPkgs = []string{"cmd/bench-http", "cmd/bench-sse", "internal/bench/baseline", "internal/bench/benchkit"}
)

// importOnlyIn names third-party import prefixes and the only packages whose
// non-test files may import them.
var importOnlyIn = map[string][]string{
	"github.com/riverqueue/":   {"fanout", "store"},
	"github.com/labstack/echo": {"handlers", "auth", "internal/bench/baseline"}, // baseline: bare Echo, for comparison
}

const module = "permsync"

func TestPackageLayers(t *testing.T) {
	t.Parallel()
	imports := moduleImports(t)
	if len(imports) < 10 {
		t.Fatalf("found only %d packages; is the module root right?", len(imports))
	}
	for pkg, deps := range imports {
		for _, dep := range deps {
			for prefix, allowed := range importOnlyIn {
				if strings.HasPrefix(dep, prefix) && !slices.Contains(allowed, pkg) {
					t.Errorf("%s imports %s; only %v may", pkg, dep, allowed)
				}
			}
			own, ok := strings.CutPrefix(dep, module+"/")
			if !ok {
				continue
			}
			if err := checkArrow(pkg, own); err != "" {
				t.Error(err)
			}
		}
	}
}

// checkArrow returns why pkg may not import dep, or "".
func checkArrow(pkg, dep string) string {
	switch {
	case slices.Contains(testSupportPkgs, pkg):
		return ""
	case slices.Contains(benchPkgs, dep):
		if !slices.Contains(benchPkgs, pkg) {
			return pkg + " imports benchmark code " + dep + "; only benchmark programs may"
		}
		return ""
	case slices.Contains(benchPkgs, pkg):
		return ""
	case slices.Contains(testSupportPkgs, dep):
		return pkg + " imports test support " + dep + "; only tests may"
	case slices.Contains(viewsPkgs, pkg):
		if !slices.Contains(viewsPkgs, dep) {
			return pkg + " imports " + dep + "; views import only views"
		}
		return ""
	case slices.Contains(leafPkgs, pkg):
		return pkg + " imports " + dep + "; it must import nothing of ours"
	case slices.Contains(viewsPkgs, dep) || dep == "static":
		if pkg != "handlers" {
			return pkg + " imports " + dep + "; only handlers render views and serve static files"
		}
		return ""
	case dep == "devkinde":
		if pkg != "cmd/permsync" {
			return pkg + " imports devkinde; only cmd/permsync (and tests) may"
		}
		return ""
	}
	from, ok1 := layers[pkg]
	to, ok2 := layers[dep]
	switch {
	case !ok1:
		return "package " + pkg + " is not in the layer table of app/layers_test.go: add it"
	case !ok2:
		return "package " + dep + " is not in the layer table of app/layers_test.go: add it"
	case to <= from:
		return pkg + " imports " + dep + ": arrows must point down (see docs/ARCHITECTURE.md)"
	}
	return ""
}

// moduleImports parses every non-test Go file of the module and returns each
// package's imports.
func moduleImports(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	out := map[string][]string{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(rel)
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			if !slices.Contains(out[pkg], p) {
				out[pkg] = append(out[pkg], p)
			}
		}
		if _, ok := out[pkg]; !ok {
			out[pkg] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
