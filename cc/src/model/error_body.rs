//! CC's error body (v2 style), which the simulator answers with too.

use serde::{Deserialize, Serialize};

/// `{"code": 10005, "description": "...", "error_code": "CF-BadQueryParameter"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CcErrorBody {
    /// Numeric code from CC's `errors/v2.yml`.
    pub code: u32,
    /// What went wrong, naming the field or object.
    pub description: String,
    /// `CF-<Name>`.
    pub error_code: String,
}
