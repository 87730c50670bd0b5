package postgres

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/cdwhq/cdw/extract"
	"github.com/cdwhq/cdw/internal/pgtest"
)

// cdcChildEnv makes TestMain extract erp.tickets once (the cdc crash test's
// child), with the failpoint of CDW_FAILPOINT armed.
const cdcChildEnv = "CDW_PG_CDC_CHILD"

func cdcChild() int {
	src, err := openSourceErr("erp", os.Getenv(crashYAMLEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cdc child:", err)
		return 2
	}
	x := &extract.Extractor{Dir: os.Getenv(crashDirEnv), BatchRows: 50}
	if _, err := x.Extract(context.Background(), "erp", src, "tickets", false); err != nil {
		fmt.Fprintln(os.Stderr, "cdc child:", err)
		return 1
	}
	return 0
}

// cdcChanges makes 513 row versions in 33 transactions: one of 300
// updates (it spans chunks of 50), 20 single updates, 10 deletes in one,
// 20 single inserts and one of 163 inserts. Every version has its own
// (ticket, status, op), so a duplicate shows.
func cdcChanges(t *testing.T, db *pgtest.DB) int64 {
	db.Exec(t, "UPDATE support_tickets SET status = 'a' || id, updated_at = updated_at + interval '1 day' WHERE id <= 300")
	for k := 1; k <= 20; k++ {
		db.Exec(t, fmt.Sprintf("UPDATE support_tickets SET status = 's%d', updated_at = updated_at + interval '2 days' WHERE id = %d", k, 300+k))
	}
	db.Exec(t, "DELETE FROM support_tickets WHERE id BETWEEN 381 AND 390")
	for k := 1; k <= 20; k++ {
		insertTickets(t, db, 1000+k, 1000+k)
	}
	insertTickets(t, db, 2001, 2163)
	return 300 + 20 + 10 + 20 + 163
}

// TestCDCCrashAtEveryFailpoint kills a cdc extract with SIGKILL at each
// failpoint of the initial load, the stream and the runner, reruns it, and
// checks that raw holds every committed version exactly once, that its
// latest versions are the table, and that the slot was never confirmed
// beyond the committed position.
func TestCDCCrashAtEveryFailpoint(t *testing.T) {
	for _, fp := range []string{
		"postgres.cdc.slot-created",
		"postgres.cdc.mid-transaction:1",
		"postgres.cdc.before-confirm:1",
		"postgres.cdc.after-confirm:1",
		"extract.mid-write:3",
		"extract.before-commit:2",
		"extract.after-commit:1",
	} {
		t.Run(strings.NewReplacer(".", "_", ":", "_").Replace(fp), func(t *testing.T) {
			db := pgtest.NewDB(t)
			db.Exec(t, cdcDDL)
			insertTickets(t, db, 1, 400)
			dir := t.TempDir()
			yaml := sourceYAML(db, "checkpoint_rows: 100\n", cdcEntity)
			src := openSource(t, "erp", yaml)
			initial := fp == "postgres.cdc.slot-created"
			var changes int64
			if !initial {
				extractOnce(t, dir, "erp", src, "tickets", false)
				changes = cdcChanges(t, db)
			}

			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), cdcChildEnv+"=1", crashDirEnv+"="+dir, crashYAMLEnv+"="+yaml, "CDW_FAILPOINT="+fp)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child was not killed at %s: %v\n%s", fp, err, stderr.String())
			}
			committed := ""
			if p := statePosition(t, dir, "erp", "tickets"); p != nil {
				committed = p.LSN
			}
			if slot := slotState(t, db, "cdw_erp_tickets"); slot != "" && committed != "" && lsnAfter(slot, committed) {
				t.Fatalf("slot confirmed up to %s, beyond the committed %s", slot, committed)
			}

			if initial {
				extractOnce(t, dir, "erp", src, "tickets", false) // the load, again
				changes = cdcChanges(t, db)
			}
			extractOnce(t, dir, "erp", src, "tickets", false)
			d := rawDB(t, dir, "erp", "tickets")
			var snap, versions, distinct int64
			err = d.QueryRow(`SELECT count(*) FILTER (WHERE _cdw_op IS NULL), count(*) FILTER (WHERE _cdw_op IS NOT NULL),
				count(DISTINCT (ticket_id, status, _cdw_op)) FILTER (WHERE _cdw_op IS NOT NULL) FROM raw`).Scan(&snap, &versions, &distinct)
			if err != nil {
				t.Fatal(err)
			}
			if snap != 400 || versions != changes || distinct != changes {
				t.Fatalf("raw holds %d snapshot rows and %d streamed versions (%d distinct); want 400 and %d", snap, versions, distinct, changes)
			}
			rawMatchesTable(t, dir, db)
			if got, want := slotState(t, db, "cdw_erp_tickets"), statePosition(t, dir, "erp", "tickets").LSN; got != want {
				t.Fatalf("slot confirmed up to %s after the rerun, committed %s", got, want)
			}
		})
	}
}

// lsnAfter reports a > b for LSN text.
func lsnAfter(a, b string) bool {
	var ah, al, bh, bl uint64
	fmt.Sscanf(a, "%X/%X", &ah, &al)
	fmt.Sscanf(b, "%X/%X", &bh, &bl)
	return ah<<32|al > bh<<32|bl
}
