//! Streams a file out in large chunks, reading the next chunk on the blocking
//! pool while the current one is being sent.
//!
//! `tokio::fs::File` under `ReaderStream` costs a blocking-pool hop per chunk,
//! copies every byte twice in user space (its own buffer, then the stream's)
//! and reads only when asked. Here each chunk is read straight into the
//! `Bytes` that is sent, [`CHUNK`] at a time, one chunk ahead. No thread is held
//! between chunks, so slow clients do not tie up the blocking pool.

use std::fs::File;
use std::io::{self, Read};

use bytes::Bytes;
use futures::StreamExt;
use tokio::task::JoinHandle;

use super::backend::ByteStream;

/// Bytes per chunk read and sent. Measured on loopback with 4 parallel pulls:
/// 256 KiB beats 1 MiB (~10 %) and 4 MiB (~20 %) — the chunk stays in cache
/// between the read and the send.
pub const CHUNK: usize = 256 * 1024;

/// A read in flight: the file comes back with the chunk so the next read can
/// continue from its cursor.
type Pending = JoinHandle<(File, io::Result<Vec<u8>>)>;

fn read_ahead(mut file: File, len: u64) -> Pending {
    tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::with_capacity(len as usize);
        let read = (&mut file).take(len).read_to_end(&mut chunk).map(|_| chunk);
        (file, read)
    })
}

/// Streams `len` bytes of `file` from its current position. Ends early (with
/// an error) if the file is shorter than that.
pub fn stream(file: File, len: u64) -> ByteStream {
    let first = (len > 0).then(|| read_ahead(file, len.min(CHUNK as u64)));
    futures::stream::unfold((first, len), |(pending, left)| async move {
        let (file, read) = match pending?.await {
            Ok(done) => done,
            Err(e) => return Some((Err(io::Error::other(e)), (None, 0))),
        };
        let chunk = match read {
            Ok(chunk) if chunk.is_empty() => {
                let short = io::Error::new(io::ErrorKind::UnexpectedEof, "blob file is short");
                return Some((Err(short), (None, 0)));
            }
            Ok(chunk) => chunk,
            Err(e) => return Some((Err(e), (None, 0))),
        };
        let left = left - chunk.len() as u64;
        let next = (left > 0).then(|| read_ahead(file, left.min(CHUNK as u64)));
        Some((Ok(Bytes::from(chunk)), (next, left)))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use std::io::{Seek, SeekFrom, Write};

    async fn collect(file: File, len: u64) -> io::Result<Vec<u8>> {
        let chunks: Vec<Bytes> = stream(file, len).try_collect().await?;
        assert!(chunks.iter().all(|c| c.len() <= CHUNK));
        Ok(chunks.concat())
    }

    #[tokio::test]
    async fn streams_whole_files_and_ranges_in_chunks() {
        let data: Vec<u8> = (0..CHUNK * 3 + 12_345).map(|i| (i % 251) as u8).collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&data).unwrap();

        file.seek(SeekFrom::Start(0)).unwrap();
        let whole = collect(file.try_clone().unwrap(), data.len() as u64).await;
        assert_eq!(whole.unwrap(), data);

        file.seek(SeekFrom::Start(100)).unwrap();
        let range = collect(file.try_clone().unwrap(), CHUNK as u64 + 7).await;
        assert_eq!(range.unwrap(), &data[100..100 + CHUNK + 7]);

        file.seek(SeekFrom::Start(0)).unwrap();
        assert!(
            collect(file.try_clone().unwrap(), 0)
                .await
                .unwrap()
                .is_empty()
        );

        // A file shorter than promised ends the stream with an error.
        file.seek(SeekFrom::Start(data.len() as u64 - 10)).unwrap();
        assert!(collect(file, 20).await.is_err());
    }
}
