package schedule

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/pipelines"
)

// TestMetricsReplicationSlotWAL: an extract that read from a replication
// slot shows the WAL the slot held and its limit on /metrics; other
// extracts add no series.
func TestMetricsReplicationSlotWAL(t *testing.T) {
	m := newMetrics(&pipelines.Config{Warehouse: t.TempDir()}, time.Now)
	m.slot(extract.Result{Source: "shop", Entity: "orders", Slot: "cdw_shop_orders", SlotWAL: 3 << 30, SlotWALMax: 1 << 30})
	m.slot(extract.Result{Source: "crm", Entity: "contacts"})
	srv := httptest.NewServer(m.handler(func() (int, any) { return 200, nil }, http.NotFoundHandler()))
	defer srv.Close()
	samples := scrape(t, srv.URL)
	if v, n := sum(samples, "cdw_replication_slot_wal_bytes", map[string]string{"source": "shop", "entity": "orders", "slot": "cdw_shop_orders"}); n != 1 || v != 3<<30 {
		t.Fatalf("cdw_replication_slot_wal_bytes: %v in %d series, want 3 GiB in 1", v, n)
	}
	if v, n := sum(samples, "cdw_replication_slot_max_wal_bytes", nil); n != 1 || v != 1<<30 {
		t.Fatalf("cdw_replication_slot_max_wal_bytes: %v in %d series, want 1 GiB in 1", v, n)
	}
	if _, n := sum(samples, "cdw_replication_slot_wal_bytes", map[string]string{"source": "crm"}); n != 0 {
		t.Fatal("a source without a slot has a slot series")
	}
}
