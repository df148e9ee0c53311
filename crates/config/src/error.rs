//! Errors: [`HostDtError`] for a host DT the hypervisor cannot use, and
//! [`ConfigError`] for one finding of the config validator.
//!
//! A config finding always carries the config node path, what is wrong, and
//! a hint on how to fix it; its `Display` is one line, the same text on the
//! hypervisor console and in `xtask validate`.

use alloc::string::String;
use core::fmt;

use crate::dt::DtbError;

/// Why the host DT could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostDtError {
    /// The blob is not a readable DTB.
    Malformed(DtbError),
    /// A node the hypervisor needs is absent.
    MissingNode {
        /// What was looked for, e.g. `a node compatible with "arm,gic-v3"`.
        what: &'static str,
    },
    /// A node lacks a required property.
    MissingProperty {
        /// Node path.
        node: String,
        /// Property name.
        property: &'static str,
    },
    /// A property has the wrong size or an unusable value.
    BadProperty {
        /// Node path.
        node: String,
        /// Property name.
        property: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No node has this path.
    NotFound {
        /// The path looked up.
        path: String,
    },
    /// The node exists but has no CPU-addressable `reg`.
    NotADevice {
        /// The node path.
        path: String,
    },
}

impl fmt::Display for HostDtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostDtError::Malformed(e) => write!(f, "host DT: {e}"),
            HostDtError::MissingNode { what } => write!(f, "host DT: no {what}"),
            HostDtError::MissingProperty { node, property } => {
                write!(f, "host DT: node {node} has no \"{property}\" property")
            }
            HostDtError::BadProperty { node, property, reason } => {
                write!(f, "host DT: node {node}: property \"{property}\": {reason}")
            }
            HostDtError::NotFound { path } => write!(f, "host DT: no node {path}"),
            HostDtError::NotADevice { path } => {
                write!(f, "host DT: node {path} is not a memory-mapped device (no usable reg)")
            }
        }
    }
}

/// One finding of the config validator (an error or a warning).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Config node path, e.g. `/guests/linux0/rtc@9010000` (`/` for the root).
    pub path: String,
    /// The guest the finding belongs to; `None` for config-wide findings.
    pub guest: Option<String>,
    /// What is wrong, one sentence without a final period.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (hint: {})", self.path, self.message, self.hint)
    }
}

/// Identifies the guest a finding belongs to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Who<'a> {
    /// Index of the guest in DT order.
    pub index: usize,
    /// Guest name.
    pub name: &'a str,
}

/// Collects every finding; a guest with an error is marked rejected. It
/// keeps at most [`crate::MAX_FINDINGS`] of them (a hostile config could
/// otherwise fill the hypervisor heap with messages) and counts the rest.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub errors: alloc::vec::Vec<ConfigError>,
    pub warnings: alloc::vec::Vec<ConfigError>,
    pub rejected: alloc::vec::Vec<bool>,
    /// The name of each rejected guest, by index (kept even when its errors
    /// are past the cap).
    pub names: alloc::vec::Vec<Option<String>>,
    /// Errors and warnings not kept, past the cap.
    pub dropped_errors: usize,
    pub dropped_warnings: usize,
}

impl Report {
    fn full(&self) -> bool {
        self.errors.len() + self.warnings.len() >= crate::limits::MAX_FINDINGS
    }

    /// Adds the one line that counts the findings past the cap, if any.
    pub fn close(&mut self) {
        let (e, w) = (self.dropped_errors, self.dropped_warnings);
        if e + w > 0 {
            self.errors.push(Self::make(
                None,
                "/",
                alloc::format!("{e} more error(s) and {w} more warning(s) are not shown"),
                "fix the findings above and validate again: a report keeps at most 200 findings",
            ));
        }
    }

    fn make(who: Option<Who<'_>>, path: &str, message: String, hint: &str) -> ConfigError {
        ConfigError {
            path: one_line(path),
            guest: who.map(|w| one_line(w.name)),
            message: one_line(&message),
            hint: one_line(hint),
        }
    }

    /// A config-wide error (no guest is rejected by it).
    pub fn global(&mut self, path: &str, message: String, hint: &str) {
        if self.full() {
            self.dropped_errors += 1;
            return;
        }
        self.errors.push(Self::make(None, path, message, hint));
    }

    /// An error that rejects guest `who`.
    pub fn error(&mut self, who: Who<'_>, path: &str, message: String, hint: &str) {
        if self.rejected.len() <= who.index {
            self.rejected.resize(who.index.saturating_add(1), false);
        }
        if let Some(r) = self.rejected.get_mut(who.index) {
            *r = true;
        }
        if self.names.len() <= who.index {
            self.names.resize(who.index.saturating_add(1), None);
        }
        if let Some(slot @ None) = self.names.get_mut(who.index) {
            *slot = Some(one_line(who.name));
        }
        if self.full() {
            self.dropped_errors += 1;
            return;
        }
        self.errors.push(Self::make(Some(who), path, message, hint));
    }

    /// A warning about guest `who` (the guest still boots).
    pub fn warn(&mut self, who: Who<'_>, path: &str, message: String, hint: &str) {
        if self.full() {
            self.dropped_warnings += 1;
            return;
        }
        self.warnings.push(Self::make(Some(who), path, message, hint));
    }

    /// The names of the rejected guests, in config order.
    pub fn rejected_names(&self) -> alloc::vec::Vec<String> {
        self.names.iter().flatten().cloned().collect()
    }

    /// Whether guest `index` has an error.
    pub fn is_rejected(&self, index: usize) -> bool {
        self.rejected.get(index).copied().unwrap_or(false)
    }
}

/// Escapes control characters (names and strings come from the DTB), so
/// that a finding always prints as one line.
pub(crate) fn one_line(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `base-last` (inclusive last byte), the way /proc/iomem prints ranges.
pub(crate) fn range(base: u64, size: u64) -> String {
    match size.checked_sub(1) {
        None => alloc::format!("{base:#x} (empty)"),
        Some(s) => alloc::format!("{base:#x}-{:#x}", base.saturating_add(s)),
    }
}
