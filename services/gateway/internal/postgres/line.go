package postgres

import (
	"context"
	"time"
)

// FirstLineEvent records that the LINE webhook event id arrived at now,
// and reports whether it is the first time: false, and the event is not
// handled again.
func (s *Store) FirstLineEvent(ctx context.Context, id string, now time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO line_events (event_id, received_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`, id, now)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}
