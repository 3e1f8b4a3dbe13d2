//! How the console writes sizes, digests, times, addresses and HTML it makes itself.

/// `1.4 MB`, in powers of 1000 as registries and `podman images` show them.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// `1 image`, `3 images`: `n` with the word for one or for many.
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    match n.into() {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    }
}

/// Items joined by `separator`, or "—" for none: a table cell or a fact that has nothing to say.
pub fn joined_or_dash<T: AsRef<str>>(items: &[T], separator: &str) -> String {
    if items.is_empty() {
        return "—".to_owned();
    }
    items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<&str>>()
        .join(separator)
}

/// The first 12 hex digits of a digest, as `podman images` shows an image ID.
pub fn short_digest(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, hex)| hex);
    hex.chars().take(12).collect()
}

/// Where a spec tag takes its image, shortly: `ImageStreamTag app:v1` tracks a tag,
/// `ImageStreamImage app@sha256:…` pins an image, `DockerImage ref` comes from elsewhere.
pub fn tag_source(from: &str, stream: &str) -> String {
    match from.split_once(' ') {
        Some(("ImageStreamTag", name)) => format!("tracks {name}"),
        Some(("ImageStreamImage", name)) => match name.split_once('@') {
            Some((same, digest)) if same == stream => format!("pinned to {}", short_digest(digest)),
            Some((other, digest)) => format!("pinned to {other}@{}", short_digest(digest)),
            None => format!("pinned to {name}"),
        },
        Some(("DockerImage", reference)) => format!("from {reference}"),
        _ => from.to_owned(),
    }
}

/// The `oc tag` that the console's tag form does: `from` as the form takes it (`latest`, an
/// `other:tag` of the namespace, or a `sha256:` digest of this stream) onto `stream:tag`.
pub fn oc_tag_command(namespace: &str, stream: &str, from: &str, tag: &str) -> String {
    let from = from.trim();
    let source = if from.starts_with("sha256:") {
        format!("{stream}@{from}")
    } else if from.contains(':') {
        from.to_owned()
    } else {
        format!("{stream}:{from}")
    };
    format!("oc tag {source} {stream}:{} -n {namespace}", tag.trim())
}

/// The `oc import-image` that the console's import form does (its dry run aside).
pub struct ImportCommand<'a> {
    pub namespace: &'a str,
    pub stream: &'a str,
    pub from: &'a str,
    pub tag: &'a str,
    pub all_tags: bool,
    pub scheduled: bool,
    pub local: bool,
    pub insecure: bool,
}

impl ImportCommand<'_> {
    pub fn command(&self) -> String {
        let mut target = self.stream.trim().to_owned();
        if !self.all_tags && !self.tag.trim().is_empty() {
            target = format!("{target}:{}", self.tag.trim());
        }
        let mut command = format!(
            "oc import-image {target} --from={} --confirm",
            self.from.trim()
        );
        for (set, flag) in [
            (self.all_tags, " --all"),
            (self.scheduled, " --scheduled"),
            (self.local, " --reference-policy=local"),
            (self.insecure, " --insecure"),
        ] {
            if set {
                command.push_str(flag);
            }
        }
        command.push_str(&format!(" -n {}", self.namespace));
        command
    }
}

/// `2026-11-28 07:30 UTC` from an RFC 3339 time: the same text on the server and in the
/// browser, so hydration finds what was rendered.
pub fn time(rfc3339: &str) -> String {
    match rfc3339.split_once('T') {
        Some((date, rest)) => format!("{date} {} UTC", rest.get(..5).unwrap_or(rest)),
        None => rfc3339.to_owned(),
    }
}

/// `2026-11-28 07:30 UTC` from seconds since the epoch (a file's modification time).
pub fn epoch_time(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let of_day = seconds % 86_400;
    // Days to a civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        of_day / 3600,
        of_day % 3600 / 60
    )
}

/// `drwxr-xr-x` as `ls -l` writes a file's type and mode (setuid, setgid and sticky too).
pub fn file_mode(kind: &str, mode: u32) -> String {
    let mut text = String::with_capacity(10);
    text.push(match kind {
        "dir" => 'd',
        "symlink" => 'l',
        "hardlink" => 'h',
        "whiteout" | "opaque" => 'w',
        "other" => '?',
        _ => '-',
    });
    for (shift, special, set, unset) in [
        (6, 0o4000, 's', 'S'),
        (3, 0o2000, 's', 'S'),
        (0, 0o1000, 't', 'T'),
    ] {
        let bits = (mode >> shift) & 7;
        text.push(if bits & 4 != 0 { 'r' } else { '-' });
        text.push(if bits & 2 != 0 { 'w' } else { '-' });
        text.push(match (mode & special != 0, bits & 1 != 0) {
            (true, true) => set,
            (true, false) => unset,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    text
}

/// Percent-encodes text for a URL's path segment or query value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Text for HTML that is written as it stands (the document title): `&`, `<`, `>` and quotes
/// as character references.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `key=value` lines (labels or annotations as the console edits them) read into pairs;
/// blank lines are skipped. A key is Kubernetes' `[prefix/]name`: a name of at most 63
/// letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit.
pub fn key_values(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {}: write key=value", number + 1));
        };
        let key = key.trim();
        let name = key.rsplit_once('/').map_or(
            key,
            |(prefix, name)| {
                if prefix.is_empty() { "" } else { name }
            },
        );
        let valid = !name.is_empty()
            && name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(format!("line {}: {key:?} is not a valid key", number + 1));
        }
        if pairs.iter().any(|(existing, _)| existing == key) {
            return Err(format!("line {}: {key} is given twice", number + 1));
        }
        pairs.push((key.to_owned(), value.trim().to_owned()));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn nothing_to_list_is_a_dash() {
        use super::joined_or_dash;
        assert_eq!(joined_or_dash::<String>(&[], ", "), "—");
        assert_eq!(joined_or_dash(&["a", "b"], ", "), "a, b");
        assert_eq!(joined_or_dash(&["x".to_owned()], " "), "x");
    }

    #[test]
    fn oc_commands_say_what_the_forms_do() {
        use super::{ImportCommand, oc_tag_command};
        assert_eq!(
            oc_tag_command("team", "app", "latest", "stable"),
            "oc tag app:latest app:stable -n team"
        );
        assert_eq!(
            oc_tag_command("team", "app", "base:v1", "v1"),
            "oc tag base:v1 app:v1 -n team"
        );
        assert_eq!(
            oc_tag_command("team", "app", "sha256:abc", "v2"),
            "oc tag app@sha256:abc app:v2 -n team"
        );
        let import = ImportCommand {
            namespace: "team",
            stream: "nginx",
            from: "docker.io/library/nginx",
            tag: "",
            all_tags: true,
            scheduled: true,
            local: true,
            insecure: false,
        };
        assert_eq!(
            import.command(),
            "oc import-image nginx --from=docker.io/library/nginx --confirm --all --scheduled --reference-policy=local -n team"
        );
        let one = ImportCommand {
            tag: "1.27",
            all_tags: false,
            scheduled: false,
            local: false,
            ..import
        };
        assert_eq!(
            one.command(),
            "oc import-image nginx:1.27 --from=docker.io/library/nginx --confirm -n team"
        );
    }

    use super::*;

    #[test]
    fn labels_are_read_from_key_value_lines() {
        assert_eq!(
            key_values("team=shop\n\n app.kubernetes.io/part-of = web \n"),
            Ok(vec![
                ("team".to_owned(), "shop".to_owned()),
                ("app.kubernetes.io/part-of".to_owned(), "web".to_owned())
            ])
        );
        assert_eq!(key_values(""), Ok(vec![]));
        assert!(key_values("team").unwrap_err().contains("key=value"));
        assert!(
            key_values("-bad=x")
                .unwrap_err()
                .contains("not a valid key")
        );
        assert!(key_values("/x=1").is_err());
        assert!(key_values("a=1\na=2").unwrap_err().contains("twice"));
    }

    #[test]
    fn file_times_and_modes_read_as_ls_writes_them() {
        assert_eq!(epoch_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(epoch_time(1_709_210_096), "2024-02-29 12:34 UTC");
        assert_eq!(file_mode("dir", 0o755), "drwxr-xr-x");
        assert_eq!(file_mode("file", 0o4755), "-rwsr-xr-x");
        assert_eq!(file_mode("dir", 0o1777), "drwxrwxrwt");
        assert_eq!(file_mode("symlink", 0o777), "lrwxrwxrwx");
    }

    #[test]
    fn sizes_read_like_podman() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(999), "999 B");
        assert_eq!(size(1_400_000), "1.4 MB");
        assert_eq!(size(72_800_000), "73 MB");
        assert_eq!(size(3_000_000_000_000_000), "3000 TB");
    }

    #[test]
    fn digests_and_times_shorten() {
        assert_eq!(short_digest("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(time("2026-11-28T07:30:12Z"), "2026-11-28 07:30 UTC");
        assert_eq!(encode("a b/c:d"), "a%20b%2Fc%3Ad");
        assert_eq!(
            escape_html("</title><a href=\"x\">'&'"),
            "&lt;/title&gt;&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;"
        );
    }

    #[test]
    fn tag_sources_read_shortly() {
        let digest = "sha256:83f8360522e2272cbd74f4afe696a3fd29f3537679d48bfe03a4f15c6d245621";
        assert_eq!(tag_source("ImageStreamTag app:v1", "app"), "tracks app:v1");
        assert_eq!(
            tag_source(&format!("ImageStreamImage app@{digest}"), "app"),
            "pinned to 83f8360522e2"
        );
        assert_eq!(
            tag_source(&format!("ImageStreamImage base@{digest}"), "app"),
            "pinned to base@83f8360522e2"
        );
        assert_eq!(
            tag_source("DockerImage quay.io/x/y:1", "app"),
            "from quay.io/x/y:1"
        );
    }
}
