// Package knative runs Dronetrack's functions the way Knative runs them, on
// one machine: each function built by the scaffolding of knative func's host
// builder (`func build --builder=host`) around knative.dev/func-go's HTTP
// runtime, started as its own process, 1..N replicas of it behind a Service
// stand-in (a reverse proxy that also starts a replica on demand, as
// Knative's activator does for a Service scaled to zero), the broker
// delivering over HTTP to those Services by the Triggers in infra/base, and
// Redis and the Firestore emulator as the only shared state.
//
// What it cannot show (the queue-proxy's concurrency limits, the
// autoscaler's decisions, image pull and pod scheduling time, the Broker
// implementation of the cluster) is listed in docs/deploy.md.
package knative

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// The go/instanced-http scaffolding of knative func v0.50.1
// (templates/go/scaffolding/instanced-http at tag v0.50.1, the first release
// pinning func-go v0.22.0), byte for byte. Every Dronetrack function has
// `invoke: http` and a package-level New, which selects this scaffolding.
var (
	//go:embed scaffolding/instanced-http/main.go.tmpl
	scaffoldMain []byte
	//go:embed scaffolding/instanced-http/go.mod.tmpl
	scaffoldGoMod []byte
	//go:embed scaffolding/instanced-http/go.sum.tmpl
	scaffoldGoSum []byte
)

// FuncVersion is the knative func release whose scaffolding Scaffold writes;
// FuncGoVersion is the func-go version that scaffolding pins.
const (
	FuncVersion   = "v0.50.1"
	FuncGoVersion = "v0.22.0"
)

// BuildDir is where the host builder writes the scaffolding, relative to the
// function's root (knative func: fn.RunDataDir + "/" + fn.BuildDir).
const BuildDir = ".func/build"

// WorkFile is the workspace file, in each function's root, that the host
// builder's `go build` must be given as GOWORK: the scaffolding's go.mod is
// the main module, so the function's own replace directives (core and
// events => ../../core, ../../events) are ignored and those modules, which
// are not published, must come from a workspace.
const WorkFile = "hostbuild.work"

// ScaffoldMain returns the main.go the host builder generates for the
// function module modulePath (knative func's patchMain: every "function" in
// the template becomes the module path).
func ScaffoldMain(modulePath string) []byte {
	return bytes.ReplaceAll(scaffoldMain, []byte("function"), []byte(modulePath))
}

// Scaffold writes into out what knative func's scaffolding.Write writes for
// a Go function at src with invoke http: the signature check, main.go,
// go.mod and go.sum patched for the function's module, and the link f to
// the function's source. It leaves out the CA certificates the builder also
// copies (they go into the image, not into the build).
func Scaffold(out, src string) error {
	static, instanced, err := detectSignature(src)
	if err != nil {
		return err
	}
	switch {
	case static && instanced:
		return errors.New("function may not implement both the static and instanced method signatures simultaneously")
	case !static && !instanced:
		return errors.New("function does not implement any known method signatures or does not compile")
	case static:
		return errors.New("static signature: this harness writes only the instanced-http scaffolding")
	}
	_ = os.RemoveAll(out)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"main.go": scaffoldMain, "go.mod": scaffoldGoMod, "go.sum": scaffoldGoSum} {
		if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
			return err
		}
	}
	if err := patchScaffolding(src, out); err != nil {
		return fmt.Errorf("failed to patch scaffolding:%w", err)
	}
	rel, err := filepath.Rel(out, src)
	if err != nil {
		return err
	}
	link := filepath.Join(out, "f")
	_ = os.Remove(link)
	return os.Symlink(rel, link)
}

// detectSignature is knative func's goDetector: any .go file in the
// function's root (test files too) declaring a package-level New makes it
// instanced, a package-level Handle static.
func detectSignature(dir string) (static, instanced bool, err error) {
	files, err := os.ReadDir(dir)
	if err != nil {
		return false, false, err
	}
	for _, file := range files {
		if file.IsDir() || !strings.HasSuffix(file.Name(), ".go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, file.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			continue
		}
		for _, decl := range f.Decls {
			if fd, ok := decl.(*ast.FuncDecl); ok && fd.Recv == nil {
				instanced = instanced || fd.Name.Name == "New"
				static = static || fd.Name.Name == "Handle"
			}
		}
	}
	return static, instanced, nil
}

// patchScaffolding is knative func's patchScaffolding: the function's go
// directive when newer, replace and require of the function module, the
// function's other requirements merged in, its go.sum appended, main.go
// pointed at its module.
func patchScaffolding(src, out string) error {
	data, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		return fmt.Errorf("cannot read function go.mod: %w", err)
	}
	fnMod, err := modfile.Parse(filepath.Join(src, "go.mod"), data, nil)
	if err != nil || fnMod.Module == nil {
		return fmt.Errorf("cannot parse function go.mod: %v", err)
	}
	modulePath := fnMod.Module.Mod.Path
	path := filepath.Join(out, "go.mod")
	f, err := modfile.Parse(path, scaffoldGoMod, nil)
	if err != nil {
		return err
	}
	if fnMod.Go != nil && fnMod.Go.Version != "" {
		scaffoldV := "v0.0.0"
		if f.Go != nil {
			scaffoldV = "v" + f.Go.Version
		}
		if semver.Compare("v"+fnMod.Go.Version, scaffoldV) > 0 {
			if err := f.AddGoStmt(fnMod.Go.Version); err != nil {
				return err
			}
		}
	}
	if err := f.DropReplace("function", ""); err != nil {
		return err
	}
	if err := f.AddReplace(modulePath, "", "./f", ""); err != nil {
		return err
	}
	if err := f.DropRequire("function"); err != nil {
		return err
	}
	if err := f.AddRequire(modulePath, "v0.0.0-00010101000000-000000000000"); err != nil {
		return err
	}
	existing := map[string]bool{}
	for _, r := range f.Require {
		existing[r.Mod.Path] = true
	}
	for _, r := range fnMod.Require {
		if !existing[r.Mod.Path] {
			if err := f.AddRequire(r.Mod.Path, r.Mod.Version); err != nil {
				return err
			}
		}
	}
	formatted, err := f.Format()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, formatted, 0o644); err != nil {
		return err
	}
	if sum, err := os.ReadFile(filepath.Join(src, "go.sum")); err == nil {
		if err := os.WriteFile(filepath.Join(out, "go.sum"), append(append([]byte{}, scaffoldGoSum...), sum...), 0o644); err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.WriteFile(filepath.Join(out, "main.go"), ScaffoldMain(modulePath), 0o644)
}

// Build scaffolds the function at fnRoot into fnRoot/.func/build and
// compiles it as the host builder does (`go build -o result/f.OS.ARCH` in
// that directory, CGO_ENABLED=0, the caller's environment otherwise) with
// GOWORK set to the function's hostbuild.work. It returns the binary's path.
func Build(ctx context.Context, fnRoot string) (string, error) {
	fnRoot, err := filepath.Abs(fnRoot)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(fnRoot, BuildDir)
	if err := Scaffold(dir, fnRoot); err != nil {
		return "", fmt.Errorf("scaffold %s: %w", fnRoot, err)
	}
	bin := filepath.Join(dir, "result", "f."+runtime.GOOS+"."+runtime.GOARCH)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH,
		"GOWORK="+filepath.Join(fnRoot, WorkFile))
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %w\n%s", dir, err, out)
	}
	return bin, nil
}
