// Package pgtest runs a real PostgreSQL for tests (issue 16: CI starts
// PostgreSQL from Debian's packages): its own cluster in a temporary
// directory, listening on a port of its own and on a unix socket in that
// directory, one server per test binary and a fresh database per test.
//
// A test package declares one Server and runs its tests through it:
//
//	var pg = pgtest.New()
//
//	func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }
//
//	func TestX(t *testing.T) { dsn := pg.DSN(t); ... }
//
// The server starts at the first DSN call, so a binary whose tests are all
// filtered out starts none. Without PostgreSQL installed a test is skipped,
// unless CI=true: then it fails, so that CI never passes by skipping.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrMissing is returned (wrapped) when no PostgreSQL is installed.
var ErrMissing = errors.New("pgtest: no PostgreSQL server binaries found (install postgresql, or set PGTEST_BINDIR)")

// Server is one PostgreSQL cluster for a test binary.
type Server struct {
	once    sync.Once
	err     error
	dir     string
	port    int
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the server process ended
	logFile string
	dbs     atomic.Int64
}

// New returns a server that starts at its first use.
func New() *Server { return &Server{} }

// Main runs the tests and stops the server; its result is the exit code.
func (s *Server) Main(m *testing.M) int {
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// DSN creates a fresh database for t and returns its connection string;
// the database is dropped when t ends.
func (s *Server) DSN(t testing.TB) string {
	t.Helper()
	if err := s.Start(); err != nil {
		if errors.Is(err, ErrMissing) && os.Getenv("CI") != "true" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	name := fmt.Sprintf("t_%d", s.dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.admin(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: creating database %s: %v (server log: %s)", name, err, s.logFile)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.admin(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: dropping database %s: %v", name, err)
		}
	})
	return s.dsn(name)
}

func (s *Server) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// admin runs one statement on the maintenance database.
func (s *Server) admin(ctx context.Context, stmt string) error {
	conn, err := pgx.Connect(ctx, s.dsn("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, stmt)
	return err
}

// Start starts the server once; later calls return the first outcome.
func (s *Server) Start() error {
	s.once.Do(func() { s.err = s.start() })
	return s.err
}

// Stop stops a started server (a fast shutdown) and removes its directory.
func (s *Server) Stop() error {
	if s.cmd == nil {
		return nil
	}
	var err error
	if perr := s.cmd.Process.Signal(syscall.SIGINT); perr == nil {
		select {
		case <-s.exited:
		case <-time.After(time.Minute):
			err = errors.New("pgtest: the server did not stop within a minute; killed")
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	s.cmd = nil
	return errors.Join(err, os.RemoveAll(s.dir))
}

// binDir finds the newest installed PostgreSQL's binaries.
func binDir() (string, error) {
	if d := os.Getenv("PGTEST_BINDIR"); d != "" {
		return d, nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(found) == 0 {
		if p, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p), nil
		}
		return "", ErrMissing
	}
	version := func(p string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return n
	}
	slices.SortFunc(found, func(a, b string) int { return version(b) - version(a) })
	return filepath.Dir(found[0]), nil
}

// freePort reserves a port the kernel says is free.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start() (err error) {
	bin, err := binDir()
	if err != nil {
		return err
	}
	if s.dir, err = os.MkdirTemp("", "pgtest-"); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(s.dir)
		}
	}()
	// PostgreSQL refuses to run as root: then it runs as the unprivileged
	// user the Debian package made, which must own the directory.
	cred, err := unprivileged(s.dir)
	if err != nil {
		return err
	}
	data := filepath.Join(s.dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Dir = s.dir
	setCredential(initdb, cred)
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	s.logFile = filepath.Join(s.dir, "server.log")
	// A port found free may be taken before the server binds it (by
	// another listener, or a client socket given it by the kernel): then
	// the server exits at once, and another port is tried.
	for attempt := 1; ; attempt++ {
		if err = s.run(bin, data, cred); err == nil || attempt == 3 {
			return err
		}
	}
}

// run starts the server on a free port and waits until it accepts
// connections.
func (s *Server) run(bin, data string, cred *syscall.Credential) error {
	var err error
	if s.port, err = freePort(); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	logf, err := os.OpenFile(s.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close()
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(s.port),
		"-k", s.dir, "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300")
	s.cmd.Dir = s.dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	setCredential(s.cmd, cred)
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return fmt.Errorf("pgtest: starting postgres: %w", err)
	}
	s.exited = make(chan struct{})
	go func() {
		s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.ready(); err != nil {
		s.cmd.Process.Kill()
		<-s.exited
		s.cmd = nil
		log, _ := os.ReadFile(s.logFile)
		return fmt.Errorf("pgtest: %w\n%s", err, log)
	}
	return nil
}

// ready polls a connection until the server accepts one, it exits, or a
// minute passes.
func (s *Server) ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgx.Connect(attempt, s.dsn("postgres"))
		cancelAttempt()
		if err == nil {
			return conn.Close(context.Background())
		}
		select {
		case <-s.exited:
			return errors.New("the server exited at startup")
		case <-ctx.Done():
			return fmt.Errorf("the server did not accept connections within a minute: %v", err)
		case <-tick.C:
		}
	}
}

// unprivileged returns the credential to run PostgreSQL with when this
// process is root (nil otherwise), and gives it dir.
func unprivileged(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root and no postgres user to run PostgreSQL as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: user postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: user postgres: %w", err)
	}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// setCredential runs cmd as cred (when set) and, where the system allows,
// has it killed when this process dies (procattr_*.go).
func setCredential(cmd *exec.Cmd, cred *syscall.Credential) {
	cmd.SysProcAttr = sysProcAttr()
	cmd.SysProcAttr.Credential = cred
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if cred != nil {
		cmd.Env = slices.DeleteFunc(cmd.Env, func(e string) bool { return strings.HasPrefix(e, "HOME=") })
		cmd.Env = append(cmd.Env, "HOME="+cmd.Dir)
	}
}
