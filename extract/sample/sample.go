// Package sample generates realistic, deterministic source data for the demo,
// tests and benchmarks: customers who buy at their own rate and eventually
// drop out (the BG/NBD story), skewed spend, seasonality, several business
// units and channels, service tickets, and contacts duplicated across a CRM
// export and web sign-ups with messy e-mail and phone formats.
package sample

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Options size the generated data.
type Options struct {
	Customers int
	Years     int       // history length
	End       time.Time // last day of data; fixed by default so output is reproducible
	Seed      uint64
	// BadRows adds this many malformed order rows, to show quarantine at work.
	BadRows int
}

// DefaultEnd is the fixed end of the demo data.
var DefaultEnd = time.Date(2026, 9, 30, 0, 0, 0, 0, time.UTC)

// Files are the generated files' paths.
type Files struct {
	Orders, Tickets, CRMContacts, WebSignups string
	OrderLines, TicketRows, ContactRows      int
}

var (
	units     = []string{"North", "South", "Online"}
	unitW     = []float64{0.4, 0.35, 0.25}
	channels  = map[string][]string{"North": {"distributor", "dealer", "direct"}, "South": {"agent", "store", "direct"}, "Online": {"online"}}
	prodCats  = []string{"Appliances", "Electronics", "Furniture", "Garden", "Kitchen", "Service plans"}
	priceBase = []float64{420, 260, 180, 60, 35, 90}
	// monthWeight shapes seasonality: a Q4 peak and a February dip.
	monthWeight = []float64{0.85, 0.7, 0.9, 0.95, 1.0, 0.95, 0.9, 0.95, 1.0, 1.1, 1.35, 1.6}
	firstNames  = []string{"Anna", "Ben", "Chen", "Dana", "Emil", "Fatima", "Greta", "Hugo", "Ines", "Jon", "Kai", "Lena", "Ming", "Nora", "Omar", "Pia", "Quinn", "Rosa", "Sven", "Tara", "Wei", "Yara"}
	lastNames   = []string{"Schmidt", "Li", "Garcia", "Novak", "Smith", "Wang", "Kowalski", "Rossi", "Jensen", "Khan", "Müller", "Zhang", "Silva", "Dubois"}
)

type customer struct {
	id, unit, channel, ctype, first, last, company, email, phone string
	since                                                        time.Time
	rate, dropout, spend                                         float64
}

// Write generates the files into dir.
func Write(dir string, o Options) (Files, error) {
	if o.Customers <= 0 {
		o.Customers = 3000
	}
	if o.Years <= 0 {
		o.Years = 3
	}
	if o.End.IsZero() {
		o.End = DefaultEnd
	}
	if o.Seed == 0 {
		o.Seed = 42
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("creating %s: %w", dir, err)
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	start := o.End.AddDate(-o.Years, 0, 0)
	f := Files{
		Orders:      filepath.Join(dir, "orders.csv"),
		Tickets:     filepath.Join(dir, "tickets.csv"),
		CRMContacts: filepath.Join(dir, "crm_contacts.csv"),
		WebSignups:  filepath.Join(dir, "web_signups.csv"),
	}
	ow, err := newCSV(f.Orders, "order_no", "line", "customer", "ordered_at", "status", "sku", "product", "category", "qty", "unit_price", "cost", "business_unit", "channel", "updated_at")
	if err != nil {
		return f, err
	}
	tw, err := newCSV(f.Tickets, "ticket_id", "customer", "created_at", "resolved_at", "status", "priority", "category", "csat", "business_unit", "updated_at")
	if err != nil {
		return f, err
	}
	cw, err := newCSV(f.CRMContacts, "contact_id", "customer_no", "name", "email", "phone", "company", "type", "business_unit", "channel", "country", "created", "last_contact", "updated")
	if err != nil {
		return f, err
	}
	ww, err := newCSV(f.WebSignups, "signup_id", "email", "mobile", "full_name", "signed_up_at")
	if err != nil {
		return f, err
	}
	orderNo := 100000
	ticketNo := 5000
	span := o.End.Sub(start).Hours() / 24
	for i := 1; i <= o.Customers; i++ {
		c := newCustomer(rng, i, start, span)
		// Purchases: a Poisson process at c.rate per day that stops for good
		// after each purchase with probability c.dropout.
		t := c.since
		alive := true
		orders := 0
		var lastOrder time.Time
		for alive && !t.After(o.End) {
			if orders > 0 || t.After(c.since) {
				if !seasonalAccept(rng, t) {
					t = t.Add(time.Duration(rng.ExpFloat64()/c.rate*24) * time.Hour)
					continue
				}
			}
			orderNo++
			orders++
			lastOrder = t
			lines := 1 + rng.IntN(3)
			status := "completed"
			switch r := rng.Float64(); {
			case r < 0.03:
				status = "cancelled"
			case r < 0.05:
				status = "returned"
			}
			for l := 1; l <= lines; l++ {
				cat := rng.IntN(len(prodCats))
				sku := fmt.Sprintf("SKU-%d%02d", cat+1, rng.IntN(12))
				price := math.Round(priceBase[cat]*(0.6+0.8*rng.Float64())*c.spend*100) / 100
				qty := 1 + rng.IntN(3)
				if c.ctype == "business" {
					qty += rng.IntN(8)
				}
				cost := math.Round(price*float64(qty)*(0.55+0.2*rng.Float64())*100) / 100
				ts := t.Add(time.Duration(rng.IntN(10*3600)+8*3600) * time.Second)
				upd := ts.Add(time.Duration(rng.IntN(72)) * time.Hour)
				ow.Write([]string{strconv.Itoa(orderNo), strconv.Itoa(l), c.id, ts.Format("2006-01-02 15:04:05"), status, sku,
					prodCats[cat] + " item " + sku[4:], prodCats[cat], strconv.Itoa(qty), strconv.FormatFloat(price, 'f', 2, 64),
					strconv.FormatFloat(cost, 'f', 2, 64), c.unit, c.channel, upd.Format(time.RFC3339)})
				f.OrderLines++
			}
			// Service tickets follow some orders.
			if rng.Float64() < 0.18 {
				ticketNo++
				f.TicketRows++
				writeTicket(tw, rng, ticketNo, c, t, o.End)
			}
			if rng.Float64() < c.dropout {
				alive = false
			}
			t = t.Add(time.Duration((rng.ExpFloat64()/c.rate)*24*float64(time.Hour)) + 24*time.Hour)
		}
		_ = lastOrder
		// Contacts: every customer is in the CRM export; about a third also
		// signed up on the web with differently formatted e-mail and phone.
		created := c.since.Add(-time.Duration(rng.IntN(30*24)) * time.Hour)
		lastContact := ""
		if rng.Float64() < 0.7 {
			lc := c.since.Add(time.Duration(rng.Float64()*o.End.Sub(c.since).Hours()) * time.Hour)
			lastContact = lc.Format("2006-01-02")
		}
		cw.Write([]string{fmt.Sprintf("CRM-%05d", i), c.id, c.first + " " + c.last, c.email, c.phone, c.company, c.ctype,
			c.unit, c.channel, "DE", created.Format("2006-01-02"), lastContact, created.Format(time.RFC3339)})
		f.ContactRows++
		if rng.Float64() < 0.35 {
			email := "  " + upperFirst(c.email) + " "
			phone := "+49 (" + c.phone[1:4] + ") " + c.phone[4:]
			ww.Write([]string{fmt.Sprintf("W%06d", i), email, phone, c.first + " " + c.last, c.since.Add(-48 * time.Hour).Format(time.RFC3339)})
			f.ContactRows++
		}
	}
	// Malformed rows: the demo shows them land in quarantine with their line.
	for b := 0; b < o.BadRows; b++ {
		if b%2 == 0 {
			ow.Write([]string{"999999", "1", "C00001", "31/31/2026", "completed", "SKU-101", "x", "Garden", "1", "9.99", "5", "North", "direct", "2026-01-01T00:00:00Z"})
		} else {
			ow.Write([]string{"999998", "1", "C00002", "2026-01-05 10:00:00", "completed", "SKU-101", "x", "Garden", "two", "9.99", "5", "North", "direct", "2026-01-05T10:00:00Z"})
		}
	}
	for _, w := range []*csvFile{ow, tw, cw, ww} {
		if err := w.Close(); err != nil {
			return f, err
		}
	}
	return f, nil
}

func newCustomer(rng *rand.Rand, i int, start time.Time, spanDays float64) customer {
	c := customer{id: fmt.Sprintf("C%05d", i)}
	c.unit = pick(rng, units, unitW)
	ch := channels[c.unit]
	c.channel = ch[rng.IntN(len(ch))]
	c.ctype = "consumer"
	if rng.Float64() < 0.3 && c.unit != "Online" {
		c.ctype = "business"
	}
	c.first = firstNames[rng.IntN(len(firstNames))]
	c.last = lastNames[rng.IntN(len(lastNames))]
	if c.ctype == "business" {
		c.company = c.last + " " + []string{"GmbH", "AG", "Ltd", "KG"}[rng.IntN(4)]
	}
	c.email = fmt.Sprintf("%s.%s%d@example.com", lower(c.first), lower(c.last), i)
	c.phone = fmt.Sprintf("0%03d%07d", 150+rng.IntN(30), rng.IntN(10_000_000))
	// Acquisition skews later: the business grows.
	c.since = start.Add(time.Duration(math.Sqrt(rng.Float64())*spanDays*0.97*24) * time.Hour).Truncate(24 * time.Hour)
	// Heterogeneous purchase rates (gamma) and dropout (beta-ish), as in BG/NBD.
	c.rate = gamma(rng, 0.9, 1.0/45) // mean ≈ one order every 50 days
	if c.ctype == "business" {
		c.rate *= 1.8
	}
	c.dropout = math.Min(0.9, math.Pow(rng.Float64(), 2.2)*0.6+0.02)
	c.spend = gamma(rng, 4, 0.25)
	return c
}

func writeTicket(w *csvFile, rng *rand.Rand, id int, c customer, at, end time.Time) {
	created := at.Add(time.Duration(24+rng.IntN(24*20)) * time.Hour)
	if created.After(end) {
		created = end.Add(-time.Duration(rng.IntN(48)) * time.Hour)
	}
	cat := pick(rng, []string{"question", "repair", "complaint", "return", "installation"}, []float64{0.35, 0.25, 0.18, 0.12, 0.1})
	prio := pick(rng, []string{"low", "normal", "high", "urgent"}, []float64{0.25, 0.5, 0.18, 0.07})
	resolved, status, csat := "", "open", ""
	if rng.Float64() < 0.9 || end.Sub(created) > 60*24*time.Hour {
		hours := rng.ExpFloat64() * 40
		if prio == "urgent" {
			hours /= 3
		}
		r := created.Add(time.Duration(hours*float64(time.Hour)) + time.Hour)
		if r.Before(end) {
			resolved, status = r.Format(time.RFC3339), "resolved"
			score := 5 - rng.IntN(3)
			if cat == "complaint" {
				score = 1 + rng.IntN(4)
			}
			if rng.Float64() < 0.75 {
				csat = strconv.Itoa(score)
			}
		}
	}
	upd := created
	if resolved != "" {
		upd, _ = time.Parse(time.RFC3339, resolved)
	}
	w.Write([]string{fmt.Sprintf("T%06d", id), c.id, created.Format(time.RFC3339), resolved, status, prio, cat, csat, c.unit, upd.Format(time.RFC3339)})
}

func seasonalAccept(rng *rand.Rand, t time.Time) bool {
	return rng.Float64()*1.6 < monthWeight[t.Month()-1]
}

func pick(rng *rand.Rand, items []string, weights []float64) string {
	r := rng.Float64()
	for i, w := range weights {
		if r < w {
			return items[i]
		}
		r -= w
	}
	return items[len(items)-1]
}

// gamma draws from Gamma(shape, scale) (Marsaglia–Tsang).
func gamma(rng *rand.Rand, shape, scale float64) float64 {
	if shape < 1 {
		return gamma(rng, shape+1, scale) * math.Pow(rng.Float64(), 1/shape)
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if math.Log(u) < 0.5*x*x+d-d*v+d*math.Log(v) {
			return d * v * scale
		}
	}
}

func lower(s string) string {
	b := []rune(s)
	for i, r := range b {
		if r >= 'A' && r <= 'Z' {
			b[i] = r + 32
		}
	}
	return string(b)
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-32) + s[1:]
}

// csvFile is a buffered CSV writer over a file.
type csvFile struct {
	f *os.File
	b *bufio.Writer
	w *csv.Writer
}

func newCSV(path string, header ...string) (*csvFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	b := bufio.NewWriterSize(f, 1<<20)
	c := &csvFile{f: f, b: b, w: csv.NewWriter(b)}
	c.Write(header)
	return c, nil
}

func (c *csvFile) Write(rec []string) { c.w.Write(rec) }

func (c *csvFile) Close() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		c.f.Close()
		return fmt.Errorf("writing %s: %w", c.f.Name(), err)
	}
	if err := c.b.Flush(); err != nil {
		c.f.Close()
		return fmt.Errorf("writing %s: %w", c.f.Name(), err)
	}
	return c.f.Close()
}
