//! The Tariscope API boundary: [`TariscopeClient`] and what it is made of.
//!
//! Owns: everything between the domain types (`crate::model`) and HTTP. Must not: touch
//! SQLite, import `crate::sim` (the emulator is an independent reading of the guide), or
//! log a password or a token. See `docs/client.md`.
//!
//! | file | owns |
//! |---|---|
//! | `client.rs` | the call loop: profile, token, re-login, retries |
//! | `http.rs` | one HTTP request: limiter, span, encoding, login, error bodies |
//! | `methods.rs`, `system.rs` | one typed async fn per API method |
//! | `auth.rs` | [`TokenManager`]: JWT cache, renewal, single flight |
//! | `retry.rs` | [`RetryPolicy`]; [`retry::classify`], [`retry::outcome_unknown`], [`retry::kind`]: every decision about a failure |
//! | `cause.rs` | [`cause::ConnectCause`]: refused, DNS, TLS certificate, connect timeout |
//! | `fence.rs` | [`Fence`]: the check a write passes right before it is sent (a leader still leads) |
//! | `limit.rs` | [`Limiter`]: rate (governor) and concurrency cap |
//! | `profile.rs` | [`ApiProfile`]: verb, path, encoding, field names per method |
//! | `encode.rs` | request parameters to JSON / form / query |
//! | `wire.rs`, `xml.rs`, `scalars.rs` | tolerant reading of JSON and XML bodies and values |
//! | `decode.rs` | records to model types |
//! | `listing.rs` | [`listing::Listing`]: a list answer decoded one element at a time |
//! | `config.rs`, `error.rs` | [`ClientConfig`], [`Secret`], [`ApiError`] |

pub mod auth;
pub mod cause;
mod client;
pub mod config;
pub mod decode;
pub mod encode;
pub mod error;
pub mod fence;
mod http;
pub mod limit;
pub mod listing;
mod methods;
pub mod profile;
pub mod retry;
pub mod scalars;
mod system;
pub mod wire;
pub mod xml;

pub use auth::TokenManager;
pub use client::{ClientStats, TariscopeClient};
pub use config::{ClientConfig, Format, RetrySettings, Secret};
pub use error::{ApiError, ConnectCause};
pub use fence::Fence;
pub use limit::Limiter;
pub use profile::{ApiProfile, Encoding, MethodProfile, Verb};
pub use retry::RetryPolicy;
