//! Numbers, money and text as the page writes them: `1,234`, `0.3`, `$1,000`, `$0.25`, and
//! HTML-escaped names.
//!
//! Why apart: the summary, the tables, the chart labels and the axes all write the same
//! figures, and a reader comparing a bar's label with a table cell must see the same text.

pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `1234567` as `1,234,567`.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut o = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            o.push(',');
        }
        o.push(c);
    }
    o
}

/// A number for an axis or a label: whole numbers with thousands separators, others with up
/// to three decimals.
pub(super) fn num(v: f64) -> String {
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    if (a - a.round()).abs() < 1e-9 {
        return format!("{sign}{}", thousands(a.round() as u64));
    }
    let text = format!("{a:.3}");
    let text = text.trim_end_matches('0');
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let whole = thousands(whole.parse().unwrap_or(0));
    format!("{sign}{whole}.{frac}")
}

/// Dollars: `$1,000`, `$64`, `$0.25` (cents shown when there are any).
pub(super) fn money(v: f64) -> String {
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    if (a - a.round()).abs() < 0.005 {
        format!("{sign}${}", thousands(a.round() as u64))
    } else {
        let cents = (a * 100.0).round() as u64;
        format!("{sign}${}.{:02}", thousands(cents / 100), cents % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(money(1000.0), "$1,000");
        assert_eq!(money(64.0), "$64");
        assert_eq!(money(0.25), "$0.25");
        assert_eq!(num(1234.0), "1,234");
        assert_eq!(num(0.3), "0.3");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
