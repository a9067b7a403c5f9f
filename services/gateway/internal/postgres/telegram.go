package postgres

import (
	"context"
	"time"
)

// TelegramUpdateRetention is how long a handled update's id is kept:
// Telegram delivers an unconfirmed update for 24 hours at most.
const TelegramUpdateRetention = 48 * time.Hour

// FirstTelegramUpdate records that bot's update id arrived at now, and
// reports whether it is the first time: false, and the update is not
// handled again.
func (s *Store) FirstTelegramUpdate(ctx context.Context, bot string, id int64, now time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO telegram_updates (bot_id, update_id, received_at) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, bot, id, now)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// TelegramWebhookSecret returns bot's webhook secret: the one stored, or
// candidate, stored now, when there is none; replicas that start at once
// all get the same.
func (s *Store) TelegramWebhookSecret(ctx context.Context, bot, candidate string, now time.Time) (string, error) {
	// A replica storing its own at the same moment waits for it, and the
	// update (which changes nothing) returns the secret that is stored.
	var secret string
	err := s.pool.QueryRow(ctx, `INSERT INTO telegram_webhook_secrets (bot_id, secret, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (bot_id) DO UPDATE SET bot_id = EXCLUDED.bot_id RETURNING secret`, bot, candidate, now).Scan(&secret)
	return secret, err
}
