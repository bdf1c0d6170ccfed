//! # tariscope-sync
//!
//! A sync daemon between the Tariscope 4.6 billing API and a local SQLite mirror, and
//! `tariscope-sim`, an emulator of that API.
//!
//! Module map (see `README.md` for what is built so far):
//!
//! | module | owns | must not |
//! |---|---|---|
//! | [`model`] | domain types (subscribers, DNs, payments, charges, summaries), the push fields, desired rows and payments in canonical form | do I/O, know wire names or SQL |
//! | [`api`] | the Tariscope HTTP boundary: client, token manager, retry, limiter, decoding | touch SQLite, import `sim` |
//! | [`store`] | the SQLite mirror: migrations, tables, the writer thread | speak HTTP, import `sync` |
//! | [`sync`] | pull jobs, the pure push planner, the push executor | see reqwest or SQL directly |
//! | [`lock`] | per-job OS file locks beside the mirror: a job runs in one process at a time | know what a job does |
//! | [`records`] | reading CSV / JSON files: encoding, BOM, separator, records with header names | know what a column means |
//! | [`memory`] | one malloc arena, and handing the allocator's free pages back to the OS after each job run | allocate, or know what a job does |
//! | [`sim`] | the Tariscope emulator (`tariscope-sim`) | import `api` (it is an independent reading of the guide) |

pub mod api;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod daemon;
pub mod lock;
pub mod logging;
pub mod memory;
pub mod metric_names;
pub mod model;
pub mod notify;
pub mod records;
pub mod scheduler;
pub mod serve;
pub mod sim;
pub mod store;
pub mod sync;
