// Package admin is what the command line does for an administrator beside
// the daemon (DESIGN.md §11): finding the configuration file, checking
// what it names, reading a password, the version, the DNS records to
// publish, DKIM keys and backups. internal/cli parses the commands and
// calls it.
//
// Imports: config, gateway (the token key's file), internal/dkimsign, and
// the engines for what is engine-specific (store/sqlite's files for
// backup; store/postgres to check a DSN); nothing imports it but
// internal/cli and cmd/supportgate.
package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/supportgate/supportgate/config"
	"github.com/supportgate/supportgate/store/sqlite"
)

// The configuration files looked for when a command is given no -config,
// in this order (DESIGN.md §11). SystemConfig is a variable for tests.
const LocalConfig = "supportgate.toml"

// SystemConfig is where the Debian package installs the configuration.
var SystemConfig = "/etc/supportgate/supportgate.toml"

// FindConfig returns the configuration file a command uses: path when it
// is set, else ./supportgate.toml, else SystemConfig, else "" for the
// embedded demo. A file that exists but cannot be examined is an error,
// not a reason to fall back to the demo.
func FindConfig(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	for _, p := range []string{LocalConfig, SystemConfig} {
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s: %w", p, err)
		}
	}
	return "", nil
}

// LoadConfig loads the configuration FindConfig picks, or the embedded demo.
func LoadConfig(path string) (*config.Config, error) {
	p, err := FindConfig(path)
	if err != nil {
		return nil, err
	}
	if p == "" {
		return config.Demo()
	}
	return config.Load(p)
}

// DemoNotice is what a command other than serve says on standard error
// when it falls back to the embedded demo (DESIGN.md §11).
func DemoNotice(cfg *config.Config) string {
	return fmt.Sprintf("supportgate: no -config, no ./%s and no %s: using the embedded demo configuration (data in %s)",
		LocalConfig, SystemConfig, cfg.Server.DataDir)
}

// RequireStore returns an error unless cfg's data directory holds a
// database, so that a command beside the daemon never creates an empty
// store where the daemon does not look (a demo fallback, a wrong -config).
func RequireStore(cfg *config.Config) error {
	p := filepath.Join(cfg.Server.DataDir, sqlite.DatabaseFile)
	if _, err := os.Stat(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("there is no store in %s (server.data_dir of %s): the daemon has not run with this configuration; give its configuration with -config FILE",
				cfg.Server.DataDir, cfg.Source)
		}
		return err
	}
	return nil
}
