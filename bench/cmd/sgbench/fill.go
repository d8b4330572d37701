package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/supportgate/supportgate/gateway"
	"github.com/supportgate/supportgate/gateway/imapgw"
	"github.com/supportgate/supportgate/store"
	"github.com/supportgate/supportgate/store/postgres"
	"github.com/supportgate/supportgate/store/sqlite"
)

// tokenSecret is cmd/supportgate's name of the reply-token key among
// PostgreSQL's shared secrets (engine.go).
const tokenSecret = "token.key"

// importer is what fill needs of an engine.
type importer interface {
	ImportInbound(ctx context.Context, ins []store.Inbound) ([]store.InboundResult, error)
	SetMetaFunc(f store.MetaFunc)
	Close() error
}

// openFill opens the store the daemon would: data's SQLite, or with dsn
// the PostgreSQL database, which gets data's token key if it has none yet
// (as the first node puts its own there), so that token prints the key
// every node uses.
func openFill(ctx context.Context, data, dsn string) (importer, error) {
	if dsn == "" {
		return sqlite.Open(ctx, data)
	}
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	local, err := os.ReadFile(filepath.Join(data, gateway.SecretFile))
	if err == nil {
		_, err = st.SharedSecret(ctx, tokenSecret, local)
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// benchMessage is message i: 4 KiB, from one of 1,000 customers; odd ones
// answer the message before them, as half of real support mail does.
func benchMessage(i int) (raw []byte, id, sender, inReplyTo string) {
	id = fmt.Sprintf("fill%d@customer.example", i)
	sender = fmt.Sprintf("c%d@customer.example", i%1000)
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <support@example.test>\r\nDate: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <%s>\r\n", sender, id)
	if i%2 == 1 {
		inReplyTo = fmt.Sprintf("fill%d@customer.example", i-1)
		fmt.Fprintf(&b, "In-Reply-To: <%s>\r\nSubject: Re: Printer %d\r\n", inReplyTo, i-1)
	} else {
		fmt.Fprintf(&b, "Subject: Printer %d\r\n", i)
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
	for b.Len() < 4096 {
		b.WriteString("The printer on the third floor is on fire again; please send someone.\r\n")
	}
	return b.Bytes(), id, sender, inReplyTo
}

// fill stores n messages directly through the store (the daemon must not be
// running), as the MX would after threading: even messages start a
// conversation, odd ones join the previous one. With maildir, the same bytes
// go into a Maildir for Dovecot.
func fill(ctx context.Context, data, dsn string, n int, maildir string, budget time.Duration) error {
	if data != "" {
		// The token key is created as the daemon would, so that it can be
		// started on this directory.
		if _, err := gateway.LoadKeys(data); err != nil {
			return err
		}
	}
	if maildir != "" {
		for _, d := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(maildir, d), 0o777); err != nil {
				return err
			}
		}
		maildirStart := time.Now()
		for i := range n {
			if budget > 0 && time.Since(maildirStart) > budget {
				n = i
				break
			}
			raw, _, _, _ := benchMessage(i)
			name := fmt.Sprintf("%d.M%dP1.bench,S=%d:2,", 1_700_000_000+i, i, len(raw))
			if err := os.WriteFile(filepath.Join(maildir, "cur", name), raw, 0o666); err != nil {
				return err
			}
		}
	}
	if data == "" {
		// Only a Maildir: n is what the budget allowed.
		fmt.Printf("filled=%d\n", n)
		return nil
	}
	st, err := openFill(ctx, data, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	// As the daemon does: the FETCH metadata is computed when a message is
	// stored (gateway/imapgw/meta.go).
	st.SetMetaFunc(imapgw.MessageMeta)
	start := time.Now()
	deadline := time.Time{}
	if budget > 0 {
		deadline = start.Add(budget)
	}
	// Chunks of fillChunk messages, each stored in one transaction by
	// ImportInbound (the same code as AddInbound, without a commit per
	// batch of concurrent deliveries): the 1,000,000-message pre-fill of
	// bench/run must fit in its budget. Two workers, one per core: one
	// parses the next chunk's FETCH metadata while the other's is written.
	// In a chunk, an even message starts a conversation and the odd one
	// after it replies into it (Conversation -1: the one before).
	const fillChunk = 2000
	var next, stored atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			ins := make([]store.Inbound, 0, fillChunk)
			for {
				first := int(next.Add(fillChunk) - fillChunk)
				if first >= n || (!deadline.IsZero() && time.Now().After(deadline)) {
					return
				}
				ins = ins[:0]
				for i := first; i < min(first+fillChunk, n); i++ {
					raw, id, sender, irt := benchMessage(i)
					p := i &^ 1
					in := store.Inbound{Inbox: "support@example.test", Owner: sender,
						Subject: fmt.Sprintf("Printer %d", p), NormSubject: fmt.Sprintf("printer %d", p),
						Sender: sender, SenderRole: store.SenderOwner, MessageIDHeader: id, Raw: raw, Received: time.Now()}
					if irt != "" {
						in.Conversation, in.SeenMessageIDs = -1, []string{irt}
					}
					ins = append(ins, in)
				}
				if _, err := st.ImportInbound(ctx, ins); err != nil {
					errs <- err
					return
				}
				stored.Add(int64(len(ins)))
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Printf("filled=%d\nfill_seconds=%.1f\nfill_rate=%.0f\n", stored.Load(), el.Seconds(), float64(stored.Load())/el.Seconds())
	return nil
}

func token(data string, conv int64) error {
	k, err := gateway.LoadKeys(data)
	if err != nil {
		return err
	}
	fmt.Println(k.ReplyToken(conv))
	return nil
}

// count waits until dir holds n regular files (smtp-sink's dumps, a
// Maildir's new/) and prints how long that took from the first call.
func count(dir string, n int, timeout time.Duration) error {
	start := time.Now()
	for {
		entries, err := os.ReadDir(dir)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		if len(entries) >= n {
			fmt.Printf("count=%d\ncount_seconds=%.3f\n", len(entries), time.Since(start).Seconds())
			return nil
		}
		if time.Since(start) > timeout {
			return fmt.Errorf("%s holds %d files after %s, want %d", dir, len(entries), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
