package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// TokenKeySecret names the reply-token key among the shared secrets: the
// first node to start puts its data directory's there, and
// `supportgate migrate-store` the SQLite store's.
const TokenKeySecret = "token.key"

// SharedSecret returns the secret named name that every node uses
// (DESIGN.md §15: a node holds nothing another needs): the one in the
// database, or candidate when there is none yet, which is recorded then.
// Nodes starting at once with different candidates all get the first one
// recorded. The reply-token key is one (cmd/supportgate): a reply to mail
// sent by one node threads by its token at any other.
func (s *Store) SharedSecret(ctx context.Context, name string, candidate []byte) ([]byte, error) {
	var secret []byte
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING`, name, candidate); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&secret)
	})
	if err != nil {
		return nil, fmt.Errorf("store: reading the shared secret %s: %w", name, err)
	}
	return secret, nil
}
