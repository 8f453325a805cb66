//! The `[procedures]` section: what the bus does with a dossier of a procedure missing
//! from its unit's catalogue (the catalogue itself is [`crate::procedures`]).

use serde::Deserialize;

/// The `[procedures]` section.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ProceduresConfig {
    /// What a dossier whose `MaTTHC` is not in its unit's catalogue does.
    pub unknown: UnknownProcedure,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UnknownProcedure {
    /// Delivered, and counted apart on the dashboard and in the KPIs.
    #[default]
    Warn,
    /// A dead letter at its portal delivery, naming the field.
    Reject,
}
