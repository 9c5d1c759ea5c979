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

/// FNV-1a, 64 bits: the stable hash that names the runner locks (PostgreSQL's advisory key,
/// MySQL's `GET_LOCK` name). It must never change: runners of two versions of this crate that
/// meet during a rolling deploy must take the same lock.
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
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
    fn lock_names_keep_the_hash_earlier_versions_used() {
        // FNV-1a 64 test vectors: the empty input is the offset basis.
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
