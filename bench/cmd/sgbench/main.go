// Command sgbench is the load and measuring tool of bench/run. It is not part
// of supportgate; its subcommands each do one step and print "key=value"
// lines that bench/run collects into the table.
//
//	sgbench fill -data DIR [-dsn DSN] -n N [-maildir DIR] [-budget 5m]   pre-fill a store (and a Maildir with the same messages)
//	sgbench token -data DIR -conv ID                         the reply token of a conversation
//	sgbench imap -addr HOST:PORT -user U -pass P             SELECT and the two UID FETCH 1:* timings
//	sgbench million -addr HOST:PORT -user U -pass P [-mailbox M]  first SELECT, STORE \Seen, SEARCH FROM/TEXT, STATUS
//	sgbench newmail -addr IMAP -mx SMTP -user U -pass P      FETCH-of-new-mail latency through the MX
//	sgbench idle -addr HOST:PORT -user U -pass P -n N -pid PID  resident memory with N connections in IDLE
//	sgbench submit -addr HOST:PORT -user U -pass P -n N -to ADDR -c C  send N replies through submission
//	sgbench count -dir DIR -n N                              wait until DIR holds N files, print the time
//	sgbench hash -pass P                                     a cheap bcrypt hash for the bench agent
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: sgbench fill|token|imap|million|newmail|idle|submit|count|hash [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	var err error
	ctx := context.Background()
	switch os.Args[1] {
	case "fill":
		data := fs.String("data", "", "supportgate data directory")
		dsn := fs.String("dsn", "", "PostgreSQL database (the [store] dsn); default: the data directory's SQLite")
		n := fs.Int("n", 10000, "messages to store")
		maildir := fs.String("maildir", "", "also write the messages into this Maildir")
		budget := fs.Duration("budget", 0, "stop after this long (0: none)")
		fs.Parse(os.Args[2:])
		err = fill(ctx, *data, *dsn, *n, *maildir, *budget)
	case "token":
		data := fs.String("data", "", "supportgate data directory")
		conv := fs.Int64("conv", 1, "conversation")
		fs.Parse(os.Args[2:])
		err = token(*data, *conv)
	case "million":
		addr := fs.String("addr", "", "IMAP host:port")
		user := fs.String("user", "", "login")
		pass := fs.String("pass", "", "password")
		mailbox := fs.String("mailbox", "INBOX", "folder")
		from := fs.String("from", "c777@customer.example", "SEARCH FROM this")
		text := fs.String("text", "printer 4242", "SEARCH TEXT this")
		fs.Parse(os.Args[2:])
		err = million(*addr, *user, *pass, *mailbox, *from, *text)
	case "imap", "newmail", "idle":
		addr := fs.String("addr", "", "IMAP host:port")
		user := fs.String("user", "", "login")
		pass := fs.String("pass", "", "password")
		mx := fs.String("mx", "", "MX host:port (newmail)")
		rcpt := fs.String("rcpt", "support@example.test", "recipient (newmail)")
		n := fs.Int("n", 10000, "connections (idle)")
		pid := fs.Int("pid", 0, "server process whose memory is measured (idle)")
		fs.Parse(os.Args[2:])
		switch os.Args[1] {
		case "imap":
			err = imapTimings(*addr, *user, *pass)
		case "newmail":
			err = newMail(*addr, *mx, *rcpt, *user, *pass)
		default:
			err = idle(*addr, *user, *pass, *n, *pid)
		}
	case "submit":
		addr := fs.String("addr", "", "submission host:port")
		user := fs.String("user", "", "login")
		pass := fs.String("pass", "", "password")
		to := fs.String("to", "", "recipient")
		ref := fs.String("ref", "", "Message-ID the replies answer (without <>)")
		n := fs.Int("n", 1000, "replies")
		c := fs.Int("c", 10, "concurrent sessions")
		fs.Parse(os.Args[2:])
		err = submit(*addr, *user, *pass, *to, *ref, *n, *c)
	case "count":
		dir := fs.String("dir", "", "directory")
		n := fs.Int("n", 0, "files to wait for")
		timeout := fs.Duration("timeout", 10*time.Minute, "give up after")
		fs.Parse(os.Args[2:])
		err = count(*dir, *n, *timeout)
	case "hash":
		pass := fs.String("pass", "", "password")
		fs.Parse(os.Args[2:])
		// bcrypt's minimum cost: the bench measures the server, not 10,000
		// logins at the production cost.
		var h []byte
		h, err = bcrypt.GenerateFromPassword([]byte(*pass), bcrypt.MinCost)
		fmt.Println(string(h))
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sgbench:", err)
		os.Exit(1)
	}
}
