//! The command-line tools that come with the bus but are not the bus: the benchmarks
//! (`lienthong bench`), the demo traffic of the mock unit systems (`lienthong demo`) and
//! the event sender for unit IT teams (`lienthong send`), and the offline commands on the
//! audit log and the outbox's keys (`lienthong audit`, `lienthong outbox`). They drive a bus from outside,
//! over HTTP, as a unit's system would; nothing in the bus depends on them.

pub mod audit;
pub mod audit_lookups;
pub mod bench;
pub mod checked;
pub mod demo;
pub mod evidence;
pub mod outbox;
mod outbox_check;
pub mod procedures;
pub mod reference;
pub mod runtime;
pub mod send;
