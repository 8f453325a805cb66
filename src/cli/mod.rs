//! The command-line tools that come with the bus but are not the bus: the benchmarks
//! (`lienthong bench`), the demo traffic of the mock unit systems (`lienthong demo`) and
//! the event sender for unit IT teams (`lienthong send`). They drive a bus from outside,
//! over HTTP, as a unit's system would; nothing in the bus depends on them.

pub mod bench;
pub mod demo;
pub mod runtime;
pub mod send;
