//! `pirun bench --svg FILE`: latency against size, log-log, one line per test (median of
//! the slowest rank's time per call), the barrier as a dashed level (it has no size) and
//! the α-β fit of the ping-pong as a dashed grey line, with a legend: a picture for a
//! README. Drawn with `plotters`' SVG backend (no font files needed: the text stays text).

use pirun_benches::coll::Op;
use pirun_benches::plan::Test;
use pirun_benches::sizes::format_size;
use plotters::prelude::*;

use super::report::Report;

/// Picture size, pixels.
const SIZE: (u32, u32) = (960, 600);

/// One colour per test, in [`Test::ALL`] order (Tableau 10: tell-apart-able, print-safe).
const COLOURS: [RGBColor; 9] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
];

fn colour(test: Test) -> RGBColor {
    let i = Test::ALL.iter().position(|&t| t == test).unwrap_or(0);
    COLOURS[i % COLOURS.len()]
}

/// A time on the y axis: `1 µs`, `100 µs`, `10 ms`, `1 s`.
fn time_label(us: f64) -> String {
    let (v, unit) = if us >= 1e6 {
        (us / 1e6, "s")
    } else if us >= 1e3 {
        (us / 1e3, "ms")
    } else {
        (us, "µs")
    };
    format!("{} {unit}", (v * 1000.0).round() / 1000.0)
}

/// Powers of two from `lo` to `hi` (both powers of two), about eight of them.
fn size_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (a, b) = (lo.log2().round() as i32, hi.log2().round() as i32);
    let step = ((b - a) / 8).max(1) as usize;
    let step = if step > 1 {
        step.next_power_of_two()
    } else {
        1
    };
    (a..=b)
        .filter(|e| (e - a) as usize % step == 0)
        .map(|e| 2f64.powi(e))
        .collect()
}

/// Powers of ten from `lo` to `hi`.
fn time_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    (a..=b).map(|e| 10f64.powi(e)).collect()
}

/// The plot as an SVG document.
pub fn render(r: &Report) -> Result<String, String> {
    let sized: Vec<_> = r.rows.iter().filter(|row| row.m.test.sized()).collect();
    if sized.is_empty() {
        return Err("no measurement with a size to plot".into());
    }
    let sizes = sized.iter().map(|row| row.m.size.max(1) as f64);
    let (xmin, xmax) = sizes.fold((f64::INFINITY, 0.0f64), |(a, b), x| (a.min(x), b.max(x)));
    let (xmin, xmax) = (
        2f64.powi(xmin.log2().floor() as i32),
        2f64.powi((xmax.log2().ceil() as i32).max(xmin.log2().floor() as i32 + 1)),
    );
    let times = r.rows.iter().map(|row| row.m.median_us.max(1e-3));
    let (ymin, ymax) = times.fold((f64::INFINITY, 0.0f64), |(a, b), y| (a.min(y), b.max(y)));
    let (ymin, ymax) = (
        10f64.powi(ymin.log10().floor() as i32),
        10f64.powi((ymax.log10().ceil() as i32).max(ymin.log10().floor() as i32 + 1)),
    );
    let title = match &r.setup {
        Some(s) => format!(
            "pirun bench: {} ranks on {} host{}",
            s.ranks,
            s.hosts,
            if s.hosts == 1 { "" } else { "s" }
        ),
        None => "pirun bench".to_string(),
    };

    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let e = |e: DrawingAreaErrorKind<std::io::Error>| e.to_string();
        area.fill(&WHITE).map_err(e)?;
        let x = (xmin..xmax)
            .log_scale()
            .with_key_points(size_ticks(xmin, xmax));
        let y = (ymin..ymax)
            .log_scale()
            .with_key_points(time_ticks(ymin, ymax));
        let mut chart = ChartBuilder::on(&area)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(x, y)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("bytes per rank")
            .y_desc("time per call (median, slowest rank)")
            .x_label_formatter(&|v| format_size(v.round() as usize))
            .y_label_formatter(&|v| time_label(*v))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(e)?;

        for test in Test::ALL.into_iter().filter(|t| t.sized()) {
            let pts: Vec<(f64, f64)> = sized
                .iter()
                .filter(|row| row.m.test == test)
                .map(|row| (row.m.size.max(1) as f64, row.m.median_us.max(1e-3)))
                .collect();
            if pts.is_empty() {
                continue;
            }
            let c = colour(test);
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)).point_size(3))
                .map_err(e)?
                .label(test.name())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
        }
        if let Some(row) = r
            .rows
            .iter()
            .find(|row| row.m.test == Test::Coll(Op::Barrier))
        {
            let c = colour(Test::Coll(Op::Barrier));
            let level = row.m.median_us.max(1e-3);
            chart
                .draw_series(DashedLineSeries::new(
                    [(xmin, level), (xmax, level)],
                    6,
                    4,
                    c.stroke_width(2),
                ))
                .map_err(e)?
                .label("barrier (no size)")
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
        }
        if let Ok(h) = &r.model {
            let grey = RGBColor(0x80, 0x80, 0x80);
            let steps = 60;
            let fit = (0..=steps).map(|i| {
                let m = xmin * (xmax / xmin).powf(i as f64 / steps as f64);
                (m, h.time_us(m).clamp(ymin, ymax))
            });
            chart
                .draw_series(DashedLineSeries::new(fit, 4, 4, grey.stroke_width(1)))
                .map_err(e)?
                .label("α-β model (fit of the ping-pong)")
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(1))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(e)?;
        area.present().map_err(e)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(size_ticks(1.0, 16.0), [1.0, 2.0, 4.0, 8.0, 16.0]);
        let t = size_ticks(1.0, (16 << 20) as f64);
        assert_eq!(t.first(), Some(&1.0));
        assert!(t.len() <= 13 && t.len() >= 6, "{t:?}");
        assert!(t.iter().all(|x| x.log2().fract() == 0.0));
        assert_eq!(time_ticks(2.0, 300.0), [1.0, 10.0, 100.0, 1000.0]);
        assert_eq!(time_label(1.0), "1 µs");
        assert_eq!(time_label(2500.0), "2.5 ms");
        assert_eq!(time_label(3e6), "3 s");
    }
}
