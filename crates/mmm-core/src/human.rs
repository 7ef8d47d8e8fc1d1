//! Figures as people read them, the same in the CLI and on the scheduler's web page.

/// `42 s`, `7 min 09 s`, `2 h 05 min`, `3 d 4 h`: the two largest units of `secs`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m:02} min")
    } else if m > 0 {
        format!("{m} min {s:02} s")
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_show_their_two_largest_units() {
        assert_eq!(duration(0), "0 s");
        assert_eq!(duration(429), "7 min 09 s");
        assert_eq!(duration(3 * 86_400 + 4 * 3600 + 5), "3 d 4 h");
    }
}
