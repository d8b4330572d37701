package admin

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// withoutEcho runs fn with the terminal f's echo off and restores it
// afterwards, also when the process is interrupted meanwhile. fn's ask
// writes a prompt on prompt and reads a line from f. Echo goes off before
// the first prompt: x/term's ReadPassword turns it off only after the
// prompt was written, so a password typed as soon as the prompt shows
// could still be echoed.
func withoutEcho(f *os.File, prompt io.Writer, fn func(ask func(string) (string, error)) error) error {
	fd := int(f.Fd())
	saved, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	quiet := *saved
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return err
	}
	restore := func() { unix.IoctlSetTermios(fd, unix.TCSETS, saved) }
	defer restore()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	stop := make(chan struct{})
	defer func() { signal.Stop(sig); close(stop) }()
	go func() {
		select {
		case <-sig:
			restore()
			fmt.Fprintln(prompt)
			os.Exit(130)
		case <-stop:
		}
	}()
	r := bufio.NewReader(f)
	return fn(func(p string) (string, error) {
		fmt.Fprint(prompt, p)
		line, err := r.ReadString('\n')
		fmt.Fprintln(prompt) // the Enter that was not echoed
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	})
}
