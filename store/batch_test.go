package store

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

// A fan-out of more users than one INSERT carries, and as many denials:
// every row lands, and the denial version moves (once, with SQLite's
// database of its own; Postgres's may be shared with other tests).
func TestLargeFanoutAndDenials(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	id := "fo_big" + strconv.FormatInt(time.Now().UnixNano(), 36)
	n := 2*insertBatch + 7
	items := make([]FanoutItem, n)
	ds := make([]Denial, n)
	for i := range items {
		u := "kp_" + strconv.Itoa(i)
		items[i] = FanoutItem{UserID: u, Email: u + "@x.test"}
		ds[i] = Denial{PermissionKey: "export:reports", UserID: u, OrgCode: "org_a", FanoutID: id}
	}
	before, err := db.DenialVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = db.InTx(ctx, func(tx *Tx) error {
		if err := tx.CreateFanout(ctx, &Fanout{ID: id, Kind: "rbac_edit"}, items); err != nil {
			return err
		}
		return tx.AddDenials(ctx, ds)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.FanoutItems(ctx, id)
	if err != nil || len(got) != n {
		t.Fatalf("items %d, %v; want %d", len(got), err, n)
	}
	// Its pages, walked to the end, are the whole list in the same order.
	var paged []FanoutItem
	for off := 0; ; off += 333 {
		page, err := db.FanoutItemsPage(ctx, id, 333, off)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
	}
	if len(paged) != n {
		t.Fatalf("pages hold %d items; want %d", len(paged), n)
	}
	for i := range paged {
		if paged[i].UserID != got[i].UserID {
			t.Fatalf("item %d: paged %s, listed %s", i, paged[i].UserID, got[i].UserID)
		}
	}
	dd, err := db.FanoutDenials(ctx, id)
	if err != nil || len(dd) != n || dd[n-1].UserID == "" || !dd[0].SettledAt.IsZero() {
		t.Fatalf("denials %d, %v", len(dd), err)
	}
	after, _ := db.DenialVersion(ctx)
	if after <= before || (os.Getenv("PERMSYNC_TEST_DATABASE_URL") == "" && after != before+1) {
		t.Fatalf("denial version %d → %d; want one bump", before, after)
	}
}
