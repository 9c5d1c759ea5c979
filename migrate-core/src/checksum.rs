//! Chain checksums: each step's checksum comes from the macro (SHA-256 over what the step runs);
//! the core chains them per table, so the "already up to date" check can verify a whole applied
//! chain against one stored value.

use sha2::{Digest, Sha256};

/// The prefix of a stored chain checksum: 64 bits of SHA-256 over the chain.
pub(crate) const ALGORITHM: &str = "sha256-64";

/// The prefix of the checksums written before SHA-256 (FNV-1a over tokens). A database that
/// holds them keeps working: they are trusted as they are and re-pinned to SHA-256 by the next
/// run that takes the lock.
pub(crate) const LEGACY_PREFIX: &str = "fnv1a64:";

/// The first eight bytes of SHA-256: a stable 64-bit hash for names (lock keys).
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    let digest = Sha256::digest(bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// The checksum of the chain up to a step, from the chain's checksum up to its parent (0 for
/// the first step). Kept as a number; [`render`] gives the stored form.
pub(crate) fn combine(previous: u64, step: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(previous.to_le_bytes());
    hasher.update(step.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// The stored form of a chain checksum.
pub(crate) fn render(checksum: u64) -> String {
    format!("{ALGORITHM}:{checksum:016x}")
}

/// Whether a stored checksum was written by the earlier algorithm.
pub(crate) fn is_legacy(stored: &str) -> bool {
    stored.starts_with(LEGACY_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combine_depends_on_order_and_content() {
        let ab = combine(combine(0, "a"), "b");
        let ba = combine(combine(0, "b"), "a");
        assert_ne!(ab, ba);
        assert_eq!(ab, combine(combine(0, "a"), "b"));
        assert_ne!(combine(0, "a"), combine(1, "a"));
        let rendered = render(ab);
        assert!(rendered.starts_with("sha256-64:") && rendered.len() == "sha256-64:".len() + 16);
        assert!(is_legacy("fnv1a64:00000000000000ff") && !is_legacy(&rendered));
    }

    #[test]
    fn stable_hash_is_sha256() {
        // SHA-256("abc") starts ba 78 16 bf 8f 01 cf ea.
        assert_eq!(
            stable_hash(b"abc"),
            u64::from_le_bytes([0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea])
        );
    }
}
