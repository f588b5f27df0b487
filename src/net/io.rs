//! What the public stream types share: the `futures` (and, with `tokio-io`, tokio) read/write trait impls over an
//! `engine::AnyStream`, and the owned halves of TCP and Unix streams. Which engine carries a connection is the
//! engine dispatch's business (`crate::engine`).

/// Implements `futures::io::AsyncRead` (and, with the `tokio-io` feature, `tokio::io::AsyncRead`) for a type
/// whose `io` field is an `engine::AnyStream<_>`, after the runtime's cooperative budget
/// (`coop`) lets the task go on.
///
/// The tokio impl copies straight into the caller's `ReadBuf` (`put_slice`: its spare room is never zeroed,
/// which matters for callers such as hyper that wrap fresh, uninitialised room in a new `ReadBuf` per read), so
/// both traits cost the same single copy out of the stream's buffer.
macro_rules! async_read {
    ($t:ty) => {
        impl ::futures::io::AsyncRead for $t {
            fn poll_read(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &mut [u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                ::std::task::ready!($crate::runtime::coop::poll_proceed(cx));
                self.io.poll_read(cx, buf)
            }
        }

        #[cfg(feature = "tokio-io")]
        impl ::tokio::io::AsyncRead for $t {
            fn poll_read(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &mut ::tokio::io::ReadBuf<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                ::std::task::ready!($crate::runtime::coop::poll_proceed(cx));
                let max = buf.remaining();
                self.io.poll_read_with(cx, max, |bytes| buf.put_slice(bytes)).map_ok(drop)
            }
        }
    };
}
pub(crate) use async_read;

/// Implements `futures::io::AsyncWrite` (and, with the `tokio-io` feature, `tokio::io::AsyncWrite`) for a type
/// whose `io` field is an `engine::AnyStream<_>`, after the runtime's cooperative budget
/// (`coop`) lets the task go on. `poll_close` / `poll_shutdown` flush, then shut the write side
/// down (`uv_shutdown`).
macro_rules! async_write {
    ($t:ty) => {
        impl ::futures::io::AsyncWrite for $t {
            fn poll_write(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &[u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                ::std::task::ready!($crate::runtime::coop::poll_proceed(cx));
                self.io.poll_write(cx, buf)
            }
            fn poll_flush(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                self.io.poll_flush(cx)
            }
            fn poll_close(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                self.io.poll_shutdown(cx)
            }
        }

        #[cfg(feature = "tokio-io")]
        impl ::tokio::io::AsyncWrite for $t {
            fn poll_write(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
                buf: &[u8],
            ) -> ::std::task::Poll<::std::io::Result<usize>> {
                ::std::task::ready!($crate::runtime::coop::poll_proceed(cx));
                self.io.poll_write(cx, buf)
            }
            fn poll_flush(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                self.io.poll_flush(cx)
            }
            fn poll_shutdown(
                self: ::std::pin::Pin<&mut Self>,
                cx: &mut ::std::task::Context<'_>,
            ) -> ::std::task::Poll<::std::io::Result<()>> {
                self.io.poll_shutdown(cx)
            }
        }
    };
}
pub(crate) use async_write;

/// The owned halves of a stream type (`$stream` with an `io: AnyStream<$raw>` field, and a module-level
/// `fn peer_addr(&AnyStream<$raw>) -> io::Result<$addr>`): `into_split`, the stream's `Drop` (linger when last),
/// `OwnedReadHalf`/`OwnedWriteHalf` with `reunite` and `peer_addr`, and the read/write trait impls of all three.
/// Written once for TCP and Unix streams.
macro_rules! owned_halves {
    ($stream:ident, $raw:ty, $addr:ty) => {
        impl $stream {
            /// Splits into a read half and a write half that can move into different tasks. The connection
            /// closes when both are dropped.
            pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
                let io = self.io.clone();
                drop(self); // not the last owner: no linger
                (OwnedReadHalf { io: io.clone() }, OwnedWriteHalf { io })
            }
        }

        impl Drop for $stream {
            fn drop(&mut self) {
                self.io.release_if_last();
            }
        }

        #[doc = concat!("The read half of [`", stringify!($stream), "::into_split`].")]
        pub struct OwnedReadHalf {
            io: $crate::engine::AnyStream<$raw>,
        }

        #[doc = concat!("The write half of [`", stringify!($stream), "::into_split`]; `close()` shuts down the write side.")]
        pub struct OwnedWriteHalf {
            io: $crate::engine::AnyStream<$raw>,
        }

        impl Drop for OwnedReadHalf {
            fn drop(&mut self) {
                self.io.release_if_last();
            }
        }

        impl Drop for OwnedWriteHalf {
            fn drop(&mut self) {
                self.io.release_if_last();
            }
        }

        impl OwnedReadHalf {
            /// Puts the halves back together; `Err` gives them back if they came from different streams.
            pub fn reunite(self, other: OwnedWriteHalf) -> Result<$stream, (OwnedReadHalf, OwnedWriteHalf)> {
                if !self.io.same(&other.io) {
                    return Err((self, other));
                }
                let io = self.io.clone();
                drop((self, other));
                Ok($stream { io })
            }

            #[doc = concat!("Copies the next bytes received into `buf` without taking them, as [`", stringify!($stream), "::peek`]:")]
            /// the next read (through this half) returns them again. Waits until at least one byte is there;
            /// returns how many were copied, `0` at end-of-stream (or for an empty `buf`).
            pub async fn peek(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                std::future::poll_fn(|cx| self.io.poll_peek(cx, buf)).await
            }

            /// The peer's address.
            pub fn peer_addr(&self) -> std::io::Result<$addr> {
                peer_addr(&self.io)
            }
        }

        impl OwnedWriteHalf {
            /// The peer's address.
            pub fn peer_addr(&self) -> std::io::Result<$addr> {
                peer_addr(&self.io)
            }
        }

        impl std::fmt::Debug for OwnedReadHalf {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("OwnedReadHalf").finish_non_exhaustive()
            }
        }

        impl std::fmt::Debug for OwnedWriteHalf {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("OwnedWriteHalf").finish_non_exhaustive()
            }
        }

        $crate::net::io::async_read!($stream);
        $crate::net::io::async_write!($stream);
        $crate::net::io::async_read!(OwnedReadHalf);
        $crate::net::io::async_write!(OwnedWriteHalf);
    };
}
pub(crate) use owned_halves;

/// The OS handle accessors of a socket type whose field `$field` is an engine role (`as_fd`/`as_socket`):
/// `AsFd`/`AsRawFd` on Unix, `AsSocket`/`AsRawSocket` on Windows, so that users can set any option (with
/// `socket2::SockRef`, say).
macro_rules! os_socket {
    ($ty:ty, $field:ident) => {
        #[cfg(unix)]
        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.$field.as_fd()
            }
        }

        #[cfg(unix)]
        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&self.$field.as_fd())
            }
        }

        #[cfg(windows)]
        impl std::os::windows::io::AsSocket for $ty {
            fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
                self.$field.as_socket()
            }
        }

        #[cfg(windows)]
        impl std::os::windows::io::AsRawSocket for $ty {
            fn as_raw_socket(&self) -> std::os::windows::io::RawSocket {
                std::os::windows::io::AsRawSocket::as_raw_socket(&self.$field.as_socket())
            }
        }
    };
}
pub(crate) use os_socket;
