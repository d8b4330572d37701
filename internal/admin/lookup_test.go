package admin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/supportgate/supportgate/config"
)

// TestFindConfigOrder: -config, else ./supportgate.toml, else the system
// file, else the demo (DESIGN.md §11). Not parallel: it changes the
// working directory and SystemConfig.
func TestFindConfigOrder(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	system := filepath.Join(dir, "etc", "supportgate.toml")
	old := SystemConfig
	SystemConfig = system
	t.Cleanup(func() { SystemConfig = old })

	if p, err := FindConfig(""); p != "" || err != nil {
		t.Fatalf("with no file: %q, %v; want the demo", p, err)
	}
	cfg, err := LoadConfig("")
	if err != nil || !cfg.Demo {
		t.Fatalf("LoadConfig with no file: %v, demo %v", err, cfg != nil && cfg.Demo)
	}
	if n := DemoNotice(cfg); !strings.Contains(n, "embedded demo") || !strings.Contains(n, system) {
		t.Errorf("DemoNotice: %q", n)
	}
	if err := RequireStore(cfg); err == nil || !strings.Contains(err.Error(), "no store in ./supportgate-data") {
		t.Errorf("RequireStore of the demo in an empty directory: %v", err)
	}
	if _, err := os.Stat("supportgate-data"); err == nil {
		t.Error("the lookup created ./supportgate-data")
	}

	os.MkdirAll(filepath.Dir(system), 0o755)
	os.WriteFile(system, config.ExampleTOML(), 0o600)
	if p, _ := FindConfig(""); p != system {
		t.Errorf("with the system file: %q; want %q", p, system)
	}
	os.WriteFile(LocalConfig, config.ExampleTOML(), 0o600)
	if p, _ := FindConfig(""); p != LocalConfig {
		t.Errorf("with ./supportgate.toml too: %q; want it", p)
	}
	if p, _ := FindConfig("other.toml"); p != "other.toml" {
		t.Errorf("with -config: %q", p)
	}
	cfg, err = LoadConfig("")
	if err != nil || cfg.Demo || cfg.Source != LocalConfig {
		t.Errorf("LoadConfig: %v, %+v", err, cfg)
	}
	if _, err := LoadConfig("missing.toml"); err == nil || !strings.Contains(err.Error(), "missing.toml: the configuration file does not exist") {
		t.Errorf("LoadConfig of a missing -config: %v; it must not fall back", err)
	}
}

func TestReadPasswordFromPipe(t *testing.T) {
	var prompt strings.Builder
	pw, err := ReadPassword(strings.NewReader("s3cret words\r\nignored\n"), &prompt)
	if err != nil || pw != "s3cret words" || prompt.Len() != 0 {
		t.Errorf("ReadPassword from a pipe: %q, %v, prompt %q", pw, err, prompt.String())
	}
	if _, err := ReadPassword(strings.NewReader("\n"), &prompt); err == nil {
		t.Error("an empty password was accepted")
	}
	if pw, err := ReadPassword(strings.NewReader("no newline"), &prompt); err != nil || pw != "no newline" {
		t.Errorf("a last line without newline: %q, %v", pw, err)
	}
}

func TestVersionWithoutVCS(t *testing.T) {
	// A test binary carries no VCS information.
	if v := Version("1.2.3", ""); !strings.HasPrefix(v, "1.2.3 (revision unknown, go1.") {
		t.Errorf("Version: %q", v)
	}
	if v := Version("1.2.3", "abc123+modified"); !strings.HasPrefix(v, "1.2.3 (revision abc123+modified, go1.") {
		t.Errorf("Version with -X revision: %q", v)
	}
	if v := Version("", ""); !strings.HasPrefix(v, "dev (") {
		t.Errorf("Version without a release: %q", v)
	}
}
