package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// handParsed matches reading a setting by hand: the process environment,
// or indexing the map func-go hands to Start.
var handParsed = regexp.MustCompile(`\bos\.(Getenv|LookupEnv|Environ)\(|\b(cfg|env)\[`)

// No function and no core package reads a setting by hand: settings go
// through a Config struct and Parse. core/testenv (which finds the test
// services) and this helper are the exceptions.
func TestNoHandParsedSettings(t *testing.T) {
	var checked int
	for _, root := range []string{"..", filepath.Join("..", "..", "functions")} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (path == filepath.Join("..", "config") || d.Name() == "testenv" || d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			checked++
			for i, line := range strings.Split(string(raw), "\n") {
				if code, _, _ := strings.Cut(line, "//"); handParsed.MatchString(code) {
					t.Errorf("%s:%d reads a setting by hand (declare it in the Config struct): %s", path, i+1, strings.TrimSpace(line))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 50 {
		t.Fatalf("checked only %d files: wrong working directory?", checked)
	}
}
