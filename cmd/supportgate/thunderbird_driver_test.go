package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The Thunderbird driver of TestThunderbird: Xvfb, the profile, and the
// keys xdotool types.

// traceLine returns the first line of Thunderbird's IMAP trace (MOZ_LOG)
// written since since, or of its output (where its SMTP client logs), that
// contains s; "" when there is none yet.
func (tb *thunderbird) traceLine(since time.Time, s string) string {
	if b, err := os.ReadFile(tb.profile + ".log"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, s) {
				return l
			}
		}
	}
	return tb.mozLogLine(since, func(l string) bool { return strings.Contains(l, s) })
}

// mozLogLine returns the first line of Thunderbird's IMAP trace (MOZ_LOG)
// written since since for which match holds; "" when there is none yet.
func (tb *thunderbird) mozLogLine(since time.Time, match func(line string) bool) string {
	// Lines start with "2026-12-07 11:32:12.026582 UTC".
	from := since.UTC().Format("2006-01-02 15:04:05.000000")
	logs, _ := filepath.Glob(tb.profile + ".moz.log*")
	for _, f := range logs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l >= from && match(l) {
				return l
			}
		}
	}
	return ""
}

// thunderbirdKit is the peer kit beside the repository: ../shared/peers/thunderbird.
func thunderbirdKit(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	kit := filepath.Join(root, "..", "shared", "peers", "thunderbird")
	for _, f := range []string{"tb_start.sh", "prefs.js.template"} {
		if _, err := os.Stat(filepath.Join(kit, f)); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("the Thunderbird peer kit is required under CI: %v", err)
			}
			t.Skipf("no Thunderbird peer kit: %v", err)
		}
	}
	return kit
}

// startXvfb starts an X server on a display number it picks itself
// (-displayfd: Xvfb writes the number once it accepts connections).
func startXvfb(t *testing.T) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1600x1000x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logBuf := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logBuf, logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case n := <-line:
		if _, err := strconv.Atoi(n); err != nil {
			t.Fatalf("Xvfb did not report its display (%q):\n%s", n, logBuf.String())
		}
		if _, err := os.Stat("/tmp/.X11-unix/X" + n); err != nil {
			t.Fatalf("Xvfb reports display :%s but has no socket: %v", n, err)
		}
		return ":" + n
	case <-time.After(60 * time.Second):
		t.Fatalf("Xvfb reported no display within 60s:\n%s", logBuf.String())
	}
	return ""
}

// thunderbird is one running Thunderbird, for one agent, on one display.
type thunderbird struct {
	display, profile, pass string
	pid, pgid              int
	main                   string // the main window's X id
	artifacts              string // where screenshots go, made on the first failure
	outputShown            bool   // its output is in the log already
}

// startThunderbird runs the kit's tb_start.sh (from a copy whose profile
// template has tbExtraPrefs) and waits until the offline INBOX holds n
// messages and the main window shows it.
func startThunderbird(t *testing.T, display, kit, dir string, p ports, user, pass, name string, n int) *thunderbird {
	t.Helper()
	own := filepath.Join(dir, "tb-kit")
	if err := os.MkdirAll(own, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tb_start.sh", "prefs.js.template"} {
		b, err := os.ReadFile(filepath.Join(kit, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "prefs.js.template" {
			b = append(b, tbExtraPrefs...)
		}
		if err := os.WriteFile(filepath.Join(own, f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	home := filepath.Join(dir, "tb-home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	tb := &thunderbird{display: display, profile: filepath.Join(dir, "tb", user), pass: pass}
	cmd := exec.Command("bash", filepath.Join(own, "tb_start.sh"), tb.profile, user, pass, name, itoa(p.IMAP), itoa(p.Submission), itoa(n))
	cmd.Env = append(os.Environ(), "DISPLAY="+display, "HOME="+home)
	// Thunderbird stays in the script's process group: the cleanup ends
	// the group, so nothing it started outlives the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tb.pgid = cmd.Process.Pid
	t.Cleanup(tb.stop)
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			tb.onFailure(t, time.Time{})
			t.Fatalf("tb_start.sh: %v\n%s%s", err, stdout.String(), stderr.String())
		}
	case <-time.After(4 * time.Minute):
		cmd.Process.Kill()
		tb.onFailure(t, time.Time{})
		t.Fatal("tb_start.sh did not finish within 4 minutes")
	}
	lines := strings.Fields(stdout.String())
	if len(lines) == 0 {
		t.Fatalf("tb_start.sh printed no pid:\n%s", stderr.String())
	}
	pid, err := strconv.Atoi(lines[len(lines)-1])
	if err != nil {
		t.Fatalf("tb_start.sh printed %q, not a pid", stdout.String())
	}
	tb.pid = pid
	waitFor(t, 60*time.Second, "Thunderbird's main window to show INBOX", func() bool {
		out, err := tb.xdo("search", "--name", " - Mozilla Thunderbird$")
		if err != nil {
			return false
		}
		for _, w := range strings.Fields(out) {
			if name, _ := tb.xdo("getwindowname", w); strings.TrimSpace(name) == tbFolderTitle {
				tb.main = w
				return true
			}
		}
		return false
	})
	return tb
}

func (tb *thunderbird) stop() {
	alive := func() bool {
		return syscall.Kill(-tb.pgid, 0) == nil || (tb.pid > 0 && syscall.Kill(tb.pid, 0) == nil)
	}
	syscall.Kill(-tb.pgid, syscall.SIGTERM)
	if tb.pid > 0 {
		syscall.Kill(tb.pid, syscall.SIGTERM)
	}
	for deadline := time.Now().Add(15 * time.Second); alive() && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if alive() {
		syscall.Kill(-tb.pgid, syscall.SIGKILL)
		if tb.pid > 0 {
			syscall.Kill(tb.pid, syscall.SIGKILL)
		}
		for deadline := time.Now().Add(10 * time.Second); alive() && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// xdo runs xdotool on the display.
func (tb *thunderbird) xdo(args ...string) (string, error) {
	cmd := exec.Command("xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+tb.display)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("xdotool %s: %v: %s", strings.Join(args, " "), err, ee.Stderr)
		}
	}
	return string(out), err
}

func (tb *thunderbird) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := tb.xdo(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// title is the main window's title: the folder's, or the open message tab's
// subject.
func (tb *thunderbird) title() string {
	out, _ := tb.xdo("getwindowname", tb.main)
	return strings.TrimSpace(out)
}

// focus gives the X input focus to window w (there is no window manager).
func (tb *thunderbird) focus(t *testing.T, w string) {
	t.Helper()
	tb.must(t, "windowfocus", "--sync", w)
}

// key presses keys in the main window.
func (tb *thunderbird) key(t *testing.T, keys ...string) {
	t.Helper()
	tb.focus(t, tb.main)
	tb.must(t, append([]string{"key", "--clearmodifiers"}, keys...)...)
}

// menuKeys presses keys one at a time in an open menu, leaving each
// submenu the time to open (a menu gives no sign to wait for).
func (tb *thunderbird) menuKeys(t *testing.T, keys ...string) {
	t.Helper()
	for _, k := range keys {
		time.Sleep(400 * time.Millisecond)
		tb.must(t, "key", k)
	}
}

// toFolder brings the folder's tab (the first) to the front with Alt+1,
// which leaves any message tab open behind it. (Ctrl+W would close the
// message tab, but on the folder tab it closes the window: it is never
// pressed.)
func (tb *thunderbird) toFolder(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for tb.title() != tbFolderTitle {
		if time.Now().After(deadline) {
			t.Fatalf("the folder tab does not come back: the title is %q", tb.title())
		}
		tb.key(t, "alt+1")
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && tb.title() != tbFolderTitle; {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// selectMessage selects the message with subject in INBOX's message list
// and leaves the keyboard focus on the list, for the next key to act on
// that message: openMessage proves the selection, and back on the folder
// tab (Alt+1) the selection is the one proven; Ctrl+Shift+K then Down puts
// the focus on the list again without changing it.
func (tb *thunderbird) selectMessage(t *testing.T, filter, subject string) {
	t.Helper()
	tb.openMessage(t, filter, subject)
	tb.toFolder(t)
	tb.key(t, "ctrl+shift+k")
	tb.key(t, "Down")
}

// openMessage opens the message with subject of INBOX in a tab of its own
// and leaves that tab in front, where a key acts on the message shown
// whatever had the focus in the folder tab. It types filter into the quick
// filter (Ctrl+Shift+K), selects the first result (Down moves from the
// filter to the list, Home) and opens it (Return): the main window's title
// is then the message's subject, which proves the selection. Until it is
// the right message (the quick filter applies what is typed after a 250 ms
// pause), it tries again, waiting longer.
func (tb *thunderbird) openMessage(t *testing.T, filter, subject string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	settle := 500 * time.Millisecond
	var seen []string
	for {
		tb.toFolder(t)
		tb.key(t, "ctrl+shift+k")
		tb.key(t, "ctrl+a")
		tb.must(t, "type", "--delay", "20", filter)
		time.Sleep(settle)
		tb.key(t, "Down", "Home", "Return")
		// A new tab is titled "Home" until its message is loaded.
		var got string
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if got = tb.title(); got != tbFolderTitle && got != tbLoadingTitle {
				break
			}
		}
		got = strings.TrimSuffix(got, " - Mozilla Thunderbird")
		if got == subject || strings.HasPrefix(got, subject+" [#") {
			return
		}
		seen = append(seen, got)
		if time.Now().After(deadline) {
			t.Fatalf("could not select the message %q with the quick filter %q; opened %q", subject, filter, seen)
		}
		settle = min(2*settle, 4*time.Second)
	}
}

// keyOnMessage selects the message with subject (selectMessage) and
// presses key on it, a key that makes Thunderbird store keyword on it (a
// tag, junk) in INBOX. Thunderbird then queues the STORE ("queuing url ...>keyword>")
// until one of its connections is free, which under CI's load and its
// offline download of every folder can take longer than 30 s. If it has not
// even queued it within keyLost, the key did not reach the message list
// (once in CI at 691cf76), so no local change was made either and pressing
// it again changes nothing twice: it selects the message again and presses
// the key again, three times at most.
func (tb *thunderbird) keyOnMessage(t *testing.T, filter, subject, key, keyword string) {
	t.Helper()
	for try := 1; ; try++ {
		since := time.Now()
		tb.selectMessage(t, filter, subject)
		tb.key(t, key)
		for end := time.Now().Add(keyLost); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if l := tb.keywordStored(since, keyword); l != "" {
				return
			}
		}
		if try == 3 {
			t.Fatalf("Thunderbird did not store %q after %s was pressed on %q three times", keyword, key, subject)
		}
		t.Logf("Thunderbird did not store %q in %v after %s on %q: pressing it again", keyword, keyLost, key, subject)
	}
}

// keyLost is how long Thunderbird may take to queue a key's STORE before
// the key is taken to be lost: it queues it at once, and under CI's load
// within a few seconds.
const keyLost = 20 * time.Second

// keywordStored returns the first line of Thunderbird's IMAP trace since
// since where it queued or sent the STORE of keyword
// (customKeywords>UID>/INBOX>uids>added>removed, then "uid store uids
// +FLAGS (keyword)"); "" when there is none yet.
func (tb *thunderbird) keywordStored(since time.Time, keyword string) string {
	return tb.mozLogLine(since, func(l string) bool {
		return strings.Contains(l, "customKeywords>UID>/INBOX>") && strings.Contains(l, ">"+keyword+">") ||
			strings.Contains(l, "S-INBOX:SendData") && strings.Contains(l, "+FLAGS ("+keyword)
	})
}

// reply presses key (Ctrl+R: Reply, Ctrl+Shift+R: Reply All) on the
// message open in its tab (openMessage), whose subject is subject,
// types text at the top once the compose window has its subject, presses
// Ctrl+Return and answers the SMTP password prompt (the first send asks),
// until recorded() says the daemon has the message.
func (tb *thunderbird) reply(t *testing.T, key, subject, text string, recorded func() bool) {
	t.Helper()
	tb.key(t, key)
	tb.focus(t, tb.compose(t, subject))
	tb.must(t, "type", "--delay", "10", text)
	tb.must(t, "key", "--clearmodifiers", "ctrl+Return")
	tb.sent(t, recorded)
}

// compose waits for the compose window of a reply to subject and returns its
// X id. The window shows up as "Write: (no subject)"; its editor takes keys
// once the fields are filled in, which sets the title.
func (tb *thunderbird) compose(t *testing.T, subject string) string {
	t.Helper()
	var compose string
	waitFor(t, 30*time.Second, "the compose window (Write: Re: "+subject+")", func() bool {
		out, err := tb.xdo("search", "--onlyvisible", "--name", "^Write: ")
		if err != nil {
			return false
		}
		for _, w := range strings.Fields(out) {
			if name, _ := tb.xdo("getwindowname", w); strings.Contains(name, subject) {
				compose = w
				return true
			}
		}
		return false
	})
	return compose
}

// sent answers the SMTP password prompt (the first send asks) until
// recorded() says the daemon has the message.
func (tb *thunderbird) sent(t *testing.T, recorded func() bool) {
	t.Helper()
	answered := false
	waitFor(t, 90*time.Second, "the daemon to record alice's message", func() bool {
		if recorded() {
			return true
		}
		if !answered {
			out, _ := tb.xdo("search", "--onlyvisible", "--name", "Password Required|Enter your password")
			if f := strings.Fields(out); len(f) > 0 {
				tb.focus(t, f[0])
				time.Sleep(300 * time.Millisecond) // the dialog's field takes the keys once it is drawn
				tb.must(t, "type", "--delay", "20", tb.pass)
				tb.must(t, "key", "Return")
				answered = true
			}
		}
		return false
	})
}

// onFailure, deferred by each subtest, shows what Thunderbird showed: a
// screenshot of the display, the windows, the IMAP and SMTP commands it
// sent since the subtest started, and (once) its output.
func (tb *thunderbird) onFailure(t *testing.T, since time.Time) {
	t.Helper()
	if !t.Failed() || tb.display == "" {
		return
	}
	if tb.artifacts == "" {
		base := os.Getenv("SUPPORTGATE_TEST_ARTIFACTS")
		if base == "" {
			base = os.TempDir()
		}
		os.MkdirAll(base, 0o755)
		dir, err := os.MkdirTemp(base, "thunderbird-")
		if err != nil {
			t.Logf("no directory for screenshots: %v", err)
			return
		}
		tb.artifacts = dir
	}
	name := regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(t.Name(), "_")
	png := filepath.Join(tb.artifacts, name+".png")
	cmd := exec.Command("import", "-window", "root", png)
	cmd.Env = append(os.Environ(), "DISPLAY="+tb.display)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Logf("screenshot failed: %v %s", err, out)
	} else {
		t.Logf("screenshot of the display: %s", png)
	}
	if out, err := tb.xdo("search", "--onlyvisible", "--name", "."); err == nil {
		var names []string
		for _, w := range strings.Fields(out) {
			n, _ := tb.xdo("getwindowname", w)
			names = append(names, strings.TrimSpace(n))
		}
		t.Logf("visible windows: %q", names)
	}
	// Thunderbird's IMAP and SMTP commands (MOZ_LOG; the kit names it
	// PROFILE.moz.log, Mozilla adds .moz_log).
	logs, _ := filepath.Glob(tb.profile + ".moz.log*")
	for _, f := range logs {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 {
			continue
		}
		dst := filepath.Join(tb.artifacts, filepath.Base(f))
		os.WriteFile(dst, b, 0o644)
		// Lines start with "2026-12-07 11:32:12.026582 UTC".
		from := since.UTC().Format("2006-01-02 15:04:05.000000")
		var cmds []string
		for _, l := range strings.Split(string(b), "\n") {
			if l < from {
				continue
			}
			if strings.Contains(l, "SendData") && !strings.Contains(l, "FETCH") && !strings.Contains(l, "fetch") &&
				!strings.Contains(l, "noop") && !strings.Contains(l, "IDLE") && !strings.Contains(l, "DONE") ||
				strings.Contains(l, "SMTP") && (strings.Contains(l, "Sending") || strings.Contains(l, "Response")) ||
				strings.Contains(l, " NO ") || strings.Contains(l, " BAD ") ||
				strings.Contains(l, "queuing url") { // a command waiting for a free connection
				cmds = append(cmds, l)
			}
		}
		if len(cmds) > 150 {
			cmds = cmds[len(cmds)-150:]
		}
		t.Logf("Thunderbird's trace %s (copied to %s), its commands since %s:\n%s", f, dst, from, strings.Join(cmds, "\n"))
	}
	if b, err := os.ReadFile(tb.profile + ".log"); err == nil && !tb.outputShown {
		tb.outputShown = true
		t.Logf("Thunderbird's output:\n%s", b)
	}
}
