package admin

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// ReadPassword reads the password `supportgate passwd` hashes (DESIGN.md
// §11). When in is a terminal it prompts on prompt, turns echo off, asks
// twice and refuses a mismatch; otherwise (a pipe, a file) it reads one
// line. An empty password is refused.
func ReadPassword(in io.Reader, prompt io.Writer) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return readPasswordTerminal(f, prompt)
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", errors.New("the password is empty; type it on standard input")
	}
	return pw, nil
}

func readPasswordTerminal(f *os.File, prompt io.Writer) (string, error) {
	var first string
	err := withoutEcho(f, prompt, func(ask func(string) (string, error)) error {
		var err error
		if first, err = ask("New password: "); err != nil {
			return err
		}
		if first == "" {
			return errors.New("the password is empty")
		}
		again, err := ask("Type it again: ")
		if err != nil {
			return err
		}
		if again != first {
			return errors.New("the two passwords differ; nothing was printed")
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return first, nil
}
