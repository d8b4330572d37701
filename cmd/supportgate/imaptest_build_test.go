package main

// Dovecot's imaptest (an IMAP compliance and stress tester we did not
// write), built from the source the project keeps beside the repository
// (../shared/peers/imaptest: its build.sh and the pinned source tarball).

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var imaptestBuild struct {
	once sync.Once
	path string
	err  error
	skip string // why it cannot be built here, outside CI
}

// imaptestDir is the folder of imaptest's build.sh and source tarball.
// $SUPPORTGATE_PEERS/imaptest when that is set.
func imaptestDir(t *testing.T) string {
	t.Helper()
	peers := filepath.Join("..", "..", "..", "shared", "peers")
	if p := os.Getenv("SUPPORTGATE_PEERS"); p != "" {
		peers = p
	}
	dir, err := filepath.Abs(filepath.Join(peers, "imaptest"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// imaptestBinary returns the path of an imaptest binary, built once per
// machine into the user's cache directory (keyed by the build script and
// the source tarball, so a new pinned version builds anew) and once per
// test process checked. Run it with imaptestEnv. Outside CI the test is
// skipped when imaptest cannot be built here (no source, no Dovecot
// library); under CI=true that is a failure (.ci/run installs what it needs).
func imaptestBinary(t *testing.T) string {
	t.Helper()
	dir := imaptestDir(t)
	imaptestBuild.once.Do(func() {
		imaptestBuild.path, imaptestBuild.skip, imaptestBuild.err = buildImaptest(dir)
	})
	if imaptestBuild.skip != "" || imaptestBuild.err != nil {
		why := imaptestBuild.skip
		if imaptestBuild.err != nil {
			why = imaptestBuild.err.Error()
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("imaptest is required under CI (.ci/run installs dovecot-core and dovecot-dev): %s", why)
		}
		if imaptestBuild.err != nil {
			t.Fatalf("building imaptest: %s", why)
		}
		t.Skipf("imaptest cannot be built here: %s", why)
	}
	return imaptestBuild.path
}

// imaptestEnv is the environment imaptest runs in: it links Dovecot's
// private libraries.
func imaptestEnv() []string {
	return append(os.Environ(), "LD_LIBRARY_PATH=/usr/lib/dovecot")
}

func buildImaptest(dir string) (path, skip string, err error) {
	script := filepath.Join(dir, "build.sh")
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Sprintf("no build script: %v", err), nil
	}
	if _, err := os.Stat("/usr/lib/dovecot/libdovecot.so"); err != nil && os.Getuid() != 0 {
		// build.sh installs Debian's dovecot-dev only as root.
		return "", "Dovecot's library is not installed (Debian: dovecot-core, dovecot-dev)", nil
	}
	h := sha256.New()
	matches, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, f := range matches {
		fh, err := os.Open(f)
		if err != nil {
			return "", "", err
		}
		fmt.Fprintf(h, "%s\n", filepath.Base(f))
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return "", "", err
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	out := filepath.Join(cache, "supportgate-test", "imaptest-"+hex.EncodeToString(h.Sum(nil))[:16])
	bin := filepath.Join(out, "imaptest", "src", "imaptest")
	if _, err := os.Stat(bin); err == nil {
		return bin, "", nil
	}
	// Built beside, then renamed: a build cut short is never taken for one.
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), "build-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(tmp)
	if b, err := exec.Command("bash", script, tmp).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("%s: %v\n%s", script, err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		if _, serr := os.Stat(bin); serr == nil { // another process built it meanwhile
			return bin, "", nil
		}
		return "", "", err
	}
	return bin, "", nil
}
