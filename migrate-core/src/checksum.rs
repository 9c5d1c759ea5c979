//! Checksums: the macro hashes each migration's tokens; the core chains them per table, so the
//! "already up to date" check can verify a whole applied chain against one stored value.

/// The prefix that names the algorithm, stored with every checksum so that a future change of
/// algorithm is recognised instead of reported as drift.
pub(crate) const ALGORITHM: &str = "fnv1a64";

/// FNV-1a, 64 bits: stable across compilers and platforms, and dependency-free.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The checksum of the chain up to a step, from the chain's checksum up to its parent.
pub(crate) fn combine(previous: &str, step: &str) -> String {
    let mut input = Vec::with_capacity(previous.len() + step.len() + 1);
    input.extend_from_slice(previous.as_bytes());
    input.push(b'|');
    input.extend_from_slice(step.as_bytes());
    format!("{ALGORITHM}:{:016x}", fnv1a64(&input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn combine_depends_on_order_and_content() {
        let ab = combine(&combine("", "a"), "b");
        let ba = combine(&combine("", "b"), "a");
        assert_ne!(ab, ba);
        assert!(ab.starts_with("fnv1a64:"));
        assert_eq!(ab, combine(&combine("", "a"), "b"));
    }
}
