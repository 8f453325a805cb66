//! The `portal` section of a `kind = "portal"` target, as the config holds it.

pub use crate::config::PortalAuthConfig;
