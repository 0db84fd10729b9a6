//! The load report as a PNG: CPU per relayed packet, loss, round-trip
//! latency and the latency siphon adds per pass against the number of
//! calls, one panel each.

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::report::Report;

/// TrueType fonts tried for the labels (Debian's fonts-dejavu-core first).
const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

type Plotted = Result<(), Box<dyn std::error::Error>>;
/// One line of a panel: its legend, its points, its colour.
type Line<'a> = (&'a str, Vec<(f64, f64)>, RGBColor);

/// Why the labels' font could not be loaded (kept for the life of the process).
#[derive(Debug, Clone, thiserror::Error)]
pub enum FontError {
    /// None of the paths could be read.
    #[error("no font for the plot's labels (tried {tried:?}); pass --font")]
    NotFound {
        /// The paths tried, in order.
        tried: Vec<PathBuf>,
    },
    /// The file is not a font plotters can use.
    #[error("the plot's font is not a usable TrueType font")]
    NotTrueType,
}

/// Why the plot was not written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// No font for the labels.
    #[error(transparent)]
    Font(#[from] FontError),
    /// Drawing or encoding the PNG failed.
    #[error("plot {}: {source}", .path.display())]
    Draw {
        /// The PNG's path.
        path: PathBuf,
        /// What plotters said.
        source: Box<dyn std::error::Error>,
    },
}

/// Make the labels' font known to plotters, once; `font` overrides the
/// search. Fails when no font can be read (a plot without text is useless).
fn load_font(font: Option<&Path>) -> Result<(), FontError> {
    static LOADED: std::sync::OnceLock<Result<(), FontError>> = std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            let paths: Vec<&Path> = match font {
                Some(f) => vec![f],
                None => FONTS.iter().map(Path::new).collect(),
            };
            let bytes = paths
                .iter()
                .find_map(|p| std::fs::read(p).ok())
                .ok_or_else(|| FontError::NotFound {
                    tried: paths.iter().map(|p| p.to_path_buf()).collect(),
                })?;
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| FontError::NotTrueType)
        })
        .clone()
}

/// Draw `report` into the PNG at `path`.
pub fn write_png(report: &Report, path: &Path, font: Option<&Path>) -> Result<(), PlotError> {
    load_font(font)?;
    draw(report, path).map_err(|source| PlotError::Draw {
        path: path.to_path_buf(),
        source,
    })
}

fn draw(report: &Report, path: &Path) -> Plotted {
    let root = BitMapBackend::new(path, (900, 1280)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((4, 1));
    let x_max = report.steps.iter().map(|s| s.calls).max().unwrap_or(1) as f64 * 1.05;
    let series = |f: fn(&super::Step) -> f64| -> Vec<(f64, f64)> {
        report
            .steps
            .iter()
            .map(|s| (s.calls as f64, f(s)))
            .collect()
    };
    panel(
        &panels[0],
        "siphon CPU per relayed packet (µs)",
        x_max,
        &[
            ("siphon (user+sys)", series(|s| s.siphon_us_per_pkt), RED),
            ("siphon + softirq", series(|s| s.all_in_us_per_pkt), BLUE),
        ],
    )?;
    panel(
        &panels[1],
        "loss (%)",
        x_max,
        &[
            (
                "round trip (exact)",
                series(|s| s.loss_round_trip_pct),
                BLACK,
            ),
            ("browser -> SIP", series(|s| s.loss_to_sip_pct), RED),
            ("SIP -> browser", series(|s| s.loss_to_browser_pct), BLUE),
        ],
    )?;
    panel(
        &panels[2],
        "round trip through siphon twice, generator included (ms)",
        x_max,
        &[
            ("p50", series(|s| s.rtt_ms_p50), GREEN),
            ("p99", series(|s| s.rtt_ms_p99), BLUE),
            ("p99.9", series(|s| s.rtt_ms_p999), RED),
        ],
    )?;
    panel(
        &panels[3],
        "added by siphon per pass, kernel to kernel (ms)",
        x_max,
        &[
            ("to SIP p50", series(|s| s.to_sip_ms_p50), GREEN),
            ("to SIP p99", series(|s| s.to_sip_ms_p99), BLUE),
            ("to browser p50", series(|s| s.to_browser_ms_p50), MAGENTA),
            ("to browser p99", series(|s| s.to_browser_ms_p99), RED),
        ],
    )?;
    root.present()?;
    Ok(())
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_max: f64,
    lines: &[Line<'_>],
) -> Plotted
where
    DB::ErrorType: 'static,
{
    let y_max = lines
        .iter()
        .flat_map(|(_, pts, _)| pts.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    chart
        .configure_mesh()
        // No fine grid: the PNG stays small enough to keep in docs/.
        .max_light_lines(0)
        .x_desc("concurrent calls")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style(("sans-serif", 14))
        .draw()?;
    for (name, points, color) in lines {
        let color = *color;
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Step;

    #[test]
    fn font_errors_say_what_to_do() {
        let missing = FontError::NotFound {
            tried: vec![PathBuf::from("fonts/a.ttf")],
        };
        assert_eq!(
            PlotError::from(missing).to_string(),
            r#"no font for the plot's labels (tried ["fonts/a.ttf"]); pass --font"#
        );
    }

    #[test]
    fn a_report_draws_to_a_png() {
        if let Err(e) = load_font(None) {
            // The load tool refuses to plot without one, saying why.
            eprintln!("skipped: {e}");
            return;
        }
        let steps = [10, 50, 100]
            .iter()
            .map(|&n| Step {
                calls: n,
                siphon_us_per_pkt: 5.0 + n as f64 / 100.0,
                all_in_us_per_pkt: 7.0,
                loss_to_sip_pct: 0.01,
                rtt_ms_p50: 0.3,
                rtt_ms_p99: 0.8,
                rtt_ms_p999: 1.2,
                ..Step::default()
            })
            .collect();
        let report = Report {
            steps,
            ..Report::default()
        };
        let path = std::env::temp_dir().join(format!("siphon-plot-{}.png", std::process::id()));
        write_png(&report, &path, None).unwrap();
        let png = std::fs::read(&path).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert!(png.len() > 10_000, "{} bytes", png.len());
        let _ = std::fs::remove_file(&path);
    }
}
