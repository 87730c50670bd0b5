package backtest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cdwhq/cdw/backtest"
)

// TestBacktestIdentityAsOfCutoff: the customers a backtest scores are
// resolved from what was known at the cutoff. A CRM contact created after
// the cutoff that shares an e-mail with an older one (it links customer ids
// A and B) must not merge A and B in the marts as of the cutoff, and a
// customer id first seen after the cutoff is nobody yet.
func TestBacktestIdentityAsOfCutoff(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"orders.csv": "order_id,customer_id,order_ts,quantity,unit_price\n" +
			"1,A,2024-01-10 10:00:00,1,10\n2,B,2024-02-10 10:00:00,1,10\n3,C,2024-03-01 10:00:00,1,10\n" +
			"4,C,2024-07-15 10:00:00,1,10\n5,D,2024-07-18 10:00:00,1,10\n6,A,2024-07-20 10:00:00,1,10\n",
		"contacts.csv": "contact_id,customer_id,email,created_at,updated_at\n" +
			"k1,A,same@example.com,2024-01-01 09:00:00,2024-01-01 09:00:00\n" +
			"k2,B,same@example.com,2024-08-01 09:00:00,2024-08-01 09:00:00\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := extracted(t, fmt.Sprintf(`sources:
  - name: shop
    kind: files
    entities:
      orders:
        path: %[1]s/orders.csv
        columns: {order_id: order_id, customer_id: customer_id, order_ts: order_ts, quantity: quantity, unit_price: unit_price}
  - name: crm
    kind: files
    entities:
      contacts:
        path: %[1]s/contacts.csv
        columns: {contact_id: contact_id, customer_id: customer_id, email: email, created_at: created_at, updated_at: updated_at}
`, dir), nil)
	res, err := backtest.Run(context.Background(), r, backtest.Options{Cutoff: day("2024-06-30"), Horizon: 20, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	// A, B and C as three customers; A and C bought again, B did not.
	if res.Customers != 3 || res.Churned != 1 {
		t.Errorf("scored %d customers, %d churned; want A, B, C apart (3, 1 churned): the identity used data after the cutoff", res.Customers, res.Churned)
	}
}
