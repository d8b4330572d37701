package gateway

import (
	"errors"
	"net"
	"strings"

	"github.com/emersion/go-sasl"
	"golang.org/x/crypto/bcrypt"

	"github.com/supportgate/supportgate/config"
)

// authenticate returns the agent whose email and password these are.
func (s *Server) authenticate(email, password string) (config.Agent, bool) {
	agent, ok := s.cfg().Agent(strings.TrimSpace(email))
	hash := s.dummyHash
	if ok {
		hash = []byte(agent.PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !ok {
		return config.Agent{}, false
	}
	return agent, true
}

// isLoopback reports whether a connection comes from this machine; only then
// may a password travel without TLS (DESIGN.md §5, §8).
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

var errLoginCancelled = errors.New("authentication cancelled")

// loginServer is the server side of the obsolete but ubiquitous AUTH LOGIN
// (draft-murchison-sasl-login), which Outlook still uses: the server asks for
// "Username:" then "Password:", each base64-encoded by the SMTP layer.
type loginServer struct {
	authenticate func(username, password string) error
	username     *string
}

func newLoginServer(authenticate func(username, password string) error) sasl.Server {
	return &loginServer{authenticate: authenticate}
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch {
	case l.username == nil && response == nil:
		return []byte("Username:"), false, nil
	case l.username == nil:
		u := string(response)
		l.username = &u
		return []byte("Password:"), false, nil
	case response == nil:
		return nil, true, errLoginCancelled
	default:
		return nil, true, l.authenticate(*l.username, string(response))
	}
}
