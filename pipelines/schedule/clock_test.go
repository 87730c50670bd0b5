package schedule

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cdwhq/cdw/pipelines"
)

// fakeClock is a clock the test moves by hand: the scheduler's waits end
// only when the test fires them, so no test races the wall clock.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	added   chan struct{}
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, added: make(chan struct{}, 1000)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	select {
	case c.added <- struct{}{}:
	default:
	}
	return ch
}

// fireNext waits for the scheduler to wait, moves the clock to the earliest
// wait's end and ends that wait. It returns the new time.
func (c *fakeClock) fireNext(t *testing.T) time.Time {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		c.mu.Lock()
		if len(c.waiters) > 0 {
			sort.Slice(c.waiters, func(i, j int) bool { return c.waiters[i].at.Before(c.waiters[j].at) })
			w := c.waiters[0]
			c.waiters = c.waiters[1:]
			if w.at.After(c.now) {
				c.now = w.at
			}
			now := c.now
			c.mu.Unlock()
			w.ch <- now
			return now
		}
		c.mu.Unlock()
		select {
		case <-c.added:
		case <-deadline:
			t.Fatal("the scheduler did not wait for a next run within 2 minutes")
		}
	}
}

// idle waits until no run of pipeline name is going.
func idle(t *testing.T, s *Scheduler, name string) {
	t.Helper()
	waitFor(t, 2*time.Minute, "the run to end", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		st := s.state[name]
		return st != nil && !st.running
	})
}

// TestServeAcrossDST drives Serve with an injected clock over both 2027
// transitions in Europe/Berlin and America/New_York: a daily report in the
// affected hour runs exactly once on each transition day (issue #16 item
// 10), where robfig's CRON_TZ schedule skipped it or ran it twice.
func TestServeAcrossDST(t *testing.T) {
	cases := []struct {
		zone, spec, from, until string
		want                    []string
	}{
		{"Europe/Berlin", "30 2 * * *", "2027-03-27T12:00:00Z", "2027-03-29T12:00:00Z", []string{"2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"}},
		{"Europe/Berlin", "30 2 * * *", "2027-10-30T12:00:00Z", "2027-11-01T12:00:00Z", []string{"2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"}},
		{"America/New_York", "30 2 * * *", "2027-03-13T12:00:00Z", "2027-03-15T12:00:00Z", []string{"2027-03-14T07:00:00Z", "2027-03-15T06:30:00Z"}},
		{"America/New_York", "30 1 * * *", "2027-11-06T12:00:00Z", "2027-11-08T12:00:00Z", []string{"2027-11-07T05:30:00Z", "2027-11-08T06:30:00Z"}},
	}
	for _, c := range cases {
		t.Run(c.zone+" "+c.from[:10], func(t *testing.T) {
			loc, err := time.LoadLocation(c.zone)
			if err != nil {
				t.Fatal(err)
			}
			p := &Pipeline{Name: "report", Schedule: c.spec, Timezone: c.zone, Overlap: OverlapSkip, Retries: Retries{MaxAttempts: 1}}
			if p.sched, err = parseSchedule(p.Schedule, loc); err != nil {
				t.Fatal(err)
			}
			from, _ := time.Parse(time.RFC3339, c.from)
			until, _ := time.Parse(time.RFC3339, c.until)
			fc := newFakeClock(from)
			runs := make(chan time.Time, 10)
			s := &Scheduler{Cfg: &Config{Serve: ServeOptions{Listen: "off", ShutdownGrace: time.Second}, Pipelines: []*Pipeline{p}},
				Runner: &pipelines.Runner{Cfg: &pipelines.Config{Warehouse: t.TempDir()}}, clock: fc, Log: newHook(t, nil)}
			s.attempt = func(context.Context, *Pipeline, int) error {
				runs <- fc.Now()
				return nil
			}
			stop := serveInBackground(t, s)
			var got []string
			for fc.fireNext(t).Before(until) {
				select {
				case at := <-runs:
					got = append(got, at.UTC().Format(time.RFC3339))
				case <-time.After(2 * time.Minute):
					t.Fatal("a due run did not start within 2 minutes")
				}
				idle(t, s, p.Name)
			}
			stop()
			if len(got) != len(c.want) {
				t.Fatalf("runs %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("runs %v, want %v", got, c.want)
				}
			}
		})
	}
}
