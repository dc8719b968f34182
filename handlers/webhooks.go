package handlers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/labstack/echo/v4"

	"permsync/kinde"
	"permsync/kindesync"
)

// MaxWebhookBytes caps a webhook body. Most are a few KB, but user.updated
// lists the roles and permissions of every organization of the user and can
// pass 64 KiB.
const MaxWebhookBytes = 1 << 20

// webhookDecoder verifies a webhook body (*kinde.WebhookVerifier).
type webhookDecoder interface {
	Decode(ctx context.Context, raw []byte) (*kinde.Event, error)
}

// webhookReceiver records verified deliveries (*kindesync.Syncer).
type webhookReceiver interface {
	ReceiveWebhook(ctx context.Context, d kindesync.WebhookDelivery) (kindesync.ReceiveResult, error)
	RejectWebhook(ctx context.Context, status int, reason, webhookID string)
}

// Webhooks serves POST /webhooks/kinde (see kindesync/receive.go). CSRF is skipped for
// it: the JWS signature authenticates the sender. Answers are plain text:
// 200 once recorded (or a duplicate), 4xx for deliveries that will never be
// accepted, 5xx when Kinde should deliver again.
type Webhooks struct {
	dec     webhookDecoder
	rcv     webhookReceiver
	metrics *Metrics // nil: not counted
	log     *slog.Logger
	logs    refusalLog       // rate-limits the refusal log line
	now     func() time.Time // nil: time.Now
}

// MaxWebhookSkew is how far in the future a webhook's timestamp may be (the
// clocks of Kinde and this host may differ a little); a later one is
// refused.
const MaxWebhookSkew = 5 * time.Minute

// refusalLog lets through one refusal log line a second (after a burst of
// five), and counts the lines it held back, so a flood of forged deliveries
// cannot flood the log. Every refusal is still counted in Prometheus.
type refusalLog struct {
	once    sync.Once
	lim     *rate.Limiter
	skipped atomic.Int64
}

// allow reports whether to log this refusal, and how many were not logged
// since the last line.
func (l *refusalLog) allow() (bool, int64) {
	l.once.Do(func() { l.lim = rate.NewLimiter(1, 5) })
	if !l.lim.Allow() {
		l.skipped.Add(1)
		return false, 0
	}
	return true, l.skipped.Swap(0)
}

// Receive is POST /webhooks/kinde.
func (h *Webhooks) Receive(c echo.Context) error {
	r := c.Request()
	ctx := r.Context()
	hdrID := cleanWebhookID(r.Header.Get("webhook-id"))

	// Kinde sends the signed event as a compact JWS, application/jwt.
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/jwt" {
		return h.reject(c, http.StatusUnsupportedMediaType, "Content-Type must be application/jwt", hdrID, errWebhookContentType)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxWebhookBytes+1))
	if err != nil {
		if he, ok := errors.AsType[*echo.HTTPError](err); ok && he.Code == http.StatusRequestEntityTooLarge {
			return h.reject(c, http.StatusRequestEntityTooLarge, "body too large", hdrID, err)
		}
		return h.reject(c, http.StatusBadRequest, "body could not be read", hdrID, err)
	}
	if len(body) > MaxWebhookBytes {
		return h.reject(c, http.StatusRequestEntityTooLarge, "body larger than 1 MiB", hdrID, kinde.ErrTooLarge)
	}
	ev, err := h.dec.Decode(ctx, body)
	if err != nil {
		status, reason := classifyWebhookError(err)
		return h.reject(c, status, reason, hdrID, err)
	}
	now := time.Now
	if h.now != nil {
		now = h.now
	}
	switch {
	case ev.Timestamp.IsZero():
		return h.reject(c, http.StatusBadRequest, "no timestamp", hdrID, errWebhookTimestamp)
	case ev.Timestamp.After(now().Add(MaxWebhookSkew)):
		return h.reject(c, http.StatusBadRequest, "timestamp in the future", hdrID, errWebhookTimestamp)
	}
	id := hdrID
	if id == "" {
		id = ev.EventID
	}
	log := h.log.With("webhook_id", id, "event_id", ev.EventID, "event_type", ev.Type)
	res, err := h.rcv.ReceiveWebhook(ctx, kindesync.WebhookDelivery{ID: id, Event: ev})
	if err != nil {
		log.Error("webhook: could not record delivery; Kinde will deliver again", "error", err)
		h.metrics.webhookDelivery(webhookError, "")
		return c.String(http.StatusInternalServerError, "could not record the delivery\n")
	}
	switch {
	case res.Duplicate:
		h.metrics.webhookDelivery(webhookDuplicate, "")
		log.Info("webhook: duplicate delivery ignored")
		return c.String(http.StatusOK, "duplicate\n")
	case res.Stale:
		h.metrics.webhookDelivery(webhookStale, "")
		log.Warn("webhook: stale event recorded as ignored", "event_time", ev.Timestamp)
		return c.String(http.StatusOK, "stale\n")
	}
	h.metrics.webhookDelivery(webhookAccepted, "")
	log.Info("webhook: delivery recorded")
	return c.String(http.StatusOK, "ok\n")
}

// reject answers a refused delivery, logs one clear line and records it for
// the admin page. The body is never logged.
func (h *Webhooks) reject(c echo.Context, status int, reason, hdrID string, err error) error {
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	if ok, skipped := h.logs.allow(); ok {
		// c.RealIP() is the socket's peer, or the client a trusted proxy
		// names: never a header the sender chose.
		h.log.Log(c.Request().Context(), level, "webhook: delivery rejected", "status", status, "reason", reason,
			"webhook_id", hdrID, "remote_ip", c.RealIP(), "error", err, "not_logged_since_last", skipped)
	}
	h.rcv.RejectWebhook(c.Request().Context(), status, reason, hdrID)
	h.metrics.webhookDelivery(webhookRejected, webhookRejectReason(status, err))
	return c.String(status, reason+"\n")
}

// Refusals found by the handler itself.
var (
	errWebhookContentType = errors.New("webhook: not application/jwt")
	errWebhookTimestamp   = errors.New("webhook: timestamp missing or in the future")
)

// classifyWebhookError maps a decode failure to a status and a short reason.
func classifyWebhookError(err error) (int, string) {
	switch {
	case errors.Is(err, kinde.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "body too large"
	case errors.Is(err, kinde.ErrKeySetUnavailable):
		return http.StatusServiceUnavailable, "issuer key set unavailable; deliver again later"
	case errors.Is(err, kinde.ErrUnsupportedAlgorithm):
		return http.StatusUnauthorized, "signature algorithm not allowed (RS256 only)"
	case errors.Is(err, kinde.ErrUnknownKey):
		return http.StatusUnauthorized, "signing key unknown"
	case errors.Is(err, kinde.ErrBadSignature):
		return http.StatusUnauthorized, "bad signature"
	case errors.Is(err, kinde.ErrMultipleSignatures):
		return http.StatusBadRequest, "more than one signature"
	case errors.Is(err, kinde.ErrMalformed):
		return http.StatusBadRequest, "malformed: not a signed Kinde event"
	}
	return http.StatusBadRequest, "not accepted"
}

// cleanWebhookID returns the webhook-id header if it looks like an id (at
// most 128 characters of letters, digits and "_-.:"), else "" so the event
// id is used instead.
func cleanWebhookID(s string) string {
	if s == "" || len(s) > 128 {
		return ""
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.', r == ':':
		default:
			return ""
		}
	}
	return s
}
