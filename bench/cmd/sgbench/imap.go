package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// imapConn is a minimal IMAP client: it sends a command and reads to its
// tagged answer, literals included, without parsing more than it must, so
// that what is timed is the server.
type imapConn struct {
	c   net.Conn
	r   *bufio.Reader
	seq int
}

func dialIMAP(addr, user, pass string) (*imapConn, error) {
	c, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return nil, err
	}
	m := &imapConn{c: c, r: bufio.NewReaderSize(c, 64<<10)}
	if _, err := m.r.ReadString('\n'); err != nil { // greeting
		c.Close()
		return nil, err
	}
	if _, err := m.cmd(fmt.Sprintf("LOGIN %q %q", user, pass)); err != nil {
		c.Close()
		return nil, err
	}
	return m, nil
}

var literal = regexp.MustCompile(`\{(\d+)\}\r\n$`)

// cmd runs one command and returns its untagged lines (literals skipped and
// counted in bytes, not kept).
func (m *imapConn) cmd(line string) ([]string, error) {
	m.seq++
	tag := "t" + strconv.Itoa(m.seq)
	if _, err := io.WriteString(m.c, tag+" "+line+"\r\n"); err != nil {
		return nil, err
	}
	var untagged []string
	for {
		l, err := m.r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		for {
			sm := literal.FindStringSubmatch(l)
			if sm == nil {
				break
			}
			n, _ := strconv.Atoi(sm[1])
			if _, err := m.r.Discard(n); err != nil {
				return nil, err
			}
			rest, err := m.r.ReadString('\n')
			if err != nil {
				return nil, err
			}
			l = rest
		}
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				return untagged, fmt.Errorf("%s: %s", line, strings.TrimSpace(l))
			}
			return untagged, nil
		}
		if len(untagged) < 100_000 {
			untagged = append(untagged, l)
		}
	}
}

func timed(f func() error) (float64, error) {
	start := time.Now()
	err := f()
	return time.Since(start).Seconds(), err
}

// imapTimings prints the seconds for SELECT INBOX and the two FETCHes of
// every message, each the median of 3 in one session.
func imapTimings(addr, user, pass string) error {
	m, err := dialIMAP(addr, user, pass)
	if err != nil {
		return err
	}
	defer m.c.Close()
	var fetched int
	for _, step := range []struct{ key, cmd string }{
		{"select", "SELECT INBOX"},
		{"fetch_meta", "UID FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE)"},
		{"fetch_body", "UID FETCH 1:* BODY.PEEK[]"},
	} {
		var runs []float64
		for range 3 {
			var lines []string
			s, err := timed(func() (err error) { lines, err = m.cmd(step.cmd); return err })
			if err != nil {
				return err
			}
			runs = append(runs, s)
			if step.key == "fetch_meta" {
				fetched = 0
				for _, l := range lines {
					if strings.Contains(l, " FETCH ") {
						fetched++
					}
				}
			}
		}
		if step.key == "select" {
			// The first SELECT of the session, before any cache of
			// this session is warm (other sessions' may be).
			fmt.Printf("select_first=%.4f\n", runs[0])
		}
		slices.Sort(runs)
		fmt.Printf("%s=%.4f\n", step.key, runs[1])
	}
	fmt.Printf("fetched=%d\n", fetched)
	return nil
}

var uidNext = regexp.MustCompile(`UIDNEXT (\d+)`)

// newMail measures, 20 times, the seconds from the start of an SMTP
// transaction at the MX to the moment the new message is returned by UID
// FETCH (FLAGS ENVELOPE) in an open session: what an agent waits to see a
// new mail. It prints the median.
func newMail(addr, mx, rcpt, user, pass string) error {
	m, err := dialIMAP(addr, user, pass)
	if err != nil {
		return err
	}
	defer m.c.Close()
	lines, err := m.cmd("SELECT INBOX")
	if err != nil {
		return err
	}
	next := 0
	for _, l := range lines {
		if sm := uidNext.FindStringSubmatch(l); sm != nil {
			next, _ = strconv.Atoi(sm[1])
		}
	}
	var runs []float64
	for i := range 20 {
		id := fmt.Sprintf("new%d.%d@customer.example", time.Now().UnixNano(), i)
		msg := fmt.Sprintf("From: <new@customer.example>\r\nTo: <%s>\r\nSubject: new mail %d\r\nMessage-ID: <%s>\r\n\r\nhello\r\n", rcpt, i, id)
		start := time.Now()
		if err := smtp.SendMail(mx, nil, "new@customer.example", []string{rcpt}, []byte(msg)); err != nil {
			return err
		}
		for {
			lines, err := m.cmd(fmt.Sprintf("UID FETCH %d:* (FLAGS ENVELOPE)", next))
			if err != nil {
				return err
			}
			if slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, id) }) {
				break
			}
			if time.Since(start) > 30*time.Second {
				return fmt.Errorf("message %s not visible after 30s", id)
			}
		}
		runs = append(runs, time.Since(start).Seconds())
		next++
	}
	slices.Sort(runs)
	fmt.Printf("newmail=%.4f\n", runs[len(runs)/2])
	return nil
}

// idle opens n sessions in IDLE and prints the resident memory of pid.
func idle(addr, user, pass string, n, pid int) error {
	before, err := rss(pid)
	if err != nil {
		return err
	}
	conns := make([]*imapConn, n)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 50)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			m, err := dialIMAP(addr, user, pass)
			if err != nil {
				errs <- err
				return
			}
			// A server that stops answering fails the step instead of
			// hanging the whole bench.
			m.c.SetDeadline(time.Now().Add(5 * time.Minute))
			defer m.c.SetDeadline(time.Time{})
			if _, err := m.cmd("SELECT INBOX"); err != nil {
				errs <- err
				return
			}
			m.seq++
			if _, err := fmt.Fprintf(m.c, "t%d IDLE\r\n", m.seq); err != nil {
				errs <- err
				return
			}
			if l, err := m.r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+") {
				errs <- fmt.Errorf("IDLE: %q %v", l, err)
				return
			}
			conns[i] = m
		})
	}
	wg.Wait()
	opened := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("%d of %d sessions failed, the first: %w", len(errs)+1, n, err)
	}
	time.Sleep(3 * time.Second) // let the server settle
	after, err := rss(pid)
	if err != nil {
		return err
	}
	fmt.Printf("idle_conns=%d\nidle_open_seconds=%.1f\nrss_before_mib=%.1f\nrss_idle_mib=%.1f\n", n, opened.Seconds(), before, after)
	for _, m := range conns {
		m.c.Close()
	}
	return nil
}

// rss is the resident memory of pid and its children (Dovecot runs a
// process per session), in MiB.
func rss(pid int) (float64, error) {
	pids := []int{pid}
	if kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		for _, f := range strings.Fields(string(kids)) {
			if k, err := strconv.Atoi(f); err == nil {
				pids = append(pids, k)
			}
		}
	}
	var kib float64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				f, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				kib += f
			}
		}
	}
	if kib == 0 {
		return 0, fmt.Errorf("no memory figure for process %d", pid)
	}
	return kib / 1024, nil
}
