package main

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// chart draws a grouped bar chart of the ops/s ratio to the baseline: one group per scenario, one
// bar per library, the baselines (raw for N=1, raw-quorum for N>1) as the grey bar at 1. Each bar
// is labelled with its value.
func (r *report) chart(path string) error {
	var names []string
	for _, s := range r.cfg.scenarios {
		if cells, _ := r.cells(s); len(cells) > 0 {
			names = append(names, s.name)
		}
	}
	// Series: every non-baseline adapter that ran somewhere, then the baseline.
	var series []string
	for _, a := range adapters {
		if a.Name() == "raw" || a.Name() == "raw-quorum" {
			continue
		}
		for _, res := range r.results {
			if res.adapter == a.Name() {
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
				ymax = max(ymax, values[k][i])
			}
		}
	}

	p := plot.New()
	p.Title.Text = "ops/s as a ratio to the baseline measured in the same rounds (raw for N=1, raw-quorum for N>1)"
	p.Y.Label.Text = "ratio to baseline (1 = as fast)"
	p.X.Tick.Label.Rotation = math.Pi / 8
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.Legend.Top = true
	p.Add(plotter.NewGrid())

	// Size: a group of bars per scenario, 80% of a category wide.
	const canvasW, margin = 15 * vg.Inch, 1 * vg.Inch
	width := (canvasW - margin) / vg.Length(len(names)) * 0.8 / vg.Length(len(series))
	for k, name := range series {
		vals := make(plotter.Values, len(names))
		var labels plotter.XYLabels
		for i, v := range values[k] {
			if math.IsNaN(v) {
				continue
			}
			vals[i] = v
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: v})
			labels.Labels = append(labels.Labels, fmt.Sprintf("%.2f", v))
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = 0
		bars.Color = plotutil.Color(k)
		if name == "baseline" {
			bars.Color = color.Gray{Y: 170}
		}
		bars.Offset = vg.Length(float64(k)-float64(len(series)-1)/2) * width
		p.Add(bars)
		p.Legend.Add(name, bars)
		if name == "baseline" || len(labels.XYs) == 0 {
			continue
		}
		lab, err := plotter.NewLabels(labels)
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
	one := plotter.NewFunction(func(float64) float64 { return 1 })
	one.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	one.Color = color.Gray{Y: 60}
	p.Add(one)
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	p.Y.Min, p.Y.Max = 0, ymax*1.35 // headroom for the legend and the labels
	return p.Save(canvasW, 5.5*vg.Inch, path)
}
