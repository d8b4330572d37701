package main

import (
	"bytes"
	"fmt"
	"net/smtp"
	"sync"
	"sync/atomic"
	"time"
)

// submit sends n 4 KiB replies to `to` from c concurrent sessions and prints
// how long the submissions took (the delivery is timed by `count`).
func submit(addr, user, pass, to, ref string, n, c int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, c)
	start := time.Now()
	for range c {
		wg.Go(func() {
			cl, err := smtp.Dial(addr)
			if err != nil {
				errs <- err
				return
			}
			defer cl.Close()
			host, _, _ := splitHost(addr)
			// Postfix here is a relay for loopback clients: no AUTH.
			if pass != "" {
				if err := cl.Auth(smtp.PlainAuth("", user, pass, host)); err != nil {
					errs <- err
					return
				}
			}
			for {
				i := next.Add(1)
				if i > int64(n) {
					cl.Quit()
					return
				}
				var b bytes.Buffer
				fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: Re: Printer\r\nMessage-ID: <reply%d.%d@agent.example>\r\n", user, to, time.Now().UnixNano(), i)
				if ref != "" {
					fmt.Fprintf(&b, "In-Reply-To: <%s>\r\nReferences: <%s>\r\n", ref, ref)
				}
				b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
				for b.Len() < 4096 {
					b.WriteString("Please unplug the printer and wait for the fire brigade to arrive.\r\n")
				}
				if err := send(cl, user, to, b.Bytes()); err != nil {
					errs <- fmt.Errorf("reply %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Printf("submitted=%d\nsubmit_seconds=%.3f\n", n, time.Since(start).Seconds())
	return nil
}

func send(cl *smtp.Client, from, to string, msg []byte) error {
	if err := cl.Mail(from); err != nil {
		return err
	}
	if err := cl.Rcpt(to); err != nil {
		return err
	}
	w, err := cl.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	return w.Close()
}

func splitHost(addr string) (string, string, error) {
	i := bytes.LastIndexByte([]byte(addr), ':')
	if i < 0 {
		return addr, "", nil
	}
	return addr[:i], addr[i+1:], nil
}
