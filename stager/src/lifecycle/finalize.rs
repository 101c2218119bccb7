//! Arguments of the last buildpack's scripts: `bin/finalize <build_dir>
//! <cache_dir> <deps_dir> <index> <profile_dir>` and the legacy `bin/compile
//! <build_dir> <cache_dir>`.

use std::ffi::OsString;

use super::Layout;

/// `bin/finalize`'s arguments for buildpack `index`.
pub fn finalize_args(layout: &Layout, index: usize) -> Vec<OsString> {
    vec![
        layout.build_dir.clone().into(),
        layout.cache_dir.clone().into(),
        layout.deps_dir.clone().into(),
        index.to_string().into(),
        layout.profile_dir.clone().into(),
    ]
}

/// `bin/compile`'s arguments.
pub fn compile_args(layout: &Layout) -> Vec<OsString> {
    vec![
        layout.build_dir.clone().into(),
        layout.cache_dir.clone().into(),
    ]
}
