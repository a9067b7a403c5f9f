package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
)

// Cards keeps what approval cards show, by repair: the request, and the
// decision once it is known. Either may come first: the events travel
// apart and are retried apart.
type Cards struct{ pool *pgxpool.Pool }

// NewCards returns the approval cards over pool.
func NewCards(pool *pgxpool.Pool) *Cards { return &Cards{pool: pool} }

// SaveRequest stores the card's request and returns the decision, if one
// came first (nil otherwise).
func (c *Cards) SaveRequest(ctx context.Context, e *eventsv1.RepairApprovalRequested) (*eventsv1.RepairDecided, error) {
	data, err := protojson.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode approval request of repair %s: %w", e.GetRepairId(), err)
	}
	var other []byte
	// The newest request is kept: notify draws a queued message anew when
	// it sends it, which saves its request again, and a first card sent
	// after its snooze was saved must not bring the older request back.
	err = c.pool.QueryRow(ctx, `INSERT INTO approval_cards (repair_id, request) VALUES ($1, $2)
		ON CONFLICT (repair_id) DO UPDATE SET request = CASE
				WHEN (approval_cards.request #>> '{meta,occurredAt}')::timestamptz
					> (excluded.request #>> '{meta,occurredAt}')::timestamptz THEN approval_cards.request
				ELSE excluded.request END,
			updated_at = now()
		RETURNING decision`, e.GetRepairId(), data).Scan(&other)
	if err != nil {
		return nil, fmt.Errorf("save approval request of repair %s: %w", e.GetRepairId(), err)
	}
	return decode(other, &eventsv1.RepairDecided{}, e.GetRepairId())
}

// SaveDecision stores the card's decision and returns its request, if it
// came (nil otherwise).
func (c *Cards) SaveDecision(ctx context.Context, e *eventsv1.RepairDecided) (*eventsv1.RepairApprovalRequested, error) {
	data, err := protojson.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode decision of repair %s: %w", e.GetRepairId(), err)
	}
	var other []byte
	err = c.pool.QueryRow(ctx, `INSERT INTO approval_cards (repair_id, decision) VALUES ($1, $2)
		ON CONFLICT (repair_id) DO UPDATE SET decision = excluded.decision, updated_at = now()
		RETURNING request`, e.GetRepairId(), data).Scan(&other)
	if err != nil {
		return nil, fmt.Errorf("save decision of repair %s: %w", e.GetRepairId(), err)
	}
	return decode(other, &eventsv1.RepairApprovalRequested{}, e.GetRepairId())
}

// decode reads stored protobuf JSON into m; nil for none.
func decode[M proto.Message](data []byte, m M, repairID string) (M, error) {
	var zero M
	if data == nil {
		return zero, nil
	}
	// Unknown fields: a newer notify may have stored them.
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, m); err != nil {
		return zero, fmt.Errorf("decode card of repair %s: %w", repairID, err)
	}
	return m, nil
}

// Prune deletes the cards last touched before before, in statements of
// bounded size, and returns how many. A decision older than the max event
// age is not handled, so before must lie further back than that (as for
// deliveries).
func (c *Cards) Prune(ctx context.Context, before time.Time) (int64, error) {
	n, err := db.DeleteInBatches(ctx, c.pool, pruneChunk, `DELETE FROM approval_cards a USING (
			SELECT repair_id FROM approval_cards WHERE updated_at < $1
			LIMIT $2 FOR UPDATE SKIP LOCKED
		) old WHERE a.repair_id = old.repair_id`, before)
	if err != nil {
		return n, fmt.Errorf("prune approval cards: %w", err)
	}
	return n, nil
}
