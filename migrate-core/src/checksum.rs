//! Checksums: the macro hashes each migration's tokens; the core chains them per table, so the
//! "already up to date" check can verify a whole applied chain against one stored value.

/// The prefix that names the algorithm, stored with every checksum so that a future change of
/// algorithm is recognised instead of reported as drift.
pub(crate) const ALGORITHM: &str = "fnv1a64";

/// FNV-1a's offset basis: the hash of nothing.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64 bits, continued from `hash`: stable across compilers and platforms, and
/// dependency-free.
fn fnv1a64(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// FNV-1a of `bytes`: a stable 64-bit hash for names derived from configuration (lock keys).
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    fnv1a64(FNV_OFFSET, bytes)
}

/// The checksum of the chain up to a step, from the chain's checksum up to its parent (0 for
/// the first step). Kept as a number; [`render`] gives the stored form.
pub(crate) fn combine(previous: u64, step: &str) -> u64 {
    fnv1a64(fnv1a64(previous ^ FNV_OFFSET, step.as_bytes()), b"|")
}

/// The stored form of a chain checksum.
pub(crate) fn render(checksum: u64) -> String {
    format!("{ALGORITHM}:{checksum:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a64(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn combine_depends_on_order_and_content() {
        let ab = combine(combine(0, "a"), "b");
        let ba = combine(combine(0, "b"), "a");
        assert_ne!(ab, ba);
        assert_eq!(ab, combine(combine(0, "a"), "b"));
        assert!(render(ab).starts_with("fnv1a64:") && render(ab).len() == 24);
    }
}
