package main

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// chartColors tell the series apart (Tableau 10, without its grey, which is the baseline's).
var chartColors = []color.Color{
	color.RGBA{0x4e, 0x79, 0xa7, 0xff}, color.RGBA{0xf2, 0x8e, 0x2b, 0xff}, color.RGBA{0xe1, 0x57, 0x59, 0xff},
	color.RGBA{0x76, 0xb7, 0xb2, 0xff}, color.RGBA{0x59, 0xa1, 0x4f, 0xff}, color.RGBA{0xed, 0xc9, 0x48, 0xff},
	color.RGBA{0xb0, 0x7a, 0xa1, 0xff}, color.RGBA{0xff, 0x9d, 0xa7, 0xff}, color.RGBA{0x9c, 0x75, 0x5f, 0xff},
	color.RGBA{0x1f, 0x3a, 0x5f, 0xff},
}

// chartCap is the highest ratio the chart draws: a taller bar (the readers of rw-readers-16 against
// an exclusive lock) is cut there and labelled with its value, so the other bars stay readable.
const chartCap = 3.0

// chart draws a grouped bar chart of the ops/s ratio to the baseline: one group per scenario, one
// bar per library, the baselines (raw for N=1, raw-quorum for N>1, raw-sem for sem-contend-4) as
// the grey bar at 1. Each bar is labelled with its value.
func (r *report) chart(path string) error {
	var names []string
	for _, s := range r.cfg.scenarios {
		if cells, _ := r.cells(s); len(cells) > 0 {
			names = append(names, s.name)
		}
	}
	// Series: every adapter that ran somewhere other than as its scenario's baseline, then the
	// baseline.
	var series []string
	for _, a := range adapters {
		for _, res := range r.results {
			if s, _ := scenarioByName(res.scenario); res.adapter == a.Name() && s.baseline != a.Name() {
				series = append(series, a.Name())
				break
			}
		}
	}
	series = append(series, "baseline")

	// values[k][i]: series k in scenario i; NaN when it did not run there.
	values := make([][]float64, len(series))
	ymax := 1.0
	for k, name := range series {
		values[k] = make([]float64, len(names))
		for i, sn := range names {
			values[k][i] = math.NaN()
			s, _ := scenarioByName(sn)
			cells, base := r.cells(s)
			for _, c := range cells {
				isBase := c.adapter == s.baseline
				switch {
				case isBase && name == "baseline":
					values[k][i] = 1
				case !isBase && c.adapter == name:
					if m, _, _, ok := c.ratio(base, figOps); ok {
						values[k][i] = m
					}
				}
			}
			if !math.IsNaN(values[k][i]) {
				ymax = max(ymax, min(values[k][i], chartCap))
			}
		}
	}

	p := plot.New()
	p.Title.Text = fmt.Sprintf("ops/s as a ratio to the baseline measured in the same rounds (raw for N=1, raw-quorum for N>1, raw-sem for sem-contend-4); bars cut at %g×", chartCap)
	p.Y.Label.Text = "ratio to baseline (1 = as fast)"
	p.X.Tick.Label.Rotation = math.Pi / 8
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.Legend.Top = true
	p.Add(plotter.NewGrid())

	// Size: a group of bars per scenario, 80% of a category wide, at least 0.8in a group; each
	// group holds only the series that ran there, so the bars are as wide as the fullest group
	// allows.
	const margin = 1 * vg.Inch
	canvasW := max(15*vg.Inch, vg.Length(len(names))*0.8*vg.Inch+margin)
	widest := 1
	for i := range names {
		n := 0
		for k := range series {
			if !math.IsNaN(values[k][i]) {
				n++
			}
		}
		widest = max(widest, n)
	}
	width := (canvasW - margin) / vg.Length(len(names)) * 0.8 / vg.Length(widest)
	legend := make([]*plotter.BarChart, len(series)) // a bar of each series, for its legend entry
	for i := range names {
		var present []int
		for k := range series {
			if !math.IsNaN(values[k][i]) {
				present = append(present, k)
			}
		}
		for j, k := range present {
			v := values[k][i]
			bars, err := plotter.NewBarChart(plotter.Values{min(v, chartCap)}, width)
			if err != nil {
				return err
			}
			bars.XMin = float64(i)
			bars.LineStyle.Width = 0
			bars.Color = chartColors[k%len(chartColors)]
			if series[k] == "baseline" {
				bars.Color = color.Gray{Y: 170}
			}
			bars.Offset = vg.Length(float64(j)-float64(len(present)-1)/2) * width
			p.Add(bars)
			if legend[k] == nil {
				legend[k] = bars
			}
			if series[k] == "baseline" {
				continue
			}
			lab, err := plotter.NewLabels(plotter.XYLabels{
				XYs:    []plotter.XY{{X: float64(i), Y: min(v, chartCap)}},
				Labels: []string{fmt.Sprintf("%.2f", v)},
			})
			if err != nil {
				return err
			}
			for j := range lab.TextStyle {
				lab.TextStyle[j].Font.Size = vg.Points(7)
				lab.TextStyle[j].XAlign = draw.XCenter
			}
			lab.Offset = vg.Point{X: bars.Offset, Y: vg.Points(2)}
			p.Add(lab)
		}
	}
	for k, bars := range legend {
		if bars != nil {
			p.Legend.Add(series[k], bars)
		}
	}
	one := plotter.NewFunction(func(float64) float64 { return 1 })
	one.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	one.Color = color.Gray{Y: 60}
	p.Add(one)
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	p.Y.Min, p.Y.Max = 0, ymax*1.35 // headroom for the legend and the labels
	return p.Save(canvasW, 5.5*vg.Inch, path)
}
