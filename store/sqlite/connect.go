package sqlite

import (
	"context"
	"database/sql/driver"

	"github.com/mattn/go-sqlite3"
)

// writeConnector opens the write connection: the DSN's settings, then
// temp_store = MEMORY, so that the statement journal of each request's
// savepoint (groupcommit.go) stays in memory. Without it SQLite spills a
// savepoint's journal to a temporary file once it passes 64 KiB, which one
// reply's transaction does, and from then on wrote the first copy of every
// page a request touches there: two fifths of the writer's write(2) calls
// in the outbound benchmark (issue 18). The journal is truncated at each
// request's RELEASE, so it holds one request's pages at most. The read
// pool keeps SQLite's default: its large sorts may use temporary files.
type writeConnector struct {
	dsn    string
	driver *sqlite3.SQLiteDriver
}

func newWriteConnector(dsn string) *writeConnector {
	return &writeConnector{dsn: dsn, driver: &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec(`PRAGMA temp_store = MEMORY`, nil)
		return err
	}}}
}

// Connect implements driver.Connector.
func (c *writeConnector) Connect(context.Context) (driver.Conn, error) { return c.driver.Open(c.dsn) }

// Driver implements driver.Connector.
func (c *writeConnector) Driver() driver.Driver { return c.driver }
