package devkinde

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// Identifier formats follow what Kinde emits: UUIDv7 for permission and role
// ids, kp_<32 hex> for users, org_<11 hex> for organizations, event_<32 hex>
// for events, webhook_<hex> for webhooks and session_0x<32 hex> for sessions.

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

// newUUIDv7Bytes returns 16 bytes laid out as a UUIDv7: a millisecond clock
// followed by random bits, so ids sort by creation time.
func newUUIDv7Bytes() []byte {
	b := randomBytes(16)
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(time.Now().UnixMilli()))
	copy(b[0:6], ms[2:8])
	b[6] = (b[6] & 0x0f) | 0x70
	b[8] = (b[8] & 0x3f) | 0x80
	return b
}

func newUUIDv7() string { return formatUUID(newUUIDv7Bytes()) }

func newUUIDv4() string {
	b := randomBytes(16)
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return formatUUID(b)
}

func formatUUID(b []byte) string {
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func newUserID() string      { return "kp_" + randomHex(16) }
func newOrgCode() string     { return "org_" + randomHex(6)[:11] }
func newEventID() string     { return "event_" + hex.EncodeToString(newUUIDv7Bytes()) }
func newWebhookID() string   { return "webhook_" + hex.EncodeToString(newUUIDv7Bytes()) }
func newDeliveryID() string  { return "msg_" + hex.EncodeToString(newUUIDv7Bytes()) }
func newSessionID() string   { return "session_0x" + randomHex(16) }
func newFamilyID() string    { return "rtf_" + randomHex(16) }
func newOpaqueToken() string { return base64.RawURLEncoding.EncodeToString(randomBytes(32)) }

// tokenHash is how opaque secrets (refresh tokens, codes) are stored: never
// in the clear.
func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}
