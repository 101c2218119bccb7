//! Random version-4 UUIDs for the guids the simulator hands out.

/// A new random (version 4) UUID in its 36-character text form.
pub fn new_guid() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // The OS random source failing is not something a simulator can fix;
        // fall back to the clock and a counter, which is still unique per process.
        fallback(&mut bytes);
    }
    format_v4(bytes)
}

/// A UUID derived from `seed` (same seed, same UUID): fake apps keep their guids
/// across restarts so re-seeding finds them.
pub fn guid_from_seed(seed: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    format_v4(bytes)
}

fn format_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn fallback(bytes: &mut [u8; 16]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    bytes[..8].copy_from_slice(&nanos.to_le_bytes());
    bytes[8..].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_look_like_uuids_and_differ() {
        let a = new_guid();
        let b = new_guid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_eq!(guid_from_seed("x"), guid_from_seed("x"));
        assert_ne!(guid_from_seed("x"), guid_from_seed("y"));
    }
}
