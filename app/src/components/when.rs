//! Times as people read them: "5 min ago", "in 3 days", with the exact time on hover and in the
//! `datetime` attribute.

use chrono::{DateTime, Utc};
use leptos::prelude::*;

use crate::format::time;

/// `at` (RFC 3339) relative to `now` (seconds since the epoch): "just now", "5 min ago",
/// "3 h ago", "2 days ago", "in 3 days"; a date beyond a month; the text itself when it is not
/// a time.
pub fn relative(at: &str, now: i64) -> String {
    let Ok(at) = DateTime::parse_from_rfc3339(at) else {
        return at.to_owned();
    };
    let seconds = now - at.timestamp();
    let (ago, span) = (seconds >= 0, seconds.unsigned_abs());
    let amount = match span {
        0..60 => return "just now".to_owned(),
        60..3_600 => format!("{} min", span / 60),
        3_600..86_400 => format!("{} h", span / 3_600),
        86_400..172_800 => "1 day".to_owned(),
        172_800..2_592_000 => format!("{} days", span / 86_400),
        _ => return at.format("%Y-%m-%d").to_string(),
    };
    if ago {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

/// The clock relative times are read against, in seconds: the server's, as it renders the
/// page (or a live region of it, again).
pub fn now_seconds() -> i64 {
    Utc::now().timestamp()
}

/// A time as `<time datetime title>`: relative, the exact time on hover.
#[component]
pub fn When(#[prop(into)] at: String) -> impl IntoView {
    let exact = time(&at);
    let shown = relative(&at, now_seconds());
    view! { <time datetime=at title=exact>{shown}</time> }
}

#[cfg(test)]
mod tests {
    use super::relative;

    #[test]
    fn times_read_relative_to_now() {
        let now = 1_764_316_800; // 2025-11-28T08:00:00Z
        assert_eq!(relative("2025-11-28T07:59:30Z", now), "just now");
        assert_eq!(relative("2025-11-28T07:55:00Z", now), "5 min ago");
        assert_eq!(relative("2025-11-28T05:00:00Z", now), "3 h ago");
        assert_eq!(relative("2025-11-27T07:00:00Z", now), "1 day ago");
        assert_eq!(relative("2025-12-01T08:00:00Z", now), "in 3 days");
        assert_eq!(relative("2025-01-02T08:00:00Z", now), "2025-01-02");
        assert_eq!(relative("soon", now), "soon");
    }
}
