//! The layer's gzip: one gzip member made of independent deflate segments of
//! [`SEGMENT`] bytes each, every segment either compressed (level 1) or stored.
//!
//! Why not a plain `GzEncoder`: at level 1 zlib-rs uses its "quick" strategy
//! (static Huffman codes, no stored-block fallback), which on incompressible
//! input — the jars, archives and images of a typical droplet — runs at
//! ~100 MB/s and *grows* the data by 5 %. A segment whose samples do not
//! compress is stored instead, at memcpy speed and with 5 bytes of overhead per
//! 64 KiB block, while compressible segments keep level 1.
//!
//! Deterministic: segment boundaries depend only on the byte offset and the
//! decision only on the segment's bytes, never on how writes were split.

use std::io::{self, Write};

use flate2::{Compress, Compression, Crc, FlushCompress};

/// Bytes per independently encoded segment.
pub const SEGMENT: usize = 256 * 1024;
/// Bytes per sample taken to decide whether a segment compresses.
const SAMPLE: usize = 4 * 1024;
/// Largest stored deflate block.
const STORED_BLOCK: usize = u16::MAX as usize;
/// gzip header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// The last deflate block: final, stored, empty.
const LAST_BLOCK: [u8; 5] = [0x01, 0x00, 0x00, 0xff, 0xff];

/// A gzip writer of segments; [`Gzip::finish`] writes the trailer.
pub struct Gzip<W> {
    inner: W,
    pending: Vec<u8>,
    encoded: Vec<u8>,
    deflate: Compress,
    sampler: Compress,
    sample_out: Vec<u8>,
    crc: Crc,
    started: bool,
}

impl<W: Write> Gzip<W> {
    /// A gzip stream written to `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            pending: Vec::with_capacity(SEGMENT),
            encoded: Vec::with_capacity(SEGMENT + SEGMENT / 16),
            deflate: Compress::new(Compression::fast(), false),
            sampler: Compress::new(Compression::fast(), false),
            sample_out: Vec::with_capacity(2 * SAMPLE),
            crc: Crc::new(),
            started: false,
        }
    }

    /// Ends the stream (last block, CRC and length) and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.start()?;
        if !self.pending.is_empty() {
            let segment = std::mem::take(&mut self.pending);
            self.segment(&segment)?;
        }
        self.inner.write_all(&LAST_BLOCK)?;
        self.inner.write_all(&self.crc.sum().to_le_bytes())?;
        self.inner.write_all(&self.crc.amount().to_le_bytes())?;
        Ok(self.inner)
    }

    fn start(&mut self) -> io::Result<()> {
        if !self.started {
            self.inner.write_all(&HEADER)?;
            self.started = true;
        }
        Ok(())
    }

    /// Encodes one segment, byte-aligned and not final, with no reference to
    /// earlier segments.
    fn segment(&mut self, data: &[u8]) -> io::Result<()> {
        self.crc.update(data);
        self.encoded.clear();
        if self.compresses(data)? {
            self.deflate.reset();
            deflate_all(
                &mut self.deflate,
                data,
                &mut self.encoded,
                FlushCompress::Sync,
            )?;
        } else {
            for block in data.chunks(STORED_BLOCK) {
                let len = block.len() as u16;
                self.encoded.push(0x00);
                self.encoded.extend_from_slice(&len.to_le_bytes());
                self.encoded.extend_from_slice(&(!len).to_le_bytes());
                self.encoded.extend_from_slice(block);
            }
        }
        self.inner.write_all(&self.encoded)
    }

    /// Whether any of three samples (start, middle, end) of `data` shrinks by
    /// more than 1/16 at level 1. Small segments are always compressed.
    fn compresses(&mut self, data: &[u8]) -> io::Result<bool> {
        if data.len() < 4 * SAMPLE {
            return Ok(true);
        }
        for start in [0, data.len() / 2, data.len() - SAMPLE] {
            let sample = &data[start..start + SAMPLE];
            self.sampler.reset();
            self.sample_out.clear();
            deflate_all(
                &mut self.sampler,
                sample,
                &mut self.sample_out,
                FlushCompress::Finish,
            )?;
            if self.sample_out.len() < SAMPLE - SAMPLE / 16 {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Deflates all of `input` into `out` and completes `flush`.
fn deflate_all(
    deflate: &mut Compress,
    input: &[u8],
    out: &mut Vec<u8>,
    flush: FlushCompress,
) -> io::Result<()> {
    let start = deflate.total_in();
    // Room for the worst case (stored blocks) up front, so one call does.
    out.reserve(input.len() + input.len() / 64 + 1024);
    loop {
        let consumed = (deflate.total_in() - start) as usize;
        if out.capacity() - out.len() < 1024 {
            out.reserve(input.len() - consumed + 1024);
        }
        let status = deflate
            .compress_vec(&input[consumed..], out, flush)
            .map_err(io::Error::other)?;
        let done = (deflate.total_in() - start) as usize == input.len();
        // Finished when everything went in and the flush left room to spare
        // (zlib's rule: a full output buffer may hold more pending output).
        if done && (status == flate2::Status::StreamEnd || out.capacity() > out.len()) {
            return Ok(());
        }
    }
}

impl<W: Write> Write for Gzip<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        self.start()?;
        let written = buf.len();
        while !buf.is_empty() {
            let take = (SEGMENT - self.pending.len()).min(buf.len());
            self.pending.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.pending.len() == SEGMENT {
                let segment = std::mem::take(&mut self.pending);
                self.segment(&segment)?;
                self.pending = segment;
                self.pending.clear();
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn random(len: usize, mut state: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    fn gzip(data: &[u8], write_size: usize) -> Vec<u8> {
        let mut gz = Gzip::new(Vec::new());
        for piece in data.chunks(write_size.max(1)) {
            gz.write_all(piece).unwrap();
        }
        gz.finish().unwrap()
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn mixed() -> Vec<u8> {
        let text = b"def handler(request):\n    return render(request, 'index.html')\n";
        let mut data = random(SEGMENT * 2 + 1000, 7);
        data.extend(text.iter().cycle().take(SEGMENT * 3 + 17));
        data.extend(random(SEGMENT / 3, 9));
        data
    }

    #[test]
    fn round_trips_and_stores_what_does_not_compress() {
        let data = mixed();
        let gz = gzip(&data, 100_000);
        assert_eq!(gunzip(&gz), data);
        // Random segments are stored (tiny overhead), text ones compressed.
        let random_part = SEGMENT * 2 + 1000 + SEGMENT / 3;
        assert!(
            gz.len() < random_part + random_part / 100 + 20_000,
            "{}",
            gz.len()
        );
        assert!(gz.len() > random_part);
    }

    #[test]
    fn output_does_not_depend_on_how_writes_were_split() {
        let data = mixed();
        let whole = gzip(&data, data.len());
        for size in [1 << 20, 65_536, 4097, 1000] {
            assert_eq!(gzip(&data, size), whole, "write size {size}");
        }
    }

    #[test]
    fn empty_and_tiny_streams_are_valid() {
        assert_eq!(gunzip(&gzip(b"", 1)), b"");
        assert_eq!(gunzip(&gzip(b"x", 1)), b"x");
        assert_eq!(gunzip(&Gzip::new(Vec::new()).finish().unwrap()), b"");
    }
}
