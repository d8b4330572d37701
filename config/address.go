package config

import (
	"net"
	"strconv"
	"strings"
)

// normalizeAddress checks an ASCII dot-atom addr-spec (local@domain) and returns it in lowercase, or a
// reason why it is not one.
func normalizeAddress(s string) (string, string) {
	if len(s) > 254 {
		return "", "it is longer than 254 characters"
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "", "it has no @"
	}
	local, domain := s[:at], s[at+1:]
	switch {
	case local == "":
		return "", "nothing comes before the @"
	case len(local) > 64:
		return "", "the part before the @ is longer than 64 characters"
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return "", "the part before the @ has a misplaced dot"
	}
	for i := 0; i < len(local); i++ {
		if !isAtext(local[i]) && local[i] != '.' {
			return "", "the part before the @ has a character that is not allowed there (" + strconv.QuoteRune(rune(local[i])) + ")"
		}
	}
	if domain == "" {
		return "", "nothing comes after the @"
	}
	if !validHostname(domain) {
		return "", "the part after the @ is not a valid domain name"
	}
	return strings.ToLower(s), ""
}

// isAtext reports an RFC 5322 atext character.
func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// validHostname reports a DNS name: dot-separated labels of letters, digits and '-', no label starting
// or ending with '-', at most 63 characters per label and 253 in all, no trailing dot.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// checkListen returns why s is not a listen address "host:port" (host may be empty; port 0 to 65535).
func checkListen(s string) string {
	return checkHostPort(s, true)
}

// checkHostPort returns why s is not "host:port", or "". listen allows an empty host (all interfaces)
// and port 0 (any free port).
func checkHostPort(s string, listen bool) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "it needs a host and a port separated by ':' (IPv6 hosts in brackets)"
	}
	n, err := strconv.Atoi(port)
	if err != nil || port == "" || port[0] == '+' || port[0] == '-' || n > 65535 || (!listen && n == 0) {
		if listen {
			return "the port " + strconv.Quote(port) + " is not a number from 0 to 65535"
		}
		return "the port " + strconv.Quote(port) + " is not a number from 1 to 65535"
	}
	switch {
	case host == "" && listen:
	case host == "":
		return "the host is missing"
	case net.ParseIP(host) != nil, validHostname(host):
	default:
		return "the host " + strconv.Quote(host) + " is neither an IP address nor a host name"
	}
	return ""
}
