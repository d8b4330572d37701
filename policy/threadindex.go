package policy

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"
)

// Outlook threads by Thread-Index rather than References: a reply's
// Thread-Index is its parent's followed by a 5-byte child block
// ([MS-OXOMSG] 2.2.1.3, PidTagConversationIndex). When the agent's client
// sends none (Thunderbird, Apple Mail, mutt) and the customer's message had
// one, the reply gets a child of it, so that the customer's Outlook shows the
// reply in its conversation.

// ThreadIndexHeader is a Thread-Index/Thread-Topic pair to add to a reply.
type ThreadIndexHeader struct {
	Index, Topic string
}

// ChildThreadIndex returns the Thread-Index of a reply to a message whose
// Thread-Index is parent, sent at now, and false when parent is not a valid
// one (22 bytes of header, then 5-byte blocks, base64).
func ChildThreadIndex(parent string, now time.Time) (string, bool) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(parent))
	if err != nil || len(b) < 22 || (len(b)-22)%5 != 0 || len(b) > 22+5*200 {
		return "", false
	}
	// Byte 0 is reserved; bytes 1..5 hold the 40 high bits of the first
	// message's FILETIME (100 ns since 1601). A child block is one code bit
	// (0), the time since then in units of 2^18 ticks in 31 bits, then a
	// random nibble and a sequence nibble.
	var ft [8]byte
	copy(ft[3:8], b[1:6])
	parentTicks := binary.BigEndian.Uint64(ft[:]) << 24
	nowTicks := uint64(now.UnixNano()/100) + 116444736000000000
	var delta uint64
	if nowTicks > parentTicks {
		delta = (nowTicks - parentTicks) >> 18
	}
	if delta > 0x7fffffff {
		delta = 0x7fffffff
	}
	child := make([]byte, 5)
	binary.BigEndian.PutUint32(child, uint32(delta))
	child[4] = byte(now.UnixNano()) // random-ish and sequence nibbles
	return base64.StdEncoding.EncodeToString(append(b, child...)), true
}
