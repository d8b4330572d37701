// Package budget bounds the message data the daemon holds in memory at
// once, across every SMTP DATA and IMAP APPEND (DESIGN.md §8, [limits]
// max_inflight_bytes): one client, or many, cannot take the daemon's memory
// beyond it. A transfer takes bytes as they arrive and gives them back when
// the message is stored or refused; one that would pass the budget is
// refused for now, and its sender retries.
package budget

import (
	"errors"
	"io"
	"sync"
)

// ErrExhausted is returned when the budget has no room for a message.
var ErrExhausted = errors.New("budget: too much message data in flight")

// Bytes is a budget of bytes in flight. It is safe for concurrent use.
type Bytes struct {
	mu        sync.Mutex
	max, used int64
}

// New returns a budget of max bytes.
func New(max int64) *Bytes { return &Bytes{max: max} }

// take reserves n bytes, or reports false.
func (b *Bytes) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

func (b *Bytes) give(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
}

// SetMax changes the budget (a reload); bytes taken stay taken.
func (b *Bytes) SetMax(max int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.max = max
}

// Used returns the bytes in flight now.
func (b *Bytes) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// chunk is how much is read at a time; the buffer grows by doubling, and
// what it holds (its capacity, not its length) is what is taken.
const chunk = 64 << 10

// ReadAll reads r to its end into memory taken from the budget, and
// returns the bytes and the function that gives the memory back (call it
// once the bytes are no longer needed; it is idempotent). When the budget
// has no room, it stops reading and returns ErrExhausted; the caller
// refuses the message (and drains the rest of the transfer without
// keeping it). A nil budget reads without one.
func (b *Bytes) ReadAll(r io.Reader) ([]byte, func(), error) {
	var held int64
	var once sync.Once
	release := func() {
		once.Do(func() {
			if b != nil {
				b.give(held)
			}
		})
	}
	buf := make([]byte, 0, chunk)
	if b != nil && !b.take(chunk) {
		return nil, release, ErrExhausted
	}
	held = chunk
	for {
		if len(buf) == cap(buf) {
			grow := int64(cap(buf)) // doubling
			if b != nil && !b.take(grow) {
				release()
				return nil, func() {}, ErrExhausted
			}
			held += grow
			bigger := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(bigger, buf)
			buf = bigger
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, release, nil
		}
		if err != nil {
			return buf, release, err
		}
	}
}

// Reader wraps r so that the bytes read through it are taken from the
// budget as they arrive (for a transfer whose bytes are held elsewhere,
// e.g. a library's buffer); Close gives them back.
type Reader struct {
	b    *Bytes
	r    io.Reader
	held int64
	once sync.Once
}

// NewReader returns a Reader of r on b.
func (b *Bytes) NewReader(r io.Reader) *Reader { return &Reader{b: b, r: r} }

func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 && r.b != nil {
		if !r.b.take(int64(n)) {
			return 0, ErrExhausted
		}
		r.held += int64(n)
	}
	return n, err
}

// Close gives back what was taken.
func (r *Reader) Close() error {
	r.once.Do(func() {
		if r.b != nil {
			r.b.give(r.held)
		}
	})
	return nil
}
