package docs_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cdwhq/cdw/transform"
	"github.com/cdwhq/cdw/transform/docs"
)

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	os.Exit(m.Run())
}

// jaffle builds transform/testdata/jaffle (a dbt project: seeds, staging
// views, marts, schema.yml tests, one of them failing with severity warn)
// and runs its tests, so the warehouse has column types and results.
func jaffle(t *testing.T) (*transform.Project, *sql.DB) {
	t.Helper()
	t.Setenv("JAFFLE_REGION", "us") // read when the project loads, as dbt reads env_var at parse
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "testdata", "jaffle"))); err != nil {
		t.Fatal(err)
	}
	proj, err := transform.LoadDBTProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := transform.Load(context.Background(), proj.Roots(), transform.LoadOptions{Vars: proj.Vars, NoBuiltins: true})
	if err != nil {
		t.Fatal(err)
	}
	db, err := transform.Open(filepath.Join(t.TempDir(), "warehouse.duckdb"), transform.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	res, err := (&transform.Runner{DB: db, Vars: proj.Vars}).Run(context.Background(), "r1", p.Models)
	if err != nil || res.Err() != nil {
		t.Fatal(err, res.Err())
	}
	if _, err := (&transform.TestRunner{DB: db}).Run(context.Background(), "r1", p.TestsFor(p.Models)); err != nil {
		t.Fatal(err)
	}
	return p, db
}

// TestSiteHasEveryModel: a page per model with its SQL as written and as
// rendered, its columns with the warehouse's types and schema.yml's
// descriptions, its tests with their last result, and the lineage graph
// with a box per model linking to its page.
func TestSiteHasEveryModel(t *testing.T) {
	p, db := jaffle(t)
	site, err := docs.Collect(context.Background(), p, db, time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := site.Write(out); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	index := read("index.html")
	for _, m := range p.Models {
		if !strings.Contains(index, `data-node="`+m.Name+`" href="models/`+m.Name+`.html"`) {
			t.Errorf("the lineage graph has no box linking to %s", m.Name)
		}
		page := read("models/" + m.Name + ".html")
		if !strings.Contains(page, "<h1>"+m.Name+" ") {
			t.Errorf("%s: no title", m.Name)
		}
	}
	for _, bad := range []string{"http://", "https://", "<script src", "@import"} {
		if strings.Contains(strings.ReplaceAll(index, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("index.html fetches from elsewhere (%s): the site must work offline", bad)
		}
	}
	// Edges run from what a model reads to the model.
	if !strings.Contains(index, `data-from="stg_orders" data-to="orders"`) || !strings.Contains(index, `data-from="raw_orders" data-to="stg_orders"`) {
		t.Error("the lineage graph lacks the edges raw_orders → stg_orders → orders")
	}

	customers := read("models/customers.html")
	for _, want := range []string{
		"One row per customer, with their order history.",                                                                   // schema.yml
		"<tr><td><code>customer_id</code></td><td><code>BIGINT</code></td><td>The customer&#39;s id in the shop.</td></tr>", // type + description
		"customers: unique(customer_id)</td><td>error</td><td><span class=\"status-pass\">pass</span>",
		"{{ ref(&#39;orders&#39;) }}", // as written
		`href="../models/orders.html">orders</a>`,
	} {
		if !strings.Contains(customers, want) {
			t.Errorf("customers.html lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`(?s)<pre class="sql" id="compiled"><code>(.*?)</code>`).FindStringSubmatch(customers); m == nil ||
		strings.Contains(m[1], "{{") || !strings.Contains(m[1], `orders`) {
		t.Errorf("customers.html: the rendered SQL is missing or still templated: %v", m)
	}
	payments := read("models/stg_payments.html")
	if !strings.Contains(payments, `<span class="status-warn">warn</span>`) {
		t.Error("stg_payments.html does not show its accepted_values test's last result (warn: a bitcoin payment)")
	}
	if !strings.Contains(read("models/raw_payments.html"), "Payments as the payment provider exports them") {
		t.Error("a seed's description is missing")
	}
}

// TestSiteWithoutWarehouse documents a project never built: no types, tests
// "not run", and still every page.
func TestSiteWithoutWarehouse(t *testing.T) {
	root := transform.Root{Name: "models", FS: os.DirFS(t.TempDir())}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.sql"), []byte("-- tests: not_null(x)\n-- column: x: the x\nSELECT x FROM raw.orders"), 0o644)
	root.FS = os.DirFS(dir)
	p, err := transform.Load(context.Background(), []transform.Root{root}, transform.LoadOptions{Raw: []string{"raw.orders"}, NoBuiltins: true})
	if err != nil {
		t.Fatal(err)
	}
	site, err := docs.Collect(context.Background(), p, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := site.FS()
	if err != nil {
		t.Fatal(err)
	}
	src, err := fsReadString(fsys, "sources/raw.orders.html")
	if err != nil || !strings.Contains(src, `href="../models/a.html">a</a>`) {
		t.Fatalf("the raw relation's page lacks its reader: %v\n%s", err, src)
	}
	a, _ := fsReadString(fsys, "models/a.html")
	if !strings.Contains(a, `<span class="status-not run">not run</span>`) || !strings.Contains(a, "none on record") {
		t.Errorf("a.html, never built:\n%s", a)
	}
}

// TestLineageInChromium renders the site in headless Chromium: every box of
// the graph is laid out with a size, none overlaps another, the screenshot
// of the graph is not blank; then a click on a box opens the model's page.
func TestLineageInChromium(t *testing.T) {
	bin := chromium(t)
	p, db := jaffle(t)
	site, err := docs.Collect(context.Background(), p, db, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := site.FS()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix("/docs", http.FileServerFS(fsys)))
	defer srv.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/docs/index.html"), chromedp.WaitVisible(chromedp.CSS(`svg.lineage`))); err != nil {
		t.Fatal(err)
	}
	boxes, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify([...document.querySelectorAll('svg.lineage a.node')].map(a => {
		const r = a.getBoundingClientRect(); return {n: a.dataset.node, x: r.x, y: r.y, w: r.width, h: r.height}; }))`))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(`#lineage`)))
	if err != nil {
		t.Fatal(err)
	}
	var laid []struct {
		N          string
		X, Y, W, H float64
	}
	if err := json.Unmarshal([]byte(boxes), &laid); err != nil {
		t.Fatal(err)
	}
	if len(laid) != len(p.Models) {
		t.Fatalf("%d boxes in the rendered graph, want %d", len(laid), len(p.Models))
	}
	for i, a := range laid {
		if a.W < 40 || a.H < 15 {
			t.Errorf("%s drawn at %vx%v", a.N, a.W, a.H)
		}
		for _, b := range laid[i+1:] {
			if a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
				t.Errorf("%s and %s overlap", a.N, b.N)
			}
		}
	}
	img, err := png.Decode(strings.NewReader(string(shot)))
	if err != nil {
		t.Fatal(err)
	}
	if ink, colours := inkAndColours(img); ink < 0.03 || colours < 4 {
		t.Errorf("the graph looks blank: %.1f%% ink, %d colours", ink*100, colours)
	}

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`svg.lineage a.node[data-node="customers"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#columns`))); err != nil {
		t.Fatal(err)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`h1`)))
	if err != nil {
		t.Fatal(err)
	}
	firstColumn, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#columns tbody tr td`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(loc, "/docs/models/customers.html") || !strings.HasPrefix(title, "customers") || firstColumn != "customer_id" {
		t.Errorf("after a click on customers: at %s, title %q, first column %q", loc, title, firstColumn)
	}
}

func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed (apt-get install chromium); this test needs it")
	return ""
}

// inkAndColours gives the share of non-white pixels and how many coarse
// colours cover at least 0.2% of the image.
func inkAndColours(img image.Image) (float64, int) {
	r := img.Bounds()
	ink, n := 0, 0
	bins := map[[3]uint32]int{}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			n++
			if (cr+cg+cb)/3>>8 < 235 {
				ink++
			}
			bins[[3]uint32{cr >> 13, cg >> 13, cb >> 13}]++
		}
	}
	colours := 0
	for _, k := range bins {
		if float64(k) >= 0.002*float64(n) {
			colours++
		}
	}
	return float64(ink) / float64(max(n, 1)), colours
}

func fsReadString(fsys fs.FS, name string) (string, error) {
	b, err := fs.ReadFile(fsys, name)
	return string(b), err
}
