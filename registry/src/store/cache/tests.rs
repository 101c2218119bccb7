use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

fn digest(c: char) -> Digest {
    format!("sha256:{}", c.to_string().repeat(64))
        .parse()
        .expect("a digest")
}

/// Reads blob `c` of `size` bytes through `cache`, counting reads.
async fn get(cache: &BlobCache, reads: &AtomicUsize, c: char, size: usize) -> Bytes {
    cache
        .get_or_read(&digest(c), size as u64, || async {
            reads.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(Bytes::from(vec![c as u8; size]))
        })
        .await
        .expect("read")
}

#[tokio::test]
async fn concurrent_first_requests_read_once_then_memory_serves() {
    let cache = BlobCache::new(1000);
    let reads = AtomicUsize::new(0);
    let got = futures::future::join_all((0..4).map(|_| get(&cache, &reads, 'a', 300))).await;
    assert!(got.iter().all(|b| b.len() == 300 && b[0] == b'a'));
    assert_eq!(reads.load(Ordering::SeqCst), 1);
    get(&cache, &reads, 'a', 300).await;
    assert_eq!(reads.load(Ordering::SeqCst), 1);
    assert_eq!(cache.held(), 300);
}

#[tokio::test]
async fn the_least_recently_used_blob_goes_first() {
    let cache = BlobCache::new(1000);
    let reads = AtomicUsize::new(0);
    get(&cache, &reads, 'a', 400).await;
    get(&cache, &reads, 'b', 400).await;
    get(&cache, &reads, 'a', 400).await; // a is now the most recent
    get(&cache, &reads, 'c', 400).await; // over capacity: b goes
    assert_eq!(reads.load(Ordering::SeqCst), 3);
    assert_eq!(cache.held(), 800);
    get(&cache, &reads, 'a', 400).await;
    assert_eq!(reads.load(Ordering::SeqCst), 3, "a stayed");
    get(&cache, &reads, 'b', 400).await;
    assert_eq!(reads.load(Ordering::SeqCst), 4, "b was evicted");
    assert!(cache.held() <= 1000);
}

#[tokio::test]
async fn blobs_over_half_the_capacity_and_failed_reads_are_not_kept() {
    let cache = BlobCache::new(1000);
    let reads = AtomicUsize::new(0);
    get(&cache, &reads, 'a', 600).await;
    get(&cache, &reads, 'a', 600).await;
    assert_eq!(reads.load(Ordering::SeqCst), 2);
    assert_eq!(cache.held(), 0);
    assert!(!BlobCache::new(0).admits(1), "a capacity of 0 is off");

    let failed = cache
        .get_or_read(&digest('b'), 10, || async {
            Err(Error::Storage("disk on fire".into()))
        })
        .await;
    assert!(failed.is_err());
    get(&cache, &reads, 'b', 10).await;
    assert_eq!(
        reads.load(Ordering::SeqCst),
        3,
        "the failed read was retried"
    );
    assert_eq!(cache.held(), 10);
}
