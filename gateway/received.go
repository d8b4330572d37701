package gateway

import (
	"context"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// receivedField is the trace field the MX puts at the top of every message it
// stores (RFC 5321 4.4: "When an SMTP server receives a message for delivery
// or further processing, it MUST insert trace ('time stamp' or 'Received')
// information at the beginning of the message content"). Its form is RFC
// 5321 4.4's Time-stamp-line with RFC 3848's protocol names:
//
//	Received: from <helo> ([<ip>]) by <hostname> (supportgate) with ESMTPS id <conn>
//		for <rcpt>; <date>
//
// Nothing the client sent reaches the field unchecked (DESIGN.md §8): the
// EHLO name is kept only when it is a domain or an address literal.
func receivedField(c mxClient, hostname, connID, rcpt string, now time.Time) string {
	var b strings.Builder
	b.WriteString("Received: from ")
	helo := ""
	if c.helo != nil {
		helo = c.helo()
	}
	if !safeHelo(helo) {
		helo = "unknown"
	}
	b.WriteString(helo)
	if c.ip != nil {
		b.WriteString(" ([" + c.ip.String() + "])")
	}
	b.WriteString("\r\n\tby " + hostname + " (supportgate) with " + c.protocol() + " id " + connID)
	if rcpt != "" && safeAddress(rcpt) {
		b.WriteString("\r\n\tfor <" + rcpt + ">")
	}
	b.WriteString("; " + now.Format(time.RFC1123Z) + "\r\n")
	return b.String()
}

// protocol is the "with" clause of RFC 3848: ESMTP, plus S over TLS (the
// MX takes no AUTH, so never A). go-smtp does not tell HELO from EHLO.
func (c mxClient) protocol() string {
	if c.tls {
		return "ESMTPS"
	}
	return "ESMTP"
}

// safeHelo accepts a domain name or an address literal ("[192.0.2.1]",
// "[IPv6:...]"), at most 255 characters of letters, digits, '.', '-', '_'
// (seen in the wild), and ':' inside brackets.
func safeHelo(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		inner := strings.TrimPrefix(strings.TrimSuffix(s, "]"), "[")
		return net.ParseIP(strings.TrimPrefix(inner, "IPv6:")) != nil
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
		default:
			return false
		}
	}
	return true
}

// safeAddress accepts an envelope address fit for a header: printable
// ASCII without spaces, angle brackets or semicolons.
func safeAddress(s string) bool {
	for _, r := range s {
		if r <= ' ' || r > '~' || r == '<' || r == '>' || r == ';' {
			return false
		}
	}
	return s != ""
}

// mxClientOf returns what the MX knows of a session's connection, with its
// TLS state and greeting as they are now.
func mxClientOf(ctx context.Context, conn *smtp.Conn) mxClient {
	c, _ := ctx.Value(mxClientKey{}).(mxClient)
	if conn != nil {
		_, c.tls = conn.TLSConnectionState()
	}
	return c
}
