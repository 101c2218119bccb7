//! The threads of a conversion and the bounded channels between them.
//!
//! ```text
//! read: input → count, sha256, sha1 ──chunks──▶ rewrite: gunzip → check → tar
//!   ──chunks──▶ compress: sha256 (diff id) → gzip → sha256 (digest) → output
//! ```
//!
//! Each channel holds at most [`DEPTH`] chunks of about [`CHUNK`] bytes, so
//! memory stays bounded whatever the droplet's size. A stage that stops drops
//! its ends of the channels, which stops its neighbours at their next send or
//! receive: nothing waits for a peer that is gone.

use std::io::{self, Read, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};

use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use super::gzip::Gzip;
use crate::digest::Hasher;
use crate::{Digest, Error};

/// Bytes per chunk handed between stages.
pub const CHUNK: usize = 1 << 20;
/// Chunks a channel holds before its sender waits.
pub const DEPTH: usize = 4;

/// Why a conversion stopped on a limit, if it did; set by whichever stage
/// notices first (the tar and gzip layers wrap I/O errors, losing the cause).
pub type Tripped = OnceLock<String>;

/// Hex hashes of the droplet as received.
pub struct InputHashes {
    pub sha256: String,
    pub sha1: String,
}

/// Fills a chunk from `input` (short only at the end of input), checking
/// `stopped` between reads so a refused droplet is not read on.
fn fill(input: &mut impl Read, stopped: &AtomicBool) -> io::Result<Vec<u8>> {
    let mut chunk = vec![0; CHUNK];
    let mut filled = 0;
    while filled < CHUNK && !stopped.load(Ordering::Relaxed) {
        match input.read(&mut chunk[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    chunk.truncate(filled);
    Ok(chunk)
}

/// The read stage: reads `input` in chunks, counting it against `limit` and
/// hashing it, and sends the chunks on. A read error or the limit is sent as
/// the last message; the end of input closes the channel. Stops early when
/// the receiving [`Chunks`] is dropped.
pub fn read(
    mut input: impl Read,
    chunks: SyncSender<io::Result<Vec<u8>>>,
    stopped: &AtomicBool,
    limit: u64,
    tripped: &Tripped,
) -> InputHashes {
    let mut sha256 = Sha256::new();
    let mut sha1 = Sha1::new();
    let mut total = 0u64;
    while !stopped.load(Ordering::Relaxed) {
        let message = match fill(&mut input, stopped) {
            Ok(chunk) if chunk.is_empty() => break,
            Ok(chunk) => {
                total += chunk.len() as u64;
                if total > limit {
                    let why = format!("droplet exceeds the limit of {limit} bytes");
                    let _ = tripped.set(why.clone());
                    Err(io::Error::other(why))
                } else {
                    sha256.update(&chunk);
                    sha1.update(&chunk);
                    Ok(chunk)
                }
            }
            Err(e) => Err(e),
        };
        let last = message.is_err();
        if chunks.send(message).is_err() || last {
            break;
        }
    }
    InputHashes {
        sha256: hex::encode(sha256.finalize()),
        sha1: hex::encode(sha1.finalize()),
    }
}

/// The receiving end of the read stage, as a reader. Dropping it sets
/// `stopped`, which ends the read stage between two reads of its input.
pub struct Chunks<'a> {
    chunks: Receiver<io::Result<Vec<u8>>>,
    stopped: &'a AtomicBool,
    current: Vec<u8>,
    at: usize,
}

impl<'a> Chunks<'a> {
    /// Reads what the read stage sends.
    pub fn new(chunks: Receiver<io::Result<Vec<u8>>>, stopped: &'a AtomicBool) -> Self {
        Self {
            chunks,
            stopped,
            current: Vec::new(),
            at: 0,
        }
    }
}

impl Drop for Chunks<'_> {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
    }
}

impl Read for Chunks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match self.chunks.recv() {
                Ok(chunk) => {
                    self.current = chunk?;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// What the rewrite stage sends to the compress stage.
pub enum Layer {
    /// The next bytes of the uncompressed layer.
    Bytes(Vec<u8>),
    /// The layer is complete.
    End,
}

/// The sending end of the compress stage, as a writer that batches into
/// chunks. Dropping it without [`LayerWriter::finish`] aborts the layer.
pub struct LayerWriter {
    chunks: SyncSender<Layer>,
    pending: Vec<u8>,
}

fn compressor_gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the layer writer stopped")
}

impl LayerWriter {
    /// Writes to the compress stage at the other end of `chunks`.
    pub fn new(chunks: SyncSender<Layer>) -> Self {
        Self {
            chunks,
            pending: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(CHUNK));
        self.chunks
            .send(Layer::Bytes(chunk))
            .map_err(|_| compressor_gone())
    }

    /// Sends what is left and marks the layer complete.
    pub fn finish(mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.send()?;
        }
        self.chunks.send(Layer::End).map_err(|_| compressor_gone())
    }
}

impl Write for LayerWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.pending.len());
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hashes of the layer as written.
pub struct Compressed {
    /// Digest of the uncompressed layer.
    pub diff_id: Digest,
    /// Digest of the compressed layer.
    pub digest: Digest,
    /// Size of the compressed layer.
    pub size: u64,
}

/// Hashes everything written through it.
struct Hashing<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The compress stage: hashes the uncompressed layer, gzips it, hashes and
/// writes the result to `output`. `Ok(None)` when the rewrite stage stopped
/// before the end (its error is the one to report).
pub fn compress(chunks: Receiver<Layer>, output: impl Write) -> Result<Option<Compressed>, Error> {
    let write_err = |e: io::Error| Error::Storage(format!("writing the layer: {e}"));
    let mut diff = Hasher::default();
    let mut gzip = Gzip::new(Hashing {
        inner: output,
        hasher: Hasher::default(),
    });
    loop {
        match chunks.recv() {
            Ok(Layer::Bytes(chunk)) => {
                diff.update(&chunk);
                gzip.write_all(&chunk).map_err(write_err)?;
            }
            Ok(Layer::End) => break,
            Err(_) => return Ok(None),
        }
    }
    let mut compressed = gzip.finish().map_err(write_err)?;
    compressed.flush().map_err(write_err)?;
    Ok(Some(Compressed {
        diff_id: diff.finish(),
        size: compressed.hasher.len(),
        digest: compressed.hasher.finish(),
    }))
}
