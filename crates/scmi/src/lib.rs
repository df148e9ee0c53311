//! The SCMI platform (server) side of ferrovisor, for guests that drive
//! passed-through devices: each guest is one SCMI agent that may switch the
//! power domains, clocks and resets of its own devices, and nothing else.
//!
//! - [`header`]: the 32-bit message header;
//! - [`smt`]: the shared-memory transport (`arm,scmi-smc` channels): the
//!   request is copied out of the channel before it is decoded, so a guest
//!   that changes the shared memory while it is handled changes nothing;
//! - [`agent`]: one agent's view (its resources, by agent-local id, mapped
//!   to platform ids) and [`agent::handle`], which answers the Base, Power
//!   domain, Clock and Reset protocols through a [`agent::Backend`] (the
//!   platform's clock/power/reset controller);
//! - [`platform`]: that controller as a model (what QEMU virt lacks): power
//!   domains and reset lines owned by one agent each, clocks shared by
//!   per-agent votes, and the events the hypervisor carries out on the
//!   devices.
//!
//! Invariants: no input makes this crate panic or loop; every request gets
//! a response with an SCMI status; an agent can only name resources of its
//! own view (anything else is NOT_FOUND), and the backend only ever sees
//! platform ids from that view. Notifications are not supported (their
//! messages answer NOT_SUPPORTED) and every command completes synchronously.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

extern crate alloc;

pub mod agent;
pub mod header;
pub mod platform;
mod protocols;
pub mod smt;

pub use agent::{handle, AgentView, Backend, Rates, Resource};
pub use header::MsgHeader;

/// Protocol ids.
pub mod protocol {
    /// Base protocol.
    pub const BASE: u8 = 0x10;
    /// Power domain management.
    pub const POWER: u8 = 0x11;
    /// Clock management.
    pub const CLOCK: u8 = 0x14;
    /// Reset domain management.
    pub const RESET: u8 = 0x16;
}

/// SCMI status codes (the first word of every response payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    /// Success.
    Success = 0,
    /// The message or protocol is not supported.
    NotSupported = -1,
    /// A parameter is invalid.
    InvalidParameters = -2,
    /// The agent may not do this.
    Denied = -3,
    /// The resource does not exist (for this agent).
    NotFound = -4,
    /// A value is out of range.
    OutOfRange = -5,
    /// The platform is busy.
    Busy = -6,
    /// Communication failed.
    CommsError = -7,
    /// Anything else.
    GenericError = -8,
    /// The hardware failed.
    HardwareError = -9,
    /// The message does not follow the protocol (e.g. wrong length).
    ProtocolError = -10,
}

impl Status {
    /// The wire value.
    pub fn raw(self) -> u32 {
        self as i32 as u32
    }
}

/// The longest name an SCMI attributes message carries (NUL included).
pub const NAME_LEN: usize = 16;
