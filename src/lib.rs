//! iofd: a feed origin that publishes a supplier's product catalog to many partners as
//! IOF 3.0 offers (IdoSell's Internet Offer Format) and CSV.
//!
//! Data flows one way through the stages, each a module with a small public surface:
//! `ingest → store → snapshot → changes → artifacts → http`; `render` is the library the
//! artifacts stage writes with. `docs/design.md` §2 has the map.

pub mod activity;
pub mod app;
pub mod artifacts;
pub mod catalog;
pub mod changes;
pub mod clock;
pub mod config;
pub mod fsio;
pub mod generate;
pub mod http;
pub mod inbox;
pub mod ingest;
pub mod load;
pub mod metrics;
pub mod partners;
pub mod publish;
pub mod purge;
pub mod render;
pub mod scaleout;
pub mod server;
pub mod signing;
pub mod snapshot;
pub mod store;
pub mod verify;
pub mod xsd;
