package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// BackupSQLite writes a consistent copy of the database in dataDir to the
// new file dest (mode 0600), beside a daemon that keeps writing: VACUUM
// INTO reads one snapshot of the database (WAL readers never block the
// writer), so the copy holds exactly the transactions committed when it
// started. The copy is checked (PRAGMA quick_check) and synced to disk.
// The database is never created or migrated here: a dataDir without one
// is an error.
func Backup(ctx context.Context, dataDir, dest string) error {
	src := filepath.Join(dataDir, DatabaseFile)
	if _, err := os.Stat(src); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store: there is no database %s: is server.data_dir the daemon's?", src)
		}
		return fmt.Errorf("store: %w", err)
	}
	// The copy is made into an empty file of ours, so that it is private
	// from its first byte; VACUUM INTO refuses a file that is not empty.
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("store: creating the backup: %w", err)
	}
	f.Close()
	ok := false
	defer func() {
		if !ok {
			os.Remove(dest)
		}
	}()
	v := url.Values{}
	v.Set("mode", "rw") // never create the database
	v.Set("_busy_timeout", "10000")
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: src}).EscapedPath()+"?"+v.Encode())
	if err != nil {
		return fmt.Errorf("store: opening %s: %w", src, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", dest); err != nil {
		return fmt.Errorf("store: copying %s to %s: %w", src, dest, err)
	}
	if err := quickCheck(ctx, dest); err != nil {
		return err
	}
	if err := syncFile(dest); err != nil {
		return fmt.Errorf("store: syncing the backup: %w", err)
	}
	ok = true
	return nil
}

// quickCheck opens the database file path read-only and runs PRAGMA
// quick_check.
func quickCheck(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro")
	if err != nil {
		return fmt.Errorf("store: opening the backup: %w", err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA quick_check")
	if err != nil {
		return fmt.Errorf("store: checking the backup: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var res string
		if err := rows.Scan(&res); err != nil {
			return fmt.Errorf("store: checking the backup: %w", err)
		}
		if res != "ok" && !uncheckableSearchIndex(res) {
			problems = append(problems, res)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: checking the backup: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("store: the backup %s fails its check: %s", path, strings.Join(problems, "; "))
	}
	return nil
}

// uncheckableSearchIndex reports whether a quick_check line only says that
// SQLite cannot validate the SEARCH index: the index is a contentless FTS4
// table (search.go), whose inverted index quick_check has no content to
// check against. It is derived from the messages, not what a backup keeps.
func uncheckableSearchIndex(line string) bool {
	return strings.HasPrefix(line, "unable to validate the inverted index for FTS4 table main.message_search")
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
