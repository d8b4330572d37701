package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Ports for a daemon (or a peer) that the test starts, stops and starts
// again are handed out from below the kernel's ephemeral range. A port
// from 127.0.0.1:0, closed and then bound again by the daemon, races every
// outgoing connection on the machine: the kernel may give that same port
// to a client socket in between, and the daemon then fails with "address
// already in use" (it did, in CI). Below the ephemeral range the kernel
// never picks a port by itself, so only another listener could take it.
var portPool struct {
	sync.Mutex
	next, low, high int
}

// reservePort returns a loopback TCP port that was free a moment ago and
// that no client socket will be given.
func reservePort(t *testing.T) int {
	t.Helper()
	portPool.Lock()
	defer portPool.Unlock()
	if portPool.next == 0 {
		portPool.low, portPool.high = 10000, ephemeralLow()
		// Start each test process elsewhere, so two suites run at once
		// seldom try the same ports.
		portPool.next = portPool.low + os.Getpid()*61%(portPool.high-portPool.low)
	}
	for range portPool.high - portPool.low {
		p := portPool.next
		portPool.next++
		if portPool.next >= portPool.high {
			portPool.next = portPool.low
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	t.Fatalf("no free port in [%d, %d)", portPool.low, portPool.high)
	return 0
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default 32768 when it cannot be read).
func ephemeralLow() int {
	const fallback = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return fallback
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return fallback
	}
	low, err := strconv.Atoi(f[0])
	if err != nil || low <= 11000 {
		return fallback
	}
	return low
}

// TestReservedPortsAvoidEphemeralRange: every port handed out lies below
// the ephemeral range and none is handed out twice.
func TestReservedPortsAvoidEphemeralRange(t *testing.T) {
	seen := map[int]bool{}
	low := ephemeralLow()
	for range 200 {
		p := reservePort(t)
		if p >= low || p < 10000 {
			t.Fatalf("port %d is not in [10000, %d)", p, low)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
