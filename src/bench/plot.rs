//! SVG charts of benchmark results (plotters' SVG backend: text is left to the viewer's fonts,
//! so no font files or system libraries are needed to draw).

use plotters::prelude::*;

const PALETTE: [RGBColor; 4] = [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40)];

/// Bars per category, one colour per series (e.g. stage × {p50, p95}).
pub struct Bars<'a> {
    pub title: &'a str,
    pub y_label: &'a str,
    pub categories: Vec<String>,
    /// (series name, one value per category)
    pub series: Vec<(String, Vec<f64>)>,
    /// Horizontal reference lines: (label, value), e.g. a target.
    pub targets: Vec<(String, f64)>,
}

/// A line through (x, y) points with reference lines (e.g. calls vs p95 latency).
pub struct Curve<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    pub targets: Vec<(String, f64)>,
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Renders to an SVG document.
pub fn bars_svg(chart: &Bars<'_>) -> Result<String, String> {
    let mut svg = String::new();
    draw_bars(chart, &mut svg).map_err(|e| format!("drawing {:?}: {e}", chart.title))?;
    Ok(svg)
}

fn draw_bars(c: &Bars<'_>, svg: &mut String) -> DrawResult {
    let root = SVGBackend::with_string(svg, (860, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = c.series.iter().flat_map(|s| s.1.iter().copied()).chain(c.targets.iter().map(|t| t.1)).fold(0.0, f64::max);
    let n = c.categories.len().max(1);
    let per = c.series.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(c.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..n as f64, 0.0..top * 1.15 + f64::EPSILON)?;
    let categories = c.categories.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| {
            // Labels sit at category centres (k + 0.5); other tick positions stay blank.
            let k = x.floor() as usize;
            if (x - k as f64 - 0.5).abs() < 1e-6 { categories.get(k).cloned().unwrap_or_default() } else { String::new() }
        })
        .y_desc(c.y_label)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for (si, (name, values)) in c.series.iter().enumerate() {
        let color = PALETTE[si % PALETTE.len()];
        let width = 0.8 / per;
        chart
            .draw_series(values.iter().enumerate().map(|(k, &v)| {
                let x0 = k as f64 + 0.1 + si as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width * 0.95, v)], color.filled())
            }))?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    draw_targets(&mut chart, &c.targets, 0.0, n as f64)?;
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

fn draw_targets<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>,
    targets: &[(String, f64)],
    x0: f64,
    x1: f64,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    for (i, (label, v)) in targets.iter().enumerate() {
        let style = ShapeStyle { color: BLACK.mix(0.6), filled: false, stroke_width: 1 };
        chart.draw_series(std::iter::once(PathElement::new(vec![(x0, *v), (x1, *v)], style)))?;
        // Staggered along the line so that labels of nearby targets (500 and 800 ms) don't overlap.
        let x = x0 + (x1 - x0) * (0.01 + 0.3 * i as f64);
        chart.draw_series(std::iter::once(Text::new(label.clone(), (x, *v), ("sans-serif", 13))))?;
    }
    Ok(())
}

/// Renders to an SVG document.
pub fn curve_svg(chart: &Curve<'_>) -> Result<String, String> {
    let mut svg = String::new();
    draw_curve(chart, &mut svg).map_err(|e| format!("drawing {:?}: {e}", chart.title))?;
    Ok(svg)
}

fn draw_curve(c: &Curve<'_>, svg: &mut String) -> DrawResult {
    let root = SVGBackend::with_string(svg, (860, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let points = || c.series.iter().flat_map(|s| s.1.iter().copied());
    let x_max = points().map(|p| p.0).fold(1.0, f64::max);
    let y_max = points().map(|p| p.1).chain(c.targets.iter().map(|t| t.1)).fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(c.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max * 1.05, 0.0..y_max * 1.15 + f64::EPSILON)?;
    chart.configure_mesh().x_desc(c.x_label).y_desc(c.y_label).y_label_formatter(&|y| format!("{y:.0}")).draw()?;
    for (si, (name, pts)) in c.series.iter().enumerate() {
        let color = PALETTE[si % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }
    draw_targets(&mut chart, &c.targets, 0.0, x_max * 1.05)?;
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_render_to_svg_with_their_labels() {
        let bars = bars_svg(&Bars {
            title: "latency by stage",
            y_label: "ms",
            categories: vec!["transcript".into(), "first RTP".into()],
            series: vec![("p50".into(), vec![200.0, 450.0]), ("p95".into(), vec![300.0, 700.0])],
            targets: vec![("p95 target 800 ms".into(), 800.0)],
        })
        .unwrap();
        assert!(bars.starts_with("<svg") && bars.contains("first RTP") && bars.contains("p95 target"), "{bars}");
        assert_eq!(bars.matches("<rect").count() >= 4, true);
        let curve = curve_svg(&Curve {
            title: "capacity",
            x_label: "concurrent calls",
            y_label: "p95 ms",
            series: vec![("p95".into(), vec![(1.0, 500.0), (2.0, 900.0)])],
            targets: vec![],
        })
        .unwrap();
        assert!(curve.contains("<polyline") || curve.contains("<path"), "{curve}");
    }
}
