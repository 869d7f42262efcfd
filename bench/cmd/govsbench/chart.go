//go:build linux

package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"strings"
)

// The chart is drawn with the standard library alone (and the 5x7 font
// below), so the harness needs no plotting package: one panel per figure,
// a horizontal bar per case (the median) with a whisker for min-max.

var (
	white  = color.RGBA{255, 255, 255, 255}
	black  = color.RGBA{0, 0, 0, 255}
	grey   = color.RGBA{200, 200, 200, 255}
	colors = map[string]color.RGBA{
		"direct":   {90, 90, 90, 255},
		"govs":     {31, 119, 180, 255},
		"nftables": {255, 127, 14, 255},
		"haproxy":  {44, 160, 44, 255},
		"proxy":    {148, 103, 189, 255},
	}
)

func caseColor(name string) color.RGBA {
	switch {
	case name == "direct":
		return colors["direct"]
	case name == "govs-proxy":
		return colors["proxy"]
	case strings.HasPrefix(name, "govs"):
		return colors["govs"]
	case name == "nftables":
		return colors["nftables"]
	case name == "haproxy":
		return colors["haproxy"]
	}
	return black
}

type panel struct {
	title string
	val   func(*summary) stat
	prec  int
}

func (res *results) chart() ([]byte, error) {
	panels := []panel{
		{"SHORT CONNECTIONS/S (CONNECTION: CLOSE)", func(s *summary) stat { return s.ShortCPS }, 0},
		{"KEEP-ALIVE REQUESTS/S", func(s *summary) stat { return s.KeepAliveRPS }, 0},
		{"TCP THROUGHPUT GBIT/S (IPERF3)", func(s *summary) stat { return s.Gbps }, 2},
		{"SHORT-CONNECTION LATENCY P99 MS", func(s *summary) stat { return s.P99ms }, 2},
	}
	const (
		scale   = 2
		rowH    = 22
		labelW  = 190
		barW    = 420
		valueW  = 150
		panelW  = labelW + barW + valueW
		padding = 14
	)
	n := len(res.Cases)
	panelH := 30 + n*rowH + 10
	cols := 2
	rows := (len(panels) + cols - 1) / cols
	W := cols*panelW + (cols+1)*padding
	H := 40 + rows*panelH + (rows+1)*padding
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	draw.Draw(img, img.Bounds(), &image.Uniform{white}, image.Point{}, draw.Src)
	drawText(img, padding, 12, scale, black, "GOVSBENCH "+strings.ToUpper(res.Mode)+" "+res.Date+"  MEDIAN, WHISKER MIN-MAX")
	for pi, p := range panels {
		x0 := padding + (pi%cols)*(panelW+padding)
		y0 := 40 + padding + (pi/cols)*(panelH+padding)
		drawText(img, x0, y0, scale, black, p.title)
		maxV := 0.0
		for _, c := range res.Cases {
			if c.Summary != nil {
				s := p.val(c.Summary)
				if !math.IsNaN(s.Max) {
					maxV = math.Max(maxV, s.Max)
				}
			}
		}
		if maxV == 0 {
			maxV = 1
		}
		bx := x0 + labelW
		fillRect(img, bx, y0+26, 1, n*rowH, grey)
		for i, c := range res.Cases {
			y := y0 + 30 + i*rowH
			drawText(img, x0, y+3, scale, black, strings.ToUpper(c.Name))
			if c.Summary == nil {
				msg := "NOT YET AVAILABLE"
				if c.Status != errNotAvailable.Error() {
					msg = "FAILED"
				}
				drawText(img, bx+6, y+3, scale, grey, msg)
				continue
			}
			s := p.val(c.Summary)
			if math.IsNaN(s.Median) {
				continue
			}
			w := int(s.Median / maxV * barW)
			fillRect(img, bx, y, w, rowH-6, caseColor(c.Name))
			lo, hi := int(s.Min/maxV*barW), int(s.Max/maxV*barW)
			mid := y + (rowH-6)/2
			fillRect(img, bx+lo, mid, hi-lo+1, 1, black)
			fillRect(img, bx+lo, mid-4, 1, 9, black)
			fillRect(img, bx+hi, mid-4, 1, 9, black)
			drawText(img, bx+barW+8, y+3, scale, black, trimFloat(s.Median, p.prec))
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode png: %w", err)
	}
	return buf.Bytes(), nil
}

func fillRect(img *image.RGBA, x, y, w, h int, c color.RGBA) {
	if w <= 0 || h <= 0 {
		return
	}
	draw.Draw(img, image.Rect(x, y, x+w, y+h), &image.Uniform{c}, image.Point{}, draw.Src)
}

// drawText draws s in the 5x7 font, each dot scale x scale pixels,
// upper-casing letters it has no lower case for.
func drawText(img *image.RGBA, x, y, scale int, c color.RGBA, s string) {
	for _, r := range strings.ToUpper(s) {
		g, ok := font5x7[r]
		if !ok {
			g = font5x7['?']
		}
		for row := range 7 {
			for col := range 5 {
				if g[row]&(0x10>>col) != 0 {
					fillRect(img, x+col*scale, y+row*scale, scale, scale, c)
				}
			}
		}
		x += 6 * scale
	}
}

// font5x7: each glyph is 7 rows, the 5 low bits of each row the dots,
// the most significant on the left.
var font5x7 = map[rune][7]uint8{
	' ': {0, 0, 0, 0, 0, 0, 0},
	'0': {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E},
	'1': {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E},
	'2': {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F},
	'3': {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E},
	'4': {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02},
	'5': {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E},
	'6': {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E},
	'7': {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},
	'8': {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E},
	'9': {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C},
	'A': {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11},
	'B': {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E},
	'C': {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E},
	'D': {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C},
	'E': {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F},
	'F': {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10},
	'G': {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F},
	'H': {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11},
	'I': {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E},
	'J': {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C},
	'K': {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11},
	'L': {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F},
	'M': {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11},
	'N': {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11},
	'O': {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},
	'P': {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10},
	'Q': {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D},
	'R': {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11},
	'S': {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E},
	'T': {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},
	'U': {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},
	'V': {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04},
	'W': {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A},
	'X': {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11},
	'Y': {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04},
	'Z': {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F},
	'.': {0, 0, 0, 0, 0, 0x0C, 0x0C},
	',': {0, 0, 0, 0, 0x0C, 0x04, 0x08},
	':': {0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0},
	'-': {0, 0, 0, 0x1F, 0, 0, 0},
	'+': {0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0},
	'/': {0, 0x01, 0x02, 0x04, 0x08, 0x10, 0},
	'%': {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03},
	'(': {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02},
	')': {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08},
	'_': {0, 0, 0, 0, 0, 0, 0x1F},
	'=': {0, 0, 0x1F, 0, 0x1F, 0, 0},
	'?': {0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04},
}
