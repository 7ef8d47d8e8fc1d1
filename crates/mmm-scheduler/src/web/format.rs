//! Text for the page: HTML escaping, times and figures.

use std::fmt::Write;

/// `text` safe inside HTML elements and quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2026-11-25 13:12:22 UTC`: the same on every operator's screen.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// `13:12:22`: the time of day in UTC, for lists where the date is noise.
pub fn clock(ms: u64) -> String {
    let rest = ms / 1000 % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

pub use mmm_core::human::duration;

/// A figure with thousands separated by thin spaces, one decimal below 100.
pub fn figure(n: Option<f64>) -> String {
    let Some(n) = n.filter(|n| n.is_finite()) else {
        return "–".to_string();
    };
    if n.abs() < 100.0 && n.fract() != 0.0 {
        return format!("{n:.1}");
    }
    let whole = format!("{:.0}", n.abs());
    let mut out = String::new();
    if n < 0.0 {
        out.push('-');
    }
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push('\u{2009}');
        }
        out.push(c);
    }
    out
}

/// A compact axis label: 950, 1.2k, 3.4M.
pub fn compact(n: f64) -> String {
    let mut out = String::new();
    let _ = if n >= 1e6 {
        write!(out, "{:.1}M", n / 1e6)
    } else if n >= 1e3 {
        write!(out, "{:.1}k", n / 1e3)
    } else {
        write!(out, "{n:.0}")
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_html_special_character() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn formats_times_durations_and_figures() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_795_000_000_000), "2026-11-18 11:06:40 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(clock(1_795_000_000_000), "11:06:40");
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(429), "7 min 09 s");
        assert_eq!(duration(7500), "2 h 05 min");
        assert_eq!(duration(3 * 86_400 + 4 * 3600 + 5), "3 d 4 h");
        assert_eq!(figure(None), "–");
        assert_eq!(figure(Some(12.34)), "12.3");
        assert_eq!(figure(Some(12.0)), "12");
        assert_eq!(figure(Some(1_234_567.8)), "1\u{2009}234\u{2009}568");
        assert_eq!(figure(Some(f64::NAN)), "–");
        assert_eq!(compact(950.0), "950");
        assert_eq!(compact(1250.0), "1.2k");
        assert_eq!(compact(3_400_000.0), "3.4M");
    }
}
