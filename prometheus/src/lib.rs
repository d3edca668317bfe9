//! One client of the Prometheus HTTP API for all of leadtime: the KEDA scaler's history and
//! instant queries, and backtests read straight from a user's Prometheus.
//!
//! [`Prometheus`] calls `/api/v1/query_range`, `/api/v1/query` and `/api/v1/parse_query` within
//! [`Bounds`] (calls in flight, per tenant, bytes and series of an answer, decoded as it is read
//! by [`answer`]), reached as [`Access`] says (CA file, client certificate, bearer token, basic
//! auth, extra headers); long ranges go in pages of [`range::CHUNK_POINTS`].

pub mod access;
pub mod answer;
mod client;
pub mod range;

pub use access::{Access, AccessError};
pub use client::{Bounds, FetchError, Prometheus, Range};
pub use range::{chunks, Chunk, CHUNK_POINTS};
