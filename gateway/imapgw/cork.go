package imapgw

import (
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// corkConn gathers the writes of a long answer into few system calls.
//
// The library flushes its buffer at the end of every response line, so a
// FETCH 1:* of 10,000 messages was 10,000 write(2) calls (a profile showed
// them as the largest single cost of the FETCH after the parsing). While a
// session answers a FETCH or a SEARCH it corks its connection: writes go
// to a buffer that is written out when it is full and when the command is
// done (uncork), before the tagged answer. It sits below TLS, so the
// library still sees the *tls.Conn it checks for.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
	err    error // the first failed write while corked
}

// corkLimit is how much a corked connection holds before it writes.
const corkLimit = 64 << 10

// corkWriteTimeout bounds the final write of uncork, done when the library
// has no write deadline set (between responses).
const corkWriteTimeout = 30 * time.Second

func (c *corkConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(b)
	}
	if c.err != nil {
		return 0, c.err
	}
	if len(c.buf)+len(b) > corkLimit {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(b) >= corkLimit {
			n, err := c.Conn.Write(b)
			c.err = err
			return n, err
		}
	}
	c.buf = append(c.buf, b...)
	return len(b), nil
}

func (c *corkConn) flushLocked() error {
	if len(c.buf) == 0 || c.err != nil {
		return c.err
	}
	_, c.err = c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return c.err
}

// cork starts gathering writes.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was gathered and stops gathering; the buffer is
// released, so that an idle session holds none.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return nil
	}
	c.corked = false
	var err error
	if len(c.buf) > 0 && c.err == nil {
		c.Conn.SetWriteDeadline(time.Now().Add(corkWriteTimeout))
		err = c.flushLocked()
		c.Conn.SetWriteDeadline(time.Time{})
	}
	if err == nil {
		err = c.err
	}
	c.buf, c.err = nil, nil
	return err
}

// findCork finds the corkConn under a connection the library serves.
func findCork(c net.Conn) *corkConn {
	for {
		switch x := c.(type) {
		case *corkConn:
			return x
		case *tls.Conn:
			c = x.NetConn()
		case *trackedConn:
			c = x.Conn
		default:
			return nil
		}
	}
}
