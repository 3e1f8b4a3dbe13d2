//! A layer's bytes as the tar stream inside them: gzip (every member), zstd (every frame) or
//! plain tar, told apart by their first bytes (media types are what a pusher claims).
//!
//! While a layer is indexed the decoder records checkpoints, from which a later read starts
//! instead of the layer's first byte. gzip: at a deflate block boundary, the compressed byte
//! offset, the bits of the boundary's byte still to be read and the 32 KiB the next block may
//! refer back to (zlib's zran, done with miniz_oxide's block-boundary state). zstd: a frame's
//! first byte (a frame refers to nothing before it; inside one frame there is no restart point,
//! so a read decodes from the start of the frame that holds its file). Plain tar: none needed.

use std::io::{self, Read};

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{
    BlockBoundaryState, DecompressorOxide, decompress, inflate_flags,
};
use serde::{Deserialize, Serialize};

/// How far back a deflate block may refer: what a checkpoint keeps of the output before it.
pub const WINDOW: usize = 32 * 1024;
const INPUT_BUFFER: usize = 64 * 1024;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

impl Compression {
    /// Told from a layer's first bytes; a zstd skippable frame (0x184D2A5?) starts zstd too.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(&ZSTD_MAGIC)
            || (head.len() >= 4 && head[1..4] == [0x2a, 0x4d, 0x18] && head[0] & 0xf0 == 0x50)
        {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        }
    }
}

/// Where decoding may start again: `uncompressed` bytes into the tar stream, `compressed` bytes
/// into the layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub uncompressed: u64,
    pub compressed: u64,
    /// gzip inside a member: how many bits of the byte before `compressed` the next block still
    /// needs (0..=7), and those bits.
    #[serde(default)]
    pub bits: u8,
    #[serde(default)]
    pub bit_buf: u8,
    /// gzip inside a member: the index of this checkpoint's window (the 32 KiB before it) in
    /// the layer index's windows; `None` at a member's or frame's first byte.
    #[serde(default)]
    pub window: Option<u32>,
}

impl Checkpoint {
    /// A restart point that needs no window: the layer's start, or a gzip member's or zstd
    /// frame's first byte at `compressed`.
    pub fn at(compressed: u64) -> Self {
        Checkpoint {
            uncompressed: 0,
            compressed,
            bits: 0,
            bit_buf: 0,
            window: None,
        }
    }
}

/// Reads a compressed layer as its tar stream, counting what it produced, and (when asked)
/// recording checkpoints at least `spacing` uncompressed bytes apart.
pub struct Decoder<R: Read> {
    kind: Kind<R>,
    produced: u64,
    recording: Option<Recording>,
}

struct Recording {
    spacing: u64,
    checkpoints: Vec<Checkpoint>,
    windows: Vec<Vec<u8>>,
}

enum Kind<R: Read> {
    Plain(R),
    Gzip(Box<Gzip<R>>),
    Zstd(Box<Zstd<R>>),
}

impl<R: Read> Decoder<R> {
    /// A decoder of a whole layer, starting at its first byte.
    pub fn new(compression: Compression, input: R, record_spacing: Option<u64>) -> Self {
        let kind = match compression {
            Compression::None => Kind::Plain(input),
            Compression::Gzip => Kind::Gzip(Box::new(Gzip::new(Input::new(input, 0), None))),
            Compression::Zstd => Kind::Zstd(Box::new(Zstd::new(Input::new(input, 0)))),
        };
        Decoder {
            kind,
            produced: 0,
            recording: record_spacing.map(|spacing| Recording {
                spacing: spacing.max(1),
                checkpoints: Vec::new(),
                windows: Vec::new(),
            }),
        }
    }

    /// A decoder that starts at `checkpoint`, `input` being the layer from
    /// `checkpoint.compressed` on; `window` its saved window, if any.
    pub fn resume(
        compression: Compression,
        input: R,
        checkpoint: &Checkpoint,
        window: Option<&[u8]>,
    ) -> Self {
        let kind = match compression {
            Compression::None => Kind::Plain(input),
            Compression::Gzip => {
                let input = Input::new(input, checkpoint.compressed);
                let resume = window.map(|window| (checkpoint, window));
                Kind::Gzip(Box::new(Gzip::new(input, resume)))
            }
            Compression::Zstd => Kind::Zstd(Box::new(Zstd::new(Input::new(
                input,
                checkpoint.compressed,
            )))),
        };
        Decoder {
            kind,
            produced: checkpoint.uncompressed,
            recording: None,
        }
    }

    /// Uncompressed bytes produced so far (from the layer's start).
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// The checkpoints and windows recorded.
    pub fn into_checkpoints(self) -> (Vec<Checkpoint>, Vec<Vec<u8>>) {
        match self.recording {
            Some(recording) => (recording.checkpoints, recording.windows),
            None => (Vec::new(), Vec::new()),
        }
    }

    /// Records a checkpoint when the decoder stands at a restart point and the last one is at
    /// least `spacing` behind.
    fn maybe_record(&mut self) {
        let Some(recording) = &mut self.recording else {
            return;
        };
        let last = recording.checkpoints.last().map_or(0, |c| c.uncompressed);
        if self.produced > 0 && self.produced - last < recording.spacing {
            return;
        }
        if recording
            .checkpoints
            .last()
            .is_some_and(|c| c.uncompressed == self.produced)
        {
            return;
        }
        let point = match &mut self.kind {
            Kind::Plain(_) => None,
            Kind::Gzip(gzip) => gzip.restart_point(),
            Kind::Zstd(zstd) => zstd.restart_point(),
        };
        if let Some((mut checkpoint, window)) = point {
            checkpoint.uncompressed = self.produced;
            if let Some(window) = window {
                checkpoint.window =
                    Some(u32::try_from(recording.windows.len()).unwrap_or(u32::MAX));
                recording.windows.push(window);
            }
            recording.checkpoints.push(checkpoint);
        }
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let recording = self.recording.is_some();
        let n = match &mut self.kind {
            Kind::Plain(input) => input.read(buf)?,
            Kind::Gzip(gzip) => gzip.read(buf, recording)?,
            Kind::Zstd(zstd) => zstd.read(buf)?,
        };
        self.produced += n as u64;
        if recording {
            self.maybe_record();
        }
        Ok(n)
    }
}

/// Copies what `buf` takes of `output[pending]` into it, and moves `pending` past it.
fn drain(pending: &mut std::ops::Range<usize>, output: &[u8], buf: &mut [u8]) -> usize {
    let n = pending.len().min(buf.len());
    buf[..n].copy_from_slice(&output[pending.start..pending.start + n]);
    pending.start += n;
    n
}

/// The compressed bytes, buffered, with the offset of the next one.
struct Input<R: Read> {
    inner: R,
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
    /// Offset in the layer of `buffer[start]`.
    offset: u64,
    eof: bool,
}

impl<R: Read> Input<R> {
    fn new(inner: R, offset: u64) -> Self {
        Input {
            inner,
            buffer: vec![0; INPUT_BUFFER].into_boxed_slice(),
            start: 0,
            end: 0,
            offset,
            eof: false,
        }
    }

    /// The buffered bytes, refilled when empty; empty at the end of the layer.
    fn fill(&mut self) -> io::Result<&[u8]> {
        if self.start == self.end && !self.eof {
            self.start = 0;
            self.end = 0;
            loop {
                match self.inner.read(&mut self.buffer) {
                    Ok(0) => {
                        self.eof = true;
                        break;
                    }
                    Ok(n) => {
                        self.end = n;
                        break;
                    }
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(&self.buffer[self.start..self.end])
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }

    fn byte(&mut self) -> io::Result<Option<u8>> {
        let byte = self.fill()?.first().copied();
        if byte.is_some() {
            self.consume(1);
        }
        Ok(byte)
    }

    fn need_byte(&mut self) -> io::Result<u8> {
        self.byte()?
            .ok_or_else(|| corrupt("the gzip stream ends inside a header"))
    }

    fn skip(&mut self, mut n: usize) -> io::Result<()> {
        while n > 0 {
            let available = self.fill()?.len();
            if available == 0 {
                return Err(corrupt("the gzip stream ends inside a header"));
            }
            let step = available.min(n);
            self.consume(step);
            n -= step;
        }
        Ok(())
    }
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

enum GzipState {
    /// Before a member's header (or the end of the stream).
    Header,
    /// Inside a member's deflate stream.
    Deflate,
    Done,
}

/// gzip through miniz_oxide's core inflater, with its 32 KiB output ring as the window.
struct Gzip<R: Read> {
    input: Input<R>,
    inflater: Box<DecompressorOxide>,
    ring: Box<[u8]>,
    ring_pos: usize,
    /// Bytes of the ring not yet handed to the reader.
    pending: std::ops::Range<usize>,
    state: GzipState,
    /// Output of the current member since its start (or the resume point), for its trailer.
    member_crc: Option<crc32fast::Hasher>,
    member_len: u64,
    at_boundary: bool,
}

impl<R: Read> Gzip<R> {
    fn new(input: Input<R>, resume: Option<(&Checkpoint, &[u8])>) -> Self {
        let mut ring = vec![0; WINDOW].into_boxed_slice();
        let (inflater, state, crc) = match resume {
            Some((checkpoint, window)) => {
                let take = window.len().min(WINDOW);
                ring[WINDOW - take..].copy_from_slice(&window[window.len() - take..]);
                let state = BlockBoundaryState {
                    num_bits: checkpoint.bits,
                    bit_buf: checkpoint.bit_buf,
                    ..BlockBoundaryState::default()
                };
                (
                    Box::new(DecompressorOxide::from_block_boundary_state(&state)),
                    GzipState::Deflate,
                    // A member entered in its middle cannot be checked against its trailer.
                    None,
                )
            }
            None => (
                Box::new(DecompressorOxide::new()),
                GzipState::Header,
                Some(crc32fast::Hasher::new()),
            ),
        };
        Gzip {
            input,
            inflater,
            ring,
            ring_pos: 0,
            pending: 0..0,
            state,
            member_crc: crc,
            member_len: 0,
            at_boundary: false,
        }
    }

    /// The checkpoint of where the inflater stands, when that is a restart point: a member's
    /// first byte, or a block boundary with its window.
    fn restart_point(&self) -> Option<(Checkpoint, Option<Vec<u8>>)> {
        if !self.pending.is_empty() {
            return None;
        }
        match self.state {
            GzipState::Header => Some((Checkpoint::at(self.input.offset), None)),
            GzipState::Deflate if self.at_boundary => {
                let state = self.inflater.block_boundary_state()?;
                let mut window = Vec::with_capacity(WINDOW);
                window.extend_from_slice(&self.ring[self.ring_pos..]);
                window.extend_from_slice(&self.ring[..self.ring_pos]);
                Some((
                    Checkpoint {
                        uncompressed: 0,
                        compressed: self.input.offset,
                        bits: state.num_bits,
                        bit_buf: state.bit_buf,
                        window: None,
                    },
                    Some(window),
                ))
            }
            _ => None,
        }
    }

    fn read(&mut self, buf: &mut [u8], stop_at_blocks: bool) -> io::Result<usize> {
        loop {
            if !self.pending.is_empty() {
                return Ok(drain(&mut self.pending, &self.ring, buf));
            }
            match self.state {
                GzipState::Done => return Ok(0),
                GzipState::Header => {
                    if !self.read_header()? {
                        self.state = GzipState::Done;
                        return Ok(0);
                    }
                    *self.inflater = DecompressorOxide::new();
                    self.member_crc = Some(crc32fast::Hasher::new());
                    self.member_len = 0;
                    self.state = GzipState::Deflate;
                }
                GzipState::Deflate => self.inflate_some(stop_at_blocks)?,
            }
        }
    }

    /// Runs the inflater once: output into the ring (made pending), or the member's end.
    fn inflate_some(&mut self, stop_at_blocks: bool) -> io::Result<()> {
        self.at_boundary = false;
        let eof = {
            self.input.fill()?;
            self.input.eof
        };
        let mut flags = 0;
        if !eof {
            flags |= inflate_flags::TINFL_FLAG_HAS_MORE_INPUT;
        }
        if stop_at_blocks {
            flags |= inflate_flags::TINFL_FLAG_STOP_ON_BLOCK_BOUNDARY;
        }
        let input = &self.input.buffer[self.input.start..self.input.end];
        let (status, consumed, produced) = decompress(
            &mut self.inflater,
            input,
            &mut self.ring,
            self.ring_pos,
            flags,
        );
        self.input.consume(consumed);
        let out = self.ring_pos..self.ring_pos + produced;
        if let Some(crc) = &mut self.member_crc {
            crc.update(&self.ring[out.clone()]);
        }
        self.member_len += produced as u64;
        self.pending = out;
        self.ring_pos = (self.ring_pos + produced) & (WINDOW - 1);
        match status {
            TINFLStatus::Done => self.read_trailer(),
            TINFLStatus::BlockBoundary => {
                self.at_boundary = true;
                Ok(())
            }
            TINFLStatus::HasMoreOutput => Ok(()),
            TINFLStatus::NeedsMoreInput if eof => {
                Err(corrupt("the gzip stream ends inside compressed data"))
            }
            TINFLStatus::NeedsMoreInput if consumed == 0 && produced == 0 => {
                // Only the buffer's end was short: refill it whole next time.
                self.compact_input()
            }
            TINFLStatus::NeedsMoreInput => Ok(()),
            _ => Err(corrupt("the gzip stream is not valid deflate data")),
        }
    }

    /// Moves the unread input to the buffer's front and reads more behind it.
    fn compact_input(&mut self) -> io::Result<()> {
        let rest = self.input.end - self.input.start;
        self.input
            .buffer
            .copy_within(self.input.start..self.input.end, 0);
        self.input.start = 0;
        self.input.end = rest;
        let n = self.input.inner.read(&mut self.input.buffer[rest..])?;
        if n == 0 {
            self.input.eof = true;
        }
        self.input.end += n;
        Ok(())
    }

    /// Reads a member header; false at the end of the stream (or trailing zeros, as gzip
    /// tools allow).
    fn read_header(&mut self) -> io::Result<bool> {
        let Some(first) = self.input.byte()? else {
            return Ok(false);
        };
        if first == 0 {
            return Ok(false);
        }
        let second = self.input.need_byte()?;
        let method = self.input.need_byte()?;
        if [first, second] != GZIP_MAGIC || method != 8 {
            return Err(corrupt("the layer is not a valid gzip stream"));
        }
        let flags = self.input.need_byte()?;
        self.input.skip(6)?; // mtime, extra flags, OS
        if flags & 0x04 != 0 {
            let len =
                usize::from(self.input.need_byte()?) | (usize::from(self.input.need_byte()?) << 8);
            self.input.skip(len)?;
        }
        for flag in [0x08, 0x10] {
            if flags & flag != 0 {
                while self.input.need_byte()? != 0 {}
            }
        }
        if flags & 0x02 != 0 {
            self.input.skip(2)?;
        }
        Ok(true)
    }

    fn read_trailer(&mut self) -> io::Result<()> {
        let mut trailer = [0u8; 8];
        for byte in &mut trailer {
            *byte = self
                .input
                .byte()?
                .ok_or_else(|| corrupt("the gzip stream ends before a member's trailer"))?;
        }
        if let Some(crc) = self.member_crc.take() {
            let want_crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
            let want_len = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
            if crc.finalize() != want_crc || (self.member_len as u32) != want_len {
                return Err(corrupt("a gzip member's checksum does not match its data"));
            }
        }
        self.state = GzipState::Header;
        Ok(())
    }
}

/// zstd through libzstd's streaming decoder; a frame's first byte is a restart point.
struct Zstd<R: Read> {
    input: Input<R>,
    decoder: zstd::stream::raw::Decoder<'static>,
    output: Box<[u8]>,
    pending: std::ops::Range<usize>,
    at_frame_start: bool,
    finished: bool,
}

impl<R: Read> Zstd<R> {
    fn new(input: Input<R>) -> Self {
        let decoder = zstd::stream::raw::Decoder::new();
        Zstd {
            input,
            decoder: decoder.unwrap_or_else(|_| unreachable_decoder()),
            output: vec![0; 128 * 1024].into_boxed_slice(),
            pending: 0..0,
            at_frame_start: true,
            finished: false,
        }
    }

    fn restart_point(&self) -> Option<(Checkpoint, Option<Vec<u8>>)> {
        (self.at_frame_start && self.pending.is_empty())
            .then(|| (Checkpoint::at(self.input.offset), None))
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
        loop {
            if !self.pending.is_empty() {
                return Ok(drain(&mut self.pending, &self.output, buf));
            }
            if self.finished {
                return Ok(0);
            }
            let available = self.input.fill()?;
            if available.is_empty() {
                if self.at_frame_start {
                    self.finished = true;
                    return Ok(0);
                }
                return Err(corrupt("the zstd stream ends inside a frame"));
            }
            let mut in_buffer = InBuffer::around(available);
            let mut out_buffer = OutBuffer::around(&mut self.output[..]);
            let hint = self.decoder.run(&mut in_buffer, &mut out_buffer)?;
            let consumed = in_buffer.pos();
            let produced = out_buffer.pos();
            self.input.consume(consumed);
            self.pending = 0..produced;
            // 0: a frame is decoded and flushed whole (even when its end filled the output
            // exactly); the next byte starts another.
            self.at_frame_start = hint == 0;
            if consumed == 0 && produced == 0 && hint != 0 {
                return Err(corrupt("the zstd stream cannot be decoded"));
            }
        }
    }
}

/// libzstd's context allocation fails only when memory is exhausted: as Rust's allocator does.
fn unreachable_decoder() -> zstd::stream::raw::Decoder<'static> {
    std::alloc::handle_alloc_error(std::alloc::Layout::new::<u8>())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn pseudo_random(len: usize) -> Vec<u8> {
        // Text-like data that deflate compresses in many blocks.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b"abcdefghij klmnop\n"[(state % 18) as usize]
            })
            .collect()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn decode_all(
        compression: Compression,
        data: &[u8],
        spacing: Option<u64>,
    ) -> (Vec<u8>, Vec<Checkpoint>, Vec<Vec<u8>>) {
        let mut decoder = Decoder::new(compression, data, spacing);
        let mut out = Vec::new();
        decoder.read_to_end(&mut out).unwrap();
        let (checkpoints, windows) = decoder.into_checkpoints();
        (out, checkpoints, windows)
    }

    #[test]
    fn gzip_resumes_from_every_checkpoint() {
        let data = pseudo_random(3 << 20);
        let compressed = gzip(&data);
        let (out, checkpoints, windows) =
            decode_all(Compression::Gzip, &compressed, Some(256 * 1024));
        assert_eq!(out, data);
        assert!(checkpoints.len() > 4, "{} checkpoints", checkpoints.len());
        for checkpoint in &checkpoints {
            let window = checkpoint.window.map(|w| windows[w as usize].as_slice());
            let mut decoder = Decoder::resume(
                Compression::Gzip,
                &compressed[checkpoint.compressed as usize..],
                checkpoint,
                window,
            );
            let mut rest = Vec::new();
            decoder.read_to_end(&mut rest).unwrap();
            assert_eq!(rest, &data[checkpoint.uncompressed as usize..]);
        }
    }

    #[test]
    fn gzip_members_follow_one_another_and_checksums_are_checked() {
        let mut two = gzip(b"first member ");
        two.extend(gzip(b"second member"));
        assert_eq!(
            decode_all(Compression::Gzip, &two, None).0,
            b"first member second member"
        );
        let mut bad = gzip(b"some data");
        let at = bad.len() - 6;
        bad[at] ^= 0xff;
        let mut decoder = Decoder::new(Compression::Gzip, &bad[..], None);
        assert!(decoder.read_to_end(&mut Vec::new()).is_err());
    }

    #[test]
    fn zstd_resumes_at_frames() {
        // Frames of 300 KiB, and of 256 KiB, whose ends fill the decoder's output exactly.
        for (frame, frames) in [(300 * 1024, 4), (256 * 1024, 4)] {
            zstd_resumes_at_frames_of(frame, frames);
        }
    }

    fn zstd_resumes_at_frames_of(frame: usize, frames: usize) {
        let data = pseudo_random(1 << 20);
        let mut compressed = Vec::new();
        for part in data.chunks(frame) {
            compressed.extend(zstd::encode_all(part, 3).unwrap());
        }
        let (out, checkpoints, _) = decode_all(Compression::Zstd, &compressed, Some(1));
        assert_eq!(out, data);
        // One at each frame's end (the last one's too).
        assert_eq!(checkpoints.len(), frames, "frames of {frame}");
        for checkpoint in &checkpoints {
            let input = &compressed[checkpoint.compressed as usize..];
            let mut decoder = Decoder::resume(Compression::Zstd, input, checkpoint, None);
            let mut rest = Vec::new();
            decoder.read_to_end(&mut rest).unwrap();
            assert_eq!(rest, &data[checkpoint.uncompressed as usize..]);
        }
    }

    #[test]
    fn sniffs_by_magic() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(Compression::sniff(&ZSTD_MAGIC), Compression::Zstd);
        assert_eq!(
            Compression::sniff(&[0x50, 0x2a, 0x4d, 0x18]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"etc/"), Compression::None);
    }
}
