package app_test

import (
	"context"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"permsync/app/apptest"
)

// TestForgedWebhookFloodIsCheap: a flood of forged deliveries is refused,
// every one counted in Prometheus, but only a few rows reach the database
// (a burst, then one a second), each standing for the refusals it sampled.
func TestForgedWebhookFloodIsCheap(t *testing.T) {
	env := apptest.Start(t, apptest.Options{})
	ctx := context.Background()
	const flood = 300
	start := time.Now()
	for range flood {
		if status, _ := postWebhook(t, env, []byte("forged, not a token"), ""); status != http.StatusBadRequest {
			t.Fatalf("forged delivery = %d; want 400", status)
		}
	}
	elapsed := time.Since(start)

	var rows, refusals int
	if err := env.DB.QueryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(refusals), 0) FROM webhook_rejections`).Scan(&rows, &refusals); err != nil {
		t.Fatal(err)
	}
	// The sampler lets a burst of 20 through, then one a second.
	if most := 20 + int(math.Ceil(elapsed.Seconds())) + 1; rows > most {
		t.Fatalf("%d forged deliveries in %s wrote %d rows; want at most %d", flood, elapsed.Round(time.Millisecond), rows, most)
	}
	if refusals > flood || refusals < rows {
		t.Fatalf("rows stand for %d refusals; want between %d and %d", refusals, rows, flood)
	}
	body := scrape(t, env.URL+"/metrics")
	if got, ok := sample(body, "permsync_webhook_deliveries_total", `outcome="rejected"`, `reason="malformed"`); !ok || got != flood {
		t.Fatalf("Prometheus counted %v refusals; want %d", got, flood)
	}
	if !strings.Contains(body, "permsync_webhook_deliveries_total") {
		t.Fatal("no webhook counter")
	}
}
