package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// PermissionKey maps a Kinde permission id to its key, kept from listings
// (and webhooks), because permission.deleted carries only the id.
type PermissionKey struct {
	ID          string
	Key         string
	Name        string
	Description string
	DeletedAt   time.Time // zero while the permission exists
	UpdatedAt   time.Time
}

// UpsertPermissionKeys records permissions seen in a listing. A permission
// seen again is no longer marked deleted.
func (db *DB) UpsertPermissionKeys(ctx context.Context, perms []PermissionKey) error {
	if len(perms) == 0 {
		return nil
	}
	return db.InTx(ctx, func(tx *Tx) error { return tx.UpsertPermissionKeys(ctx, perms) })
}

// UpsertPermissionKeys is UpsertPermissionKeys inside the transaction.
func (tx *Tx) UpsertPermissionKeys(ctx context.Context, perms []PermissionKey) error {
	now := Millis(time.Now())
	for _, p := range perms {
		_, err := tx.Exec(ctx, `INSERT INTO permission_keys (permission_id, permission_key, name, description,
			deleted_at, updated_at) VALUES (?, ?, ?, ?, 0, ?)
			ON CONFLICT (permission_id) DO UPDATE SET permission_key = excluded.permission_key,
			name = excluded.name, description = excluded.description, deleted_at = 0,
			updated_at = excluded.updated_at`, p.ID, p.Key, p.Name, p.Description, now)
		if err != nil {
			return fmt.Errorf("upsert permission key: %w", err)
		}
	}
	return nil
}

// PermissionKeyByID returns what is known of a permission id, deleted or
// not, or ErrNotFound.
func (db *DB) PermissionKeyByID(ctx context.Context, id string) (*PermissionKey, error) {
	var p PermissionKey
	var deleted, updated int64
	err := db.QueryRow(ctx, `SELECT permission_id, permission_key, name, description, deleted_at, updated_at
		FROM permission_keys WHERE permission_id = ?`, id).
		Scan(&p.ID, &p.Key, &p.Name, &p.Description, &deleted, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("permission key: %w", err)
	}
	p.DeletedAt, p.UpdatedAt = FromMillis(deleted), FromMillis(updated)
	return &p, nil
}

// MarkPermissionDeleted records that a permission id was deleted at Kinde,
// inside the transaction. The mapping is kept so late webhooks still resolve.
func (tx *Tx) MarkPermissionDeleted(ctx context.Context, id, key string) error {
	now := Millis(time.Now())
	_, err := tx.Exec(ctx, `INSERT INTO permission_keys (permission_id, permission_key, deleted_at, updated_at)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (permission_id) DO UPDATE SET deleted_at = excluded.deleted_at, updated_at = excluded.updated_at`,
		id, key, now, now)
	if err != nil {
		return fmt.Errorf("mark permission deleted: %w", err)
	}
	return nil
}
