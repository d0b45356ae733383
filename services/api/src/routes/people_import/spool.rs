//! The import's body, copied to an anonymous temporary file before any row is written. A
//! client that uploads slowly, or stalls, then holds only its socket and a file: database
//! connections are taken once the whole body is here and are read at disk speed. (Before,
//! each import held two pooled connections from its first line to its last byte, and five
//! stalled uploads starved every other request.) A body that stalls longer than
//! `API_BODY_READ_TIMEOUT_MS` is cut off by the server's body timeout.

use crate::ApiError;
use axum::body::Body;
use axum::http::StatusCode;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::io::SeekFrom;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

/// A request body held in a temporary file (removed by the OS when closed, even after a crash).
pub(super) struct Spooled {
    file: tokio::fs::File,
    pub(super) len: u64,
}

/// Copies `body` to a temporary file; refuses it with 413 past `limit` bytes, 408 when the
/// client stalls past the body timeout.
pub(super) async fn spool(body: Body, limit: u64, what: &str) -> Result<Spooled, ApiError> {
    let file = tempfile::tempfile().map_err(|e| spool_failed(&e))?;
    let mut file = tokio::fs::File::from_std(file);
    let mut stream = body.into_data_stream();
    let mut len: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(body_error)?;
        len += chunk.len() as u64;
        if len > limit {
            return Err(ApiError::Status {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "payload_too_large",
                message: format!("{what} is larger than {limit} bytes; nothing was imported"),
            });
        }
        file.write_all(&chunk).await.map_err(|e| spool_failed(&e))?;
    }
    file.flush().await.map_err(|e| spool_failed(&e))?;
    Ok(Spooled { file, len })
}

impl Spooled {
    /// The body again, from the start, in chunks.
    pub(super) async fn into_stream(
        mut self,
    ) -> Result<impl Stream<Item = std::io::Result<Bytes>>, ApiError> {
        self.file
            .seek(SeekFrom::Start(0))
            .await
            .map_err(|e| spool_failed(&e))?;
        Ok(ReaderStream::with_capacity(self.file, 64 * 1024))
    }

    /// The whole body in memory (for a JSON document, already bounded by its limit).
    pub(super) async fn into_bytes(self) -> Result<Vec<u8>, ApiError> {
        let mut bytes = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        let mut stream = std::pin::pin!(self.into_stream().await?);
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| spool_failed(&e))?);
        }
        Ok(bytes)
    }
}

/// A body that could not be read: the client stalled past the body timeout (408), or it
/// went away or sent a broken stream (400).
fn body_error(e: axum::Error) -> ApiError {
    let inner = e.into_inner();
    if inner.is::<tower_http::timeout::TimeoutError>() {
        return ApiError::Status {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "body_timeout",
            message: "the request body stalled longer than the server's body read timeout; nothing was imported".into(),
        };
    }
    ApiError::BadRequest {
        code: "body_read_failed",
        message: format!("reading the request body failed: {inner}"),
    }
}

fn spool_failed(e: &std::io::Error) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("spooling the import body: {e}"))
}
