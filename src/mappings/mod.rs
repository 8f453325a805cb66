//! Mappings at run time: which compiled mapping turns a route's events into each target's
//! format, loaded at start and reloaded on SIGHUP or when a file changes.

pub mod cli;
