//! What every HTTP face of the bus shares — the units' ingress, the admin API and
//! dashboard, the lookups, the contract pages and the listener: the JSON error every
//! endpoint answers with, and bearer credentials kept as SHA-256 digests and compared in
//! constant time. A face takes these from here, never from another face.

mod credentials;
pub mod dossier_page;
mod error;
pub mod lookup_usage;

pub use credentials::{UnitKeys, constant_time_eq, digest_of_configured, key_digest};
pub use error::{ApiError, FieldProblem};
