//! A layer's file index: every entry of its tar stream (path, type, mode, owner, size, time,
//! where its bytes are, the SHA-256 of a file's content), the checkpoints into the compressed
//! stream, and what bounded or cut the indexing short. Built once, streamed, in flat memory;
//! kept beside the blob as one zstd-compressed object (`encode`, `decode`).

use std::io::{self, Read};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::LayerLimits;
use super::decode::{Checkpoint, Compression, Decoder};

/// What the stored object starts with (after decompression): the format's version.
const MAGIC: &[u8; 8] = b"BERTHLI1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    HardLink,
    /// `.wh.NAME`: NAME of the layers below is deleted.
    Whiteout,
    /// `.wh..wh..opq`: the directory's contents of the layers below are hidden.
    OpaqueWhiteout,
    /// Devices, FIFOs and other types, listed but never read.
    Other,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Dir => "dir",
            EntryKind::Symlink => "symlink",
            EntryKind::HardLink => "hardlink",
            EntryKind::Whiteout => "whiteout",
            EntryKind::OpaqueWhiteout => "opaque",
            EntryKind::Other => "other",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The path as a container sees it: relative to the root, `.` and `..` resolved lexically
    /// (never above the root), shown lossily when the name is not UTF-8.
    pub path: String,
    /// The name as the layer stores it, when that differs from `path` (`../etc/passwd`,
    /// `/abs`, a name that is not UTF-8: lossily).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_as: Option<String>,
    /// The exact bytes of a name that is not UTF-8 (to tell two such names apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_path: Option<Vec<u8>>,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The size the header declares.
    pub size: u64,
    pub mtime: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
    /// Offset of the content in the uncompressed tar stream.
    pub offset: u64,
    /// `sha256:<hex>` of a regular file's content, read whole while indexing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_digest: Option<String>,
    /// The layer ends before this file's declared size: its content cannot be read.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl Entry {
    /// The key two layers' entries for the same file share.
    pub fn key(&self) -> &[u8] {
        self.raw_path.as_deref().unwrap_or(self.path.as_bytes())
    }
}

/// Why an index holds no (or not every) entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum Incomplete {
    TooManyEntries {
        limit: u64,
    },
    TooLarge {
        limit: u64,
    },
    TooSlow {
        seconds: u64,
    },
    /// The layer is not a tar stream (or is damaged): what the decoder said.
    Unreadable {
        message: String,
    },
}

impl Incomplete {
    /// The sentence a person reads.
    pub fn message(&self) -> String {
        match self {
            Incomplete::TooManyEntries { limit } => format!(
                "this layer has more than {limit} files; its listing stops there (raise [layers] max_entries to see all)"
            ),
            Incomplete::TooLarge { limit } => format!(
                "this layer expands to more than {limit} bytes; its listing stops there (raise [layers] max_uncompressed_bytes to see all)"
            ),
            Incomplete::TooSlow { seconds } => format!(
                "indexing this layer took longer than {seconds} s; its listing stops there (raise [layers] max_index_seconds to see all)"
            ),
            Incomplete::Unreadable { message } => {
                format!("the layer could not be read to its end: {message}")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerIndex {
    pub compression: Compression,
    pub entries: Vec<Entry>,
    /// Uncompressed bytes read.
    pub uncompressed_size: u64,
    /// Entries left out: a path longer or deeper than the bounds.
    pub omitted: u64,
    pub incomplete: Option<Incomplete>,
    pub checkpoints: Vec<Checkpoint>,
    /// The windows of gzip checkpoints (kept apart from the JSON, see `encode`).
    #[serde(skip)]
    pub windows: Vec<Vec<u8>>,
}

impl LayerIndex {
    /// The last checkpoint at or before `offset` of the tar stream.
    pub fn checkpoint_before(&self, offset: u64) -> Option<&Checkpoint> {
        let after = self
            .checkpoints
            .partition_point(|c| c.uncompressed <= offset);
        after.checked_sub(1).map(|at| &self.checkpoints[at])
    }

    pub fn window(&self, checkpoint: &Checkpoint) -> Option<&[u8]> {
        checkpoint
            .window
            .and_then(|at| self.windows.get(at as usize))
            .map(Vec::as_slice)
    }

    /// The stored form: `MAGIC`, the JSON's length and the JSON, then each window with its
    /// length, the whole compressed with zstd.
    pub fn encode(&self) -> io::Result<Vec<u8>> {
        let json = serde_json::to_vec(self)?;
        let mut plain =
            Vec::with_capacity(json.len() + self.windows.len() * (4 + super::decode::WINDOW) + 16);
        plain.extend_from_slice(MAGIC);
        plain.extend_from_slice(&(json.len() as u64).to_le_bytes());
        plain.extend_from_slice(&json);
        for window in &self.windows {
            plain.extend_from_slice(&(window.len() as u32).to_le_bytes());
            plain.extend_from_slice(window);
        }
        zstd::encode_all(plain.as_slice(), 3)
    }

    /// Reads what `encode` wrote; `None` for another version or damage (the layer is indexed
    /// again).
    pub fn decode(stored: &[u8]) -> Option<LayerIndex> {
        let plain = zstd::decode_all(stored).ok()?;
        let rest = plain.strip_prefix(MAGIC.as_slice())?;
        let (len, rest) = rest.split_at_checked(8)?;
        let len = usize::try_from(u64::from_le_bytes(len.try_into().ok()?)).ok()?;
        let (json, mut rest) = rest.split_at_checked(len)?;
        let mut index: LayerIndex = serde_json::from_slice(json).ok()?;
        while !rest.is_empty() {
            let (len, tail) = rest.split_at_checked(4)?;
            let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
            let (window, tail) = tail.split_at_checked(len)?;
            index.windows.push(window.to_vec());
            rest = tail;
        }
        Some(index)
    }
}

/// The path as a container sees it, or `None` for the root itself. Leading `/` and `./`,
/// `.` components and repeated slashes go; `..` removes the previous component and never
/// climbs above the root (as runtimes join layer paths under the root).
pub fn normalize(raw: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Why indexing stopped early, as an I/O error's payload (the tar reader only passes those on).
#[derive(Debug)]
struct Bound(Incomplete);

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.message())
    }
}

impl std::error::Error for Bound {}

/// The decoder, refusing to produce more than the bound or to run past the deadline.
struct Bounded<R: Read> {
    decoder: Decoder<R>,
    max_bytes: u64,
    deadline: Instant,
    max_seconds: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if Instant::now() > self.deadline {
            return Err(io::Error::other(Bound(Incomplete::TooSlow {
                seconds: self.max_seconds,
            })));
        }
        let n = self.decoder.read(buf)?;
        if self.decoder.produced() > self.max_bytes {
            return Err(io::Error::other(Bound(Incomplete::TooLarge {
                limit: self.max_bytes,
            })));
        }
        Ok(n)
    }
}

fn incomplete_of(err: io::Error) -> Incomplete {
    match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Bound>())
    {
        Some(Bound(incomplete)) => incomplete.clone(),
        None => Incomplete::Unreadable {
            message: err.to_string(),
        },
    }
}

/// Reads a whole layer (`input` from its first byte) into its index. Never fails: what stops
/// it early is said in `incomplete`, with every entry read until then.
pub fn build(compression: Compression, input: impl Read, limits: &LayerLimits) -> LayerIndex {
    let decoder = Decoder::new(compression, input, Some(limits.checkpoint_spacing_bytes));
    let started = Instant::now();
    let mut bounded = Bounded {
        decoder,
        max_bytes: limits.max_uncompressed_bytes,
        deadline: started + std::time::Duration::from_secs(limits.max_index_seconds),
        max_seconds: limits.max_index_seconds,
    };
    let mut entries = Vec::new();
    let mut omitted = 0;
    let incomplete = read_entries(&mut bounded, limits, &mut entries, &mut omitted).err();
    let uncompressed_size = bounded.decoder.produced();
    let (checkpoints, windows) = bounded.decoder.into_checkpoints();
    LayerIndex {
        compression,
        entries,
        uncompressed_size,
        omitted,
        incomplete,
        checkpoints,
        windows,
    }
}

/// Extension headers (GNU long names, PAX records) longer than this are hostile: real ones
/// hold a path or two.
const MAX_EXTENSION: u64 = 64 * 1024;

fn read_entries<R: Read>(
    input: &mut Bounded<R>,
    limits: &LayerLimits,
    entries: &mut Vec<Entry>,
    omitted: &mut u64,
) -> Result<(), Incomplete> {
    let mut archive = tar::Archive::new(input);
    // Raw entries: the long names and PAX records are read here, bounded, instead of whole
    // into memory by the tar reader.
    let raw = archive.entries().map_err(incomplete_of)?.raw(true);
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    let mut pax: Option<Vec<u8>> = None;
    for entry in raw {
        let mut entry = entry.map_err(incomplete_of)?;
        let header = entry.header().clone();
        let tar_kind = header.entry_type();
        if tar_kind.is_gnu_longname()
            || tar_kind.is_gnu_longlink()
            || tar_kind.is_pax_local_extensions()
        {
            let data = read_extension(&mut entry)?;
            match data {
                // Too long to be a real name: the entry it names is left out.
                None => *omitted += 1,
                Some(data) if tar_kind.is_gnu_longname() => long_name = Some(data),
                Some(data) if tar_kind.is_gnu_longlink() => long_link = Some(data),
                Some(data) => pax = Some(data),
            }
            continue;
        }
        if tar_kind.is_pax_global_extensions() {
            continue;
        }
        let mut name = long_name
            .take()
            .unwrap_or_else(|| header.path_bytes().into_owned());
        let mut link = long_link
            .take()
            .or_else(|| header.link_name_bytes().map(|b| b.into_owned()));
        let mut size = entry.size();
        let (mut uid, mut gid, mut mtime) = (
            header.uid().unwrap_or(0),
            header.gid().unwrap_or(0),
            header.mtime().unwrap_or(0),
        );
        if let Some(records) = pax.take() {
            for record in tar::PaxExtensions::new(&records).flatten() {
                let value = record.value_bytes();
                let number = || {
                    std::str::from_utf8(value)
                        .ok()?
                        .split('.')
                        .next()?
                        .parse::<u64>()
                        .ok()
                };
                match record.key_bytes() {
                    b"path" => name = value.to_vec(),
                    b"linkpath" => link = Some(value.to_vec()),
                    b"size" => size = number().unwrap_or(size),
                    b"uid" => uid = number().unwrap_or(uid),
                    b"gid" => gid = number().unwrap_or(gid),
                    b"mtime" => mtime = number().unwrap_or(mtime),
                    _ => {}
                }
            }
        }
        while name.last() == Some(&0) {
            name.pop();
        }
        let text = String::from_utf8_lossy(&name).into_owned();
        let depth = text.split('/').filter(|p| !p.is_empty()).count();
        if name.len() > limits.max_path_bytes || depth > limits.max_path_depth {
            *omitted += 1;
            continue;
        }
        let Some(path) = normalize(&text) else {
            continue; // The root directory itself.
        };
        if entries.len() as u64 >= limits.max_entries {
            return Err(Incomplete::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        let base = path.rsplit('/').next().unwrap_or(&path);
        let kind = if base == ".wh..wh..opq" {
            EntryKind::OpaqueWhiteout
        } else if base.starts_with(".wh.") {
            EntryKind::Whiteout
        } else if tar_kind.is_file() || tar_kind == tar::EntryType::Continuous {
            EntryKind::File
        } else if tar_kind.is_dir() {
            EntryKind::Dir
        } else if tar_kind.is_symlink() {
            EntryKind::Symlink
        } else if tar_kind.is_hard_link() {
            EntryKind::HardLink
        } else {
            EntryKind::Other
        };
        let utf8 = std::str::from_utf8(&name).is_ok();
        let stored_as = (path != text.trim_end_matches('/') || !utf8).then(|| text.clone());
        let mut record = Entry {
            path,
            stored_as,
            raw_path: (!utf8).then(|| name.clone()),
            kind,
            mode: header.mode().unwrap_or(0) & 0o7777,
            uid,
            gid,
            user: header.username().ok().flatten().map(str::to_string),
            group: header.groupname().ok().flatten().map(str::to_string),
            size,
            mtime,
            link_target: link.map(|l| String::from_utf8_lossy(&l).into_owned()),
            offset: entry.raw_file_position(),
            content_digest: None,
            truncated: false,
        };
        if kind == EntryKind::File {
            let mut hasher = HashingSink(Sha256::new());
            match io::copy(&mut (&mut entry).take(size), &mut hasher) {
                Ok(copied) if copied == size => {
                    record.content_digest =
                        Some(format!("sha256:{}", hex::encode(hasher.0.finalize())));
                }
                Ok(_) => {
                    record.truncated = true;
                    entries.push(record);
                    return Err(Incomplete::Unreadable {
                        message: format!(
                            "it ends inside {}",
                            entries.last().map_or("", |e| e.path.as_str())
                        ),
                    });
                }
                Err(err) => {
                    record.truncated = true;
                    entries.push(record);
                    return Err(incomplete_of(err));
                }
            }
        }
        entries.push(record);
    }
    Ok(())
}

/// An extension header's data, `None` (and skipped) past `MAX_EXTENSION`.
fn read_extension(entry: &mut impl Read) -> Result<Option<Vec<u8>>, Incomplete> {
    let mut data = Vec::new();
    let read = (&mut *entry)
        .take(MAX_EXTENSION + 1)
        .read_to_end(&mut data)
        .map_err(incomplete_of)?;
    if read as u64 > MAX_EXTENSION {
        io::copy(entry, &mut io::sink()).map_err(incomplete_of)?;
        return Ok(None);
    }
    Ok(Some(data))
}

struct HashingSink(Sha256);

impl io::Write for HashingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_never_climb_above_the_root() {
        assert_eq!(normalize("../etc/passwd").as_deref(), Some("etc/passwd"));
        assert_eq!(normalize("/abs//x/./y/").as_deref(), Some("abs/x/y"));
        assert_eq!(normalize("a/../../b").as_deref(), Some("b"));
        assert_eq!(normalize("./"), None);
        assert_eq!(normalize(".."), None);
    }

    #[test]
    fn the_stored_form_reads_back() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        // The tar crate refuses to write `..`; the raw name field takes it, as a hostile
        // layer would carry it.
        header.as_gnu_mut().unwrap().name[..4].copy_from_slice(b"../x");
        header.set_cksum();
        builder.append(&header, &b"hello"[..]).unwrap();
        let layer = builder.into_inner().unwrap();
        let index = build(Compression::None, layer.as_slice(), &LayerLimits::default());
        assert_eq!(index.incomplete, None);
        assert_eq!(index.entries[0].path, "x");
        assert_eq!(index.entries[0].stored_as.as_deref(), Some("../x"));
        let again = LayerIndex::decode(&index.encode().unwrap()).unwrap();
        assert_eq!(again, index);
    }
}
