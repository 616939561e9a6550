//! Latency-by-percentile plots (SVG, plotters), drawn the way HdrHistogram's plotter draws
//! them: the x axis is 1/(1-percentile) on a log scale, so 90%, 99%, 99.9%... are evenly
//! spaced and the tail gets the room; one line per series.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::report::Point;

/// One line of a plot.
pub struct Series {
    pub label: String,
    pub points: Vec<Point>,
}

/// x position of a percentile (0..100).
fn x_of(percentile: f64) -> f64 {
    1.0 / (1.0 - (percentile / 100.0).min(0.999_999))
}

/// "99.9%" for the x position of that percentile.
fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    let s = format!("{p:.4}");
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}

/// Draws `series` into the SVG file `path`.
pub fn draw(path: &Path, title: &str, series: &[Series]) -> Result<()> {
    let x_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| x_of(p.percentile)))
        .fold(10.0_f64, f64::max)
        .max(100.0);
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.latency_us / 1000.0))
        .fold(0.001_f64, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (1100, 650)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow!("cannot draw {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d((1.0..x_max).log_scale(), 0.0..y_max)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| percentile_label(*x))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points = s
            .points
            .iter()
            .map(|p| (x_of(p.percentile), p.latency_us / 1000.0));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_label_the_log_axis() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert!((x_of(99.0) - 100.0).abs() < 1e-6);
    }

    #[test]
    fn draws_an_svg_with_every_series() {
        let dir = std::env::temp_dir().join(format!("loadgen-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.svg");
        let line = |label: &str, scale: f64| Series {
            label: label.into(),
            points: [0.0, 50.0, 90.0, 99.0, 99.9, 100.0]
                .iter()
                .map(|&p| Point {
                    percentile: p,
                    latency_us: (1.0 + p) * scale,
                })
                .collect(),
        };
        draw(&path, "test", &[line("alpha", 1.0), line("beta", 2.0)]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("alpha") && svg.contains("beta") && svg.contains("99.9%"));
    }
}
