package gateway

import (
	"testing"

	"github.com/supportgate/supportgate/internal/dnstest"
)

// testDNS is the loopback DNS server of internal/dnstest, answering TXT
// (and MX, A, AAAA) queries from a table.
type testDNS = dnstest.Server

func newTestDNS(t testing.TB) *testDNS { return dnstest.New(t) }
