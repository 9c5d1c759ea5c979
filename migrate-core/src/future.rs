//! The boxed future that the object-safe async traits of this crate return.

/// A boxed, sendable future: the return type of [`MigrationBackend`](crate::backend::MigrationBackend)
/// and [`RawConn`](crate::conn::RawConn) methods.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
