package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var existsLine = regexp.MustCompile(`^\* (\d+) EXISTS`)
var uidItem = regexp.MustCompile(`UID (\d+)`)

// million prints what an agent meets in a large folder (issue 18): the
// first SELECT of a session, a \Seen STORE on one message, SEARCH FROM and
// SEARCH TEXT, and STATUS from another session; each but the first SELECT
// the median of 3. from and text are what the searches look for.
func million(addr, user, pass, mailbox, from, text string) error {
	m, err := dialIMAP(addr, user, pass)
	if err != nil {
		return err
	}
	defer m.c.Close()
	var lines []string
	sel, err := timed(func() (err error) { lines, err = m.cmd("SELECT " + mailbox); return err })
	if err != nil {
		return err
	}
	exists := 0
	for _, l := range lines {
		if sm := existsLine.FindStringSubmatch(l); sm != nil {
			exists, _ = strconv.Atoi(sm[1])
		}
	}
	if exists < 3 {
		return fmt.Errorf("%s holds %d messages", mailbox, exists)
	}
	fmt.Printf("exists=%d\nselect_first=%.4f\n", exists, sel)
	median := func(key string, f func(i int) error) error {
		var runs []float64
		for i := range 3 {
			s, err := timed(func() error { return f(i) })
			if err != nil {
				return err
			}
			runs = append(runs, s)
		}
		slices.Sort(runs)
		fmt.Printf("%s=%.4f\n", key, runs[1])
		return nil
	}
	if err := median("select", func(int) error { _, err := m.cmd("SELECT " + mailbox); return err }); err != nil {
		return err
	}
	// Messages spread over the folder, each unseen so far by this run: a
	// run's time picks them.
	base := int(time.Now().UnixNano() % int64(exists/3))
	uids := make([]string, 3)
	for i := range uids {
		lines, err := m.cmd(fmt.Sprintf("FETCH %d (UID)", base+i*(exists/3)+1))
		if err != nil {
			return err
		}
		for _, l := range lines {
			if sm := uidItem.FindStringSubmatch(l); sm != nil {
				uids[i] = sm[1]
			}
		}
		if uids[i] == "" {
			return fmt.Errorf("no UID for message %d", base+i*(exists/3)+1)
		}
	}
	if err := median("store_seen", func(i int) error { _, err := m.cmd("UID STORE " + uids[i] + ` +FLAGS (\Seen)`); return err }); err != nil {
		return err
	}
	found := 0
	count := func(lines []string) {
		found = 0
		for _, l := range lines {
			if strings.HasPrefix(l, "* SEARCH") {
				found = len(strings.Fields(l)) - 2
			}
		}
	}
	if err := median("search_from", func(int) error {
		lines, err := m.cmd(fmt.Sprintf("UID SEARCH FROM %q", from))
		count(lines)
		return err
	}); err != nil {
		return err
	}
	fmt.Printf("search_from_found=%d\n", found)
	if err := median("search_text", func(int) error {
		lines, err := m.cmd(fmt.Sprintf("UID SEARCH TEXT %q", text))
		count(lines)
		return err
	}); err != nil {
		return err
	}
	fmt.Printf("search_text_found=%d\n", found)
	other, err := dialIMAP(addr, user, pass)
	if err != nil {
		return err
	}
	defer other.c.Close()
	return median("status", func(int) error {
		_, err := other.cmd("STATUS " + mailbox + " (MESSAGES UNSEEN UIDNEXT)")
		return err
	})
}
