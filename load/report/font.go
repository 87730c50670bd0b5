package report

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/image/font/sfnt"
	"gonum.org/v1/plot/font/liberation"
)

// chartFont is what the PNG charts are drawn with (and labels measured
// with, for the SVG too): Liberation Sans (built into gonum/plot) or the
// configured font for Latin text, and a CJK font for the letters the first
// one lacks, so Chinese labels never come out as boxes.
type chartFont struct {
	Path  string // the CJK (or configured) font file; "" when there is none
	CJK   bool   // Chinese text can be drawn
	fonts []*sfnt.Font
}

// cjkFonts are where common systems keep a font with Simplified Chinese
// glyphs that Go's sfnt parser reads (Debian/Ubuntu fonts-noto-cjk and
// fonts-droid-fallback, Fedora, Arch, macOS, Windows), tried in order when
// report.font is not set. (WenQuanYi's .ttc files do not parse.)
var cjkFonts = []string{
	"/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
	"/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
	"/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
	"/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
	"/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
	"/usr/share/fonts/google-droid-sans-fonts/DroidSansFallbackFull.ttf",
	"/System/Library/Fonts/Hiragino Sans GB.ttc",
	"/Library/Fonts/Arial Unicode.ttf",
	`C:\Windows\Fonts\msyh.ttc`,
	`C:\Windows\Fonts\simhei.ttf`,
}

var (
	fontMu    sync.Mutex
	fontCache = map[string]*chartFont{}
)

const cjkProbe = "客户细分摘要一月"

// loadFont finds the chart fonts: Latin text in the configured font (when
// it has Latin letters) else Liberation Sans; Chinese in the configured
// font, else the first of cjkFonts that exists and parses. A Chinese
// report with no CJK font is an error: its labels would be boxes.
func loadFont(configured, lang string) (*chartFont, error) {
	fontMu.Lock()
	defer fontMu.Unlock()
	key := configured + "\x00" + lang
	if f, ok := fontCache[key]; ok {
		return f, nil
	}
	var latin *sfnt.Font
	for _, face := range liberation.Collection() {
		if face.Font.Typeface == "Liberation" && face.Font.Variant == "Sans" && face.Font.Weight == 0 && face.Font.Style == 0 {
			latin = face.Face
		}
	}
	if latin == nil {
		return nil, errors.New("rendering charts: the built-in Liberation Sans font is missing")
	}
	f := &chartFont{fonts: []*sfnt.Font{latin}}
	if configured != "" {
		otf, err := parseFont(configured)
		if err != nil {
			return nil, fmt.Errorf("reading report.font: %w", err)
		}
		f.Path = configured
		if covers(otf, "Customer 0123456789%") {
			f.fonts = []*sfnt.Font{otf, latin}
		} else {
			f.fonts = append(f.fonts, otf)
		}
	} else {
		for _, p := range cjkFonts {
			if _, err := os.Stat(p); err != nil {
				continue
			}
			if otf, err := parseFont(p); err == nil && covers(otf, cjkProbe) {
				f.Path = p
				f.fonts = append(f.fonts, otf)
				break
			}
		}
	}
	f.CJK = f.covers(cjkProbe)
	if lang == "zh-CN" && !f.CJK {
		if configured != "" {
			return nil, fmt.Errorf("rendering zh-CN charts: report.font %s has no Chinese glyphs", configured)
		}
		return nil, fmt.Errorf("rendering zh-CN charts: no font with Chinese glyphs found (looked for %s); install fonts-noto-cjk or fonts-droid-fallback, or set report.font to a .ttf/.otf/.ttc file",
			strings.Join(cjkFonts[:6], ", "))
	}
	fontCache[key] = f
	return f, nil
}

// parseFont reads a TrueType/OpenType font or the first font of a collection.
func parseFont(path string) (*sfnt.Font, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	coll, err := sfnt.ParseCollection(data)
	if err != nil {
		return nil, fmt.Errorf("parsing font %s: %w", path, err)
	}
	otf, err := coll.Font(0)
	if err != nil {
		return nil, fmt.Errorf("parsing font %s: %w", path, err)
	}
	return otf, nil
}

// covers reports whether otf has a glyph for every letter of s.
func covers(otf *sfnt.Font, s string) bool {
	var buf sfnt.Buffer
	for _, r := range s {
		if r == ' ' {
			continue
		}
		if g, err := otf.GlyphIndex(&buf, r); err != nil || g == 0 {
			return false
		}
	}
	return true
}

// covers reports whether one of the fonts has each letter of s.
func (f *chartFont) covers(s string) bool {
	for _, r := range s {
		if f.fontFor(r) < 0 {
			return false
		}
	}
	return true
}

// fontFor is the index of the first font with a glyph for r, -1 if none.
func (f *chartFont) fontFor(r rune) int {
	if r == ' ' {
		return 0
	}
	var buf sfnt.Buffer
	for i, otf := range f.fonts {
		if g, err := otf.GlyphIndex(&buf, r); err == nil && g != 0 {
			return i
		}
	}
	return -1
}

// run is a stretch of text drawn with one font.
type run struct {
	font int
	s    string
}

// runs splits s by the font that draws each letter; a letter no font has
// goes to the first font (which draws its "missing" box).
func (f *chartFont) runs(s string) []run {
	var out []run
	for _, r := range s {
		i := max(f.fontFor(r), 0)
		if n := len(out); n > 0 && out[n-1].font == i {
			out[n-1].s += string(r)
			continue
		}
		out = append(out, run{i, string(r)})
	}
	return out
}

// name says which fonts draw the charts, for the log.
func (f *chartFont) name() string {
	if f.Path == "" {
		return "Liberation Sans (built in; no CJK font found)"
	}
	return "Liberation Sans + " + f.Path
}
