// Package sample generates realistic, deterministic source data for the demo,
// tests and benchmarks: customers who buy at their own rate and eventually
// drop out (the BG/NBD story), skewed spend, seasonality, several business
// units and channels, service tickets, and contacts duplicated across a CRM
// export and web sign-ups with messy e-mail and phone formats.
//
// Generation streams: rows go to a Sink one at a time, so memory stays
// constant whatever the size. Write produces the demo's CSV files; the cdw gen
// command also loads PostgreSQL (LoadPostgres) and writes change sets
// (WriteDelta) for incremental benchmarks.
package sample

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// Options size the generated data.
type Options struct {
	Customers int
	// Orders, when > 0, is the target number of order lines: per-customer
	// purchase rates are scaled (and drop-out rates scaled down) so the total
	// lands within a few percent of it. 0 keeps the natural rates of the demo.
	Orders int
	Years  int       // history length
	End    time.Time // last day of data; fixed by default so output is reproducible
	Seed   uint64
	// BadRows adds this many malformed order rows, to show quarantine at work.
	BadRows int
	// Updates is the fraction of order lines that appear a second time later in
	// the export with a newer updated_at and a changed status, as exports of a
	// live shop system do; staging must keep only the latest version.
	Updates float64
	// TicketRate is the probability that an order is followed by a service
	// ticket; 0 means the demo's 0.18.
	TicketRate float64
}

// DefaultEnd is the fixed end of the demo data.
var DefaultEnd = time.Date(2026, 9, 30, 0, 0, 0, 0, time.UTC)

// Files are the generated files' paths.
type Files struct {
	Orders, Tickets, CRMContacts, WebSignups string
	OrderLines, TicketRows, ContactRows      int
}

// OrderLine is one product line of an order. Records passed to a Sink are
// reused by the generator: a sink must copy what it keeps.
type OrderLine struct {
	OrderNo              int64
	Line                 int
	Customer             string
	OrderedAt, UpdatedAt time.Time
	Status               string
	SKU, Product         string
	Category             string
	Qty                  int
	UnitPrice, Cost      float64
	Unit, Channel        string
}

// Ticket is one service ticket; Resolved is zero while open, CSAT 0 when not given.
type Ticket struct {
	No                          int64
	Customer                    string
	Created, Resolved, Updated  time.Time
	Status, Priority, Category  string
	CSAT                        int
	Unit, Channel, CustomerType string
	OrderNo                     int64
}

// Contact is a customer as the CRM export lists it; LastContact is zero when unknown.
type Contact struct {
	No                          int
	Customer                    string
	Name, Email, Phone, Company string
	Type, Unit, Channel         string
	Country                     string
	Created, LastContact        time.Time
}

// Signup is a web sign-up: the same person as a CRM contact, formatted differently.
type Signup struct {
	No                  int
	Email, Mobile, Name string
	SignedUp            time.Time
}

// Sink receives generated rows in order.
type Sink interface {
	Order(*OrderLine) error
	Ticket(*Ticket) error
	Contact(*Contact) error
	Signup(*Signup) error
}

// Counts says how many rows were generated.
type Counts struct {
	OrderLines, Tickets, Contacts, Signups int
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
	legalForms  = []string{"GmbH", "AG", "Ltd", "KG"}
	ticketCats  = []string{"question", "repair", "complaint", "return", "installation"}
	ticketCatW  = []float64{0.35, 0.25, 0.18, 0.12, 0.1}
	priorities  = []string{"low", "normal", "high", "urgent"}
	priorityW   = []float64{0.25, 0.5, 0.18, 0.07}

	// skus and products are precomputed: formatting them per line was the
	// generator's top cost in the profile.
	skus, products [][]string
)

func init() {
	skus = make([][]string, len(prodCats))
	products = make([][]string, len(prodCats))
	for c := range prodCats {
		for n := 0; n < 12; n++ {
			sku := fmt.Sprintf("SKU-%d%02d", c+1, n)
			skus[c] = append(skus[c], sku)
			products[c] = append(products[c], prodCats[c]+" item "+sku[4:])
		}
	}
}

type customer struct {
	id, unit, channel, ctype, first, last, company, email, phone string
	since                                                        time.Time
	rate, dropout, spend                                         float64
}

// Write generates the demo files (orders.csv, tickets.csv, crm_contacts.csv,
// web_signups.csv) into dir.
func Write(dir string, o Options) (Files, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("creating %s: %w", dir, err)
	}
	f := Files{
		Orders:      filepath.Join(dir, "orders.csv"),
		Tickets:     filepath.Join(dir, "tickets.csv"),
		CRMContacts: filepath.Join(dir, "crm_contacts.csv"),
		WebSignups:  filepath.Join(dir, "web_signups.csv"),
	}
	sink, err := newCSVSink(f)
	if err != nil {
		return f, err
	}
	n, err := Generate(o, sink)
	if err == nil {
		err = sink.badRows(o.BadRows)
		n.OrderLines += o.BadRows
	}
	if cerr := sink.Close(); err == nil {
		err = cerr
	}
	f.OrderLines, f.TicketRows, f.ContactRows = n.OrderLines, n.Tickets, n.Contacts+n.Signups
	return f, err
}

// withDefaults fills unset options.
func (o Options) withDefaults() Options {
	if o.Customers <= 0 {
		o.Customers = 3000
	}
	if o.Years <= 0 {
		o.Years = 3
	}
	if o.End.IsZero() {
		o.End = DefaultEnd
	}
	o.End = o.End.UTC()
	if o.Seed == 0 {
		o.Seed = 42
	}
	if o.TicketRate <= 0 {
		o.TicketRate = 0.18
	}
	return o
}

// Generate streams the rows for o into sink: per customer, their order lines
// (with any tickets right after the order they follow), then their CRM
// contact and, for about a third, a web sign-up.
func Generate(o Options, sink Sink) (Counts, error) {
	o = o.withDefaults()
	scale := 1.0
	if o.Orders > 0 {
		scale = calibrate(o)
	}
	g := newGen(o, scale)
	for i := 1; i <= o.Customers; i++ {
		if err := g.customer(i, sink); err != nil {
			return g.n, err
		}
	}
	return g.n, nil
}

// gen holds the generator's running state.
type gen struct {
	o                 Options
	rng               *rand.Rand
	start             time.Time
	span              float64
	scale             float64
	orderNo, ticketNo int64
	n                 Counts
	line              OrderLine
	ticket            Ticket
	contact           Contact
	signup            Signup
	updates           []OrderLine // lines to re-emit as changed at the end of the customer
}

func newGen(o Options, scale float64) *gen {
	start := o.End.AddDate(-o.Years, 0, 0)
	return &gen{
		o:        o,
		rng:      rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		start:    start,
		span:     o.End.Sub(start).Hours() / 24,
		scale:    scale,
		orderNo:  100000,
		ticketNo: 5000,
	}
}

// customer generates customer i and everything they did.
func (g *gen) customer(i int, sink Sink) error {
	rng, o := g.rng, g.o
	c := newCustomer(rng, i, g.start, g.span)
	if g.scale != 1 {
		c.rate *= g.scale
		c.dropout = math.Min(0.95, c.dropout/g.scale)
	}
	// Purchases: a Poisson process at c.rate per day that stops for good
	// after each purchase with probability c.dropout.
	t := c.since
	alive := true
	orders := 0
	g.updates = g.updates[:0]
	for alive && !t.After(o.End) {
		if orders > 0 || t.After(c.since) {
			if !seasonalAccept(rng, t) {
				t = after(t, rng.ExpFloat64()/c.rate*24*float64(time.Hour), true)
				continue
			}
		}
		g.orderNo++
		orders++
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
			sku := rng.IntN(12)
			price := math.Round(priceBase[cat]*(0.6+0.8*rng.Float64())*c.spend*100) / 100
			qty := 1 + rng.IntN(3)
			if c.ctype == "business" {
				qty += rng.IntN(8)
			}
			cost := math.Round(price*float64(qty)*(0.55+0.2*rng.Float64())*100) / 100
			ts := t.Add(time.Duration(rng.IntN(10*3600)+8*3600) * time.Second)
			upd := ts.Add(time.Duration(rng.IntN(72)) * time.Hour)
			g.line = OrderLine{OrderNo: g.orderNo, Line: l, Customer: c.id, OrderedAt: ts, UpdatedAt: upd, Status: status,
				SKU: skus[cat][sku], Product: products[cat][sku], Category: prodCats[cat], Qty: qty, UnitPrice: price, Cost: cost,
				Unit: c.unit, Channel: c.channel}
			if err := sink.Order(&g.line); err != nil {
				return err
			}
			g.n.OrderLines++
			// Updates are chosen by a hash, not the random stream, so the
			// option does not change the rest of the data.
			if g.o.Updates > 0 && unitHash(o.Seed, uint64(g.orderNo), uint64(l)) < g.o.Updates {
				u := g.line
				u.Status = "returned"
				u.UpdatedAt = u.UpdatedAt.Add(time.Duration(5+int(unitHash(o.Seed, uint64(g.orderNo))*40)) * 24 * time.Hour)
				g.updates = append(g.updates, u)
			}
		}
		// Service tickets follow some orders.
		if rng.Float64() < o.TicketRate {
			g.ticketNo++
			g.makeTicket(&c, t)
			if err := sink.Ticket(&g.ticket); err != nil {
				return err
			}
			g.n.Tickets++
		}
		if rng.Float64() < c.dropout {
			alive = false
		}
		t = after(t, (rng.ExpFloat64()/c.rate)*24*float64(time.Hour), false).Add(24 * time.Hour)
	}
	for k := range g.updates {
		if err := sink.Order(&g.updates[k]); err != nil {
			return err
		}
		g.n.OrderLines++
	}
	// Contacts: every customer is in the CRM export; about a third also
	// signed up on the web with differently formatted e-mail and phone.
	created := c.since.Add(-time.Duration(rng.IntN(30*24)) * time.Hour)
	var lastContact time.Time
	if rng.Float64() < 0.7 {
		lastContact = c.since.Add(time.Duration(rng.Float64()*o.End.Sub(c.since).Hours()) * time.Hour).Truncate(24 * time.Hour)
	}
	g.contact = Contact{No: i, Customer: c.id, Name: c.first + " " + c.last, Email: c.email, Phone: c.phone, Company: c.company,
		Type: c.ctype, Unit: c.unit, Channel: c.channel, Country: "DE", Created: created, LastContact: lastContact}
	if err := sink.Contact(&g.contact); err != nil {
		return err
	}
	g.n.Contacts++
	if rng.Float64() < 0.35 {
		g.signup = Signup{No: i, Email: "  " + upperFirst(c.email) + " ", Mobile: "+49 (" + c.phone[1:4] + ") " + c.phone[4:],
			Name: c.first + " " + c.last, SignedUp: c.since.Add(-48 * time.Hour)}
		if err := sink.Signup(&g.signup); err != nil {
			return err
		}
		g.n.Signups++
	}
	return nil
}

func newCustomer(rng *rand.Rand, i int, start time.Time, spanDays float64) customer {
	c := customer{id: customerID(i)}
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
		c.company = c.last + " " + legalForms[rng.IntN(4)]
	}
	c.email = lower(c.first) + "." + lower(c.last) + itoa(i) + "@example.com"
	c.phone = "0" + pad(150+rng.IntN(30), 3) + pad(rng.IntN(10_000_000), 7)
	// Acquisition skews later: the business grows.
	c.since = start.Add(time.Duration(math.Sqrt(rng.Float64())*spanDays*0.97*24) * time.Hour).Truncate(24 * time.Hour)
	// Heterogeneous purchase rates (gamma) and dropout (beta-ish), as in BG/NBD.
	// distuv.Gamma's Beta is the rate, 1/scale: a scale of 1/45.
	c.rate = distuv.Gamma{Alpha: 0.9, Beta: 45, Src: rng}.Rand() // mean ≈ one order every 50 days
	if c.ctype == "business" {
		c.rate *= 1.8
	}
	c.dropout = math.Min(0.9, math.Pow(rng.Float64(), 2.2)*0.6+0.02)
	c.spend = distuv.Gamma{Alpha: 4, Beta: 4, Src: rng}.Rand() // mean 1
	return c
}

// after adds a gap of ns nanoseconds to t. Tiny purchase rates give gaps
// beyond time.Duration's range: those mean "never again", so t jumps past
// any end instead of wrapping around into a bogus year. wholeHours truncates
// the gap to hours, as the rejection step always has.
func after(t time.Time, ns float64, wholeHours bool) time.Time {
	if ns > 100*365*24*float64(time.Hour) {
		return t.AddDate(100, 0, 0)
	}
	if wholeHours {
		return t.Add(time.Duration(ns/float64(time.Hour)) * time.Hour)
	}
	return t.Add(time.Duration(ns))
}

// customerID is "C" and the number, at least five digits.
func customerID(i int) string { return "C" + pad(i, 5) }

func (g *gen) makeTicket(c *customer, at time.Time) {
	rng, end := g.rng, g.o.End
	created := at.Add(time.Duration(24+rng.IntN(24*20)) * time.Hour)
	if created.After(end) {
		created = end.Add(-time.Duration(rng.IntN(48)) * time.Hour)
	}
	cat := pick(rng, ticketCats, ticketCatW)
	prio := pick(rng, priorities, priorityW)
	var resolved time.Time
	status, csat := "open", 0
	if rng.Float64() < 0.9 || end.Sub(created) > 60*24*time.Hour {
		hours := rng.ExpFloat64() * 40
		if prio == "urgent" {
			hours /= 3
		}
		r := created.Add(time.Duration(hours*float64(time.Hour)) + time.Hour)
		if r.Before(end) {
			resolved, status = r.Truncate(time.Second), "resolved"
			score := 5 - rng.IntN(3)
			if cat == "complaint" {
				score = 1 + rng.IntN(4)
			}
			if rng.Float64() < 0.75 {
				csat = score
			}
		}
	}
	upd := created
	if !resolved.IsZero() {
		upd = resolved
	}
	g.ticket = Ticket{No: g.ticketNo, Customer: c.id, Created: created, Resolved: resolved, Updated: upd, Status: status,
		Priority: prio, Category: cat, CSAT: csat, Unit: c.unit, Channel: c.channel, CustomerType: c.ctype, OrderNo: g.orderNo}
}

// calibrate finds the rate scale that makes o.Customers customers produce
// about o.Orders order lines, by bisection over a pilot sample simulated with
// a fixed seed (so the expected count is monotone in the scale).
func calibrate(o Options) float64 {
	pilot := min(o.Customers, 4000)
	want := float64(o.Orders) / float64(o.Customers) * float64(pilot)
	po := o
	po.Customers, po.Orders, po.Updates, po.Seed = pilot, 0, 0, o.Seed^0x5eed
	count := func(scale float64) float64 {
		g := newGen(po, scale)
		var c countSink
		for i := 1; i <= pilot; i++ {
			g.customer(i, &c)
		}
		return float64(c)
	}
	lo, hi := math.Log(0.02), math.Log(200.0)
	for it := 0; it < 30 && hi-lo > 0.002; it++ {
		mid := (lo + hi) / 2
		if count(math.Exp(mid)) < want {
			lo = mid
		} else {
			hi = mid
		}
	}
	// Updates add lines of their own: shrink the target for them.
	return math.Exp((lo+hi)/2) / (1 + o.Updates)
}

// countSink counts order lines and drops everything.
type countSink int

func (c *countSink) Order(*OrderLine) error { *c++; return nil }
func (c *countSink) Ticket(*Ticket) error   { return nil }
func (c *countSink) Contact(*Contact) error { return nil }
func (c *countSink) Signup(*Signup) error   { return nil }

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

// unitHash maps its inputs to [0, 1) (splitmix64): a per-row decision that
// does not consume the random stream.
func unitHash(xs ...uint64) float64 {
	var h uint64 = 0x9e3779b97f4a7c15
	for _, x := range xs {
		h ^= x
		h += 0x9e3779b97f4a7c15
		h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9
		h = (h ^ (h >> 27)) * 0x94d049bb133111eb
		h ^= h >> 31
	}
	return float64(h>>11) / (1 << 53)
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

func itoa(i int) string { return strconv.Itoa(i) }

// pad formats a non-negative i with at least width digits.
func pad(i, width int) string {
	s := strconv.Itoa(i)
	for len(s) < width {
		s = "0" + s
	}
	return s
}
