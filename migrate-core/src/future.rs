//! The boxed future that the object-safe async traits of this crate return.

/// A boxed, sendable future: the return type of [`MigrationBackend`](crate::backend::MigrationBackend)
/// and [`RawConn`](crate::conn::RawConn) methods.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// `future`'s output, or the payload of a panic out of one of its polls. The future is dropped
/// before this returns either way. For the manager and the backends: a panic out of a
/// migration must not skip what has to happen after it.
#[doc(hidden)]
pub async fn catch_unwind<F: std::future::Future>(future: F) -> std::thread::Result<F::Output> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(std::task::Poll::Ready(output)) => std::task::Poll::Ready(Ok(output)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    })
    .await
}
