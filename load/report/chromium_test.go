package report_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// probe is injected into a copy of a report page (the report itself has
// no script) so --dump-dom tells where each chart, the body and the first
// two letters of the title are drawn.
const probe = `<script>window.addEventListener('load',function(){
var out={charts:[],letters:[]};
function r(b){return [Math.round(b.left),Math.round(b.top),Math.round(b.width),Math.round(b.height)];}
document.querySelectorAll('svg.chart,img.chart').forEach(function(e){out.charts.push(r(e.getBoundingClientRect()));});
out.body=r(document.body.getBoundingClientRect());
var t=document.querySelector('h1').firstChild;for(var i=0;i<2;i++){var g=document.createRange();g.setStart(t,i);g.setEnd(t,i+1);out.letters.push(r(g.getBoundingClientRect()));}
var d=document.createElement('pre');d.id='cdw-probe';d.textContent=JSON.stringify(out);document.body.appendChild(d);});</script>`

type layout struct {
	Charts  [][4]int
	Letters [][4]int
	Body    [4]int
}

var chromiumArgs = []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
	"--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0", "--hide-scrollbars", "--window-size=1000,7000"}

// checkRendered renders page (an HTML file whose images sit beside it) in
// headless Chromium and checks the screenshot: every chart has ink in
// several colours (not blank, not a broken-image icon) and the title's
// first two letters are different shapes — a missing font draws every
// letter as the same box. It returns the screenshot cropped to the body.
func checkRendered(t *testing.T, bin, page string, wantCharts int) image.Image {
	t.Helper()
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(html), "<script") {
		t.Fatal("the report must not need JavaScript")
	}
	dir := filepath.Dir(page)
	probed := filepath.Join(dir, "probe-"+filepath.Base(page))
	if err := os.WriteFile(probed, bytes.Replace(html, []byte("</body>"), []byte(probe+"</body>"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	dom := runChromium(t, bin, append(chromiumArgs, "--user-data-dir="+t.TempDir(), "--virtual-time-budget=3000", "--dump-dom", "file://"+probed))
	m := regexp.MustCompile(`<pre id="cdw-probe">([^<]*)</pre>`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("probe did not run:\n%.2000s", dom)
	}
	var l layout
	if err := json.Unmarshal([]byte(strings.ReplaceAll(m[1], "&quot;", `"`)), &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Charts) != wantCharts {
		t.Fatalf("%s: %d charts laid out, want %d", filepath.Base(page), len(l.Charts), wantCharts)
	}
	shotFile := filepath.Join(dir, "shot-"+strings.TrimSuffix(filepath.Base(page), ".html")+".png")
	runChromium(t, bin, append(chromiumArgs, "--user-data-dir="+t.TempDir(), "--virtual-time-budget=3000", "--screenshot="+shotFile, "file://"+page))
	f, err := os.Open(shotFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	shot, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decoding screenshot: %v", err)
	}
	for i, c := range l.Charts {
		if c[2] < 300 || c[3] < 100 {
			t.Errorf("chart %d rendered at %dx%d", i+1, c[2], c[3])
			continue
		}
		ink, colours := inkAndColours(shot, image.Rect(c[0], c[1], c[0]+c[2], c[1]+c[3]))
		if ink < 0.01 || colours < 3 {
			t.Errorf("chart %d at %v looks blank: %.1f%% ink, %d colours", i+1, c, ink*100, colours)
		}
	}
	a, b := l.Letters[0], l.Letters[1]
	if differ := lettersDiffer(shot, image.Rect(a[0], a[1], a[0]+a[2], a[1]+a[3]), image.Rect(b[0], b[1], b[0]+b[2], b[1]+b[3])); !differ {
		t.Errorf("the title's first two letters render identically: the page's script has no font (boxes)")
	}
	body := image.Rect(l.Body[0], 0, l.Body[0]+l.Body[2], l.Body[1]+l.Body[3]+16).Intersect(shot.Bounds())
	return shot.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(body)
}

func gray(c color.Color) int {
	r, g, b, _ := c.RGBA()
	return int((r + g + b) / 3 >> 8)
}

// inkAndColours gives the share of non-white pixels in r and how many
// distinct colours (coarsely binned) cover at least 0.2% of it.
func inkAndColours(img image.Image, r image.Rectangle) (float64, int) {
	r = r.Intersect(img.Bounds())
	ink, n := 0, 0
	bins := map[[3]uint32]int{}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := img.At(x, y)
			n++
			if gray(c) < 235 {
				ink++
			}
			cr, cg, cb, _ := c.RGBA()
			bins[[3]uint32{cr >> 13, cg >> 13, cb >> 13}]++
		}
	}
	if n == 0 {
		return 0, 0
	}
	colours := 0
	for _, k := range bins {
		if float64(k) >= 0.002*float64(n) {
			colours++
		}
	}
	return float64(ink) / float64(n), colours
}

// lettersDiffer compares two glyph boxes pixel by pixel (aligned at their
// top-left corners): both must have ink, and differ in at least 10% of it.
func lettersDiffer(img image.Image, a, b image.Rectangle) bool {
	w, h := min(a.Dx(), b.Dx()), min(a.Dy(), b.Dy())
	inkA, inkB, diff := 0, 0, 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			pa, pb := gray(img.At(a.Min.X+x, a.Min.Y+y)) < 160, gray(img.At(b.Min.X+x, b.Min.Y+y)) < 160
			if pa {
				inkA++
			}
			if pb {
				inkB++
			}
			if pa != pb {
				diff++
			}
		}
	}
	return inkA > 0 && inkB > 0 && float64(diff) >= 0.1*float64(max(inkA, inkB))
}

// keepScreenshot writes a rendered report where README.md shows it, when
// CDW_REPORT_SCREENSHOTS names that folder (go test ./load/report -run
// TestMailThroughMailpit with CDW_REPORT_SCREENSHOTS=$PWD/load/report/doc).
func keepScreenshot(t *testing.T, img image.Image, name string) {
	dir := os.Getenv("CDW_REPORT_SCREENSHOTS")
	if dir == "" {
		return
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
