//! `tariscope-sim`: an emulator of the Tariscope 4.6 HTTP API, in-process and as the
//! `tariscope-sim` binary.
//!
//! Owns: serving `docs/wire-profile.md` exactly (and its wire variants), JWT auth bound to
//! the caller's IP, per-user method rights, a deterministic seeded dataset, writes that
//! change state, fault injection, and the `/_sim/` control API. See `docs/sim.md`.
//! Must not: import `crate::api` or `crate::model`: it is an independent reading of the
//! guide, with its own records, serialisers and parameter parsing.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use tariscope_sync::sim::{SimConfig, SimHandle};
//! let sim = SimHandle::start(SimConfig::default()).await?;
//! println!("{}", sim.base_url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod adjustments;
mod auth;
mod catalog;
mod config;
mod control;
mod data;
mod dataset;
mod dispatch;
mod error;
mod generate;
mod handlers;
mod history;
mod names;
mod params;
mod routes;
mod server;
mod state;
mod value;

pub use config::{
    DatasetConfig, DateStyle, Envelope, Fault, FaultPlan, KeyCase, SimConfig, SimUser,
    SystemFields, WireVariant,
};
pub use data::{
    SimAdjustment, SimCharge, SimDepartment, SimDn, SimNode, SimPayment, SimPbx, SimService,
    SimSnapshot, SimSubscriber, SimTariff, SimTariffPlan, SimTariffTime,
};
pub use generate::{FIRST_PBX_ID, FIRST_SUBSCRIBER_ID};
pub use server::SimHandle;

/// Every API method name the emulator serves (including `api.auth`).
pub fn api_methods() -> impl Iterator<Item = &'static str> {
    routes::METHODS.iter().map(|(name, _)| *name)
}
