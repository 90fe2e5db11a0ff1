package sqlite

import (
	"context"
	"errors"
	"time"

	"github.com/prunner-dev/prunner/internal/store"
)

// The SQLite store is one node's (the data directory's lock keeps a second server out), so its
// store.Cluster is trivial: the lease never expires, nobody is ever lost, and recovering the
// node's jobs is RecoverRunning.

var _ store.Cluster = (*Store)(nil)

// foreverLease is the expiry of a lease that never expires.
var foreverLease = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// Shared implements store.Cluster: a SQLite database belongs to one node.
func (s *Store) Shared() bool { return false }

// RegisterNode implements store.Cluster: the one node's lease never expires. Jobs record no
// owner and writes are not fenced: no other node can take them over.
func (s *Store) RegisterNode(_ context.Context, n store.NodeInfo, _ time.Duration) (store.Lease, error) {
	if n.ID == "" {
		return store.Lease{}, errors.New("register node: an ID is required")
	}
	return store.Lease{Node: n.ID, Epoch: 1, Until: foreverLease}, nil
}

// RenewLease implements store.Cluster: there is nothing to renew.
func (s *Store) RenewLease(context.Context, time.Duration) (store.Lease, error) {
	return store.Lease{Epoch: 1, Until: foreverLease}, nil
}

// ReapLostNodes implements store.Cluster: one node is never lost to another.
func (s *Store) ReapLostNodes(context.Context, time.Time) ([]store.ReapedNode, error) {
	return nil, nil
}

// RecoverNode implements store.Cluster: every running job is the one node's.
func (s *Store) RecoverNode(ctx context.Context, reason string, now time.Time) ([]string, error) {
	return s.RecoverRunning(ctx, reason, now)
}

// Nodes implements store.Cluster: SQLite keeps no node table.
func (s *Store) Nodes(context.Context) ([]store.Node, error) { return nil, nil }

// SetDefinitionsHash implements store.Cluster: without a node table there is nothing to record.
func (s *Store) SetDefinitionsHash(context.Context, string) error { return nil }

// StopNode implements store.Cluster: without a node table there is nothing to mark.
func (s *Store) StopNode(context.Context) error { return nil }
