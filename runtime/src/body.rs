//! [`read_limited`]: an HTTP answer's body, read no further than a limit.

use bytes::{Bytes, BytesMut};

/// What [`read_limited`] read.
#[derive(Debug)]
pub enum Limited {
    /// The whole body, within the limit.
    Whole(Bytes),
    /// The body is longer than the limit: at least `size` bytes. `head` is
    /// its first `limit` bytes when truncating, else empty.
    Over {
        /// Bytes the body has at least (declared or seen).
        size: u64,
        /// Its start, when truncating.
        head: Bytes,
    },
}

/// Reads `response`'s body up to `limit` bytes. Without `truncate`, a body
/// over the limit is refused: before reading any of it when its
/// `Content-Length` says so, else as soon as it passes the limit. With
/// `truncate`, the first `limit` bytes are kept and the rest is not read.
pub async fn read_limited(
    mut response: reqwest::Response,
    limit: u64,
    truncate: bool,
) -> Result<Limited, reqwest::Error> {
    if !truncate && let Some(size) = response.content_length().filter(|size| *size > limit) {
        return Ok(Limited::Over {
            size,
            head: Bytes::new(),
        });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit.saturating_sub(body.len() as u64);
        if chunk.len() as u64 > room {
            let size = body.len() as u64 + chunk.len() as u64;
            let head = if truncate {
                body.extend_from_slice(&chunk[..room as usize]);
                body.freeze()
            } else {
                Bytes::new()
            };
            return Ok(Limited::Over { size, head });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Limited::Whole(body.freeze()))
}
