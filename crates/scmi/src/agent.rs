//! One SCMI agent: what a guest may see and switch ([`AgentView`]), the
//! platform controller behind it ([`Backend`]), and [`handle`], which
//! answers one command.
//!
//! Resource ids on the wire are agent-local: a guest's power domain 0 is
//! the first entry of its view, whatever the platform calls it. Only ids of
//! the view resolve; the backend is called with the platform id the view
//! maps them to, so one guest can never name another's resources.

use alloc::string::String;
use alloc::vec::Vec;

use crate::header::{MsgHeader, TYPE_COMMAND};
use crate::{protocol, protocols, Status};

/// One resource (power domain, clock or reset) an agent may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// The name the agent sees (at most 15 bytes are shown).
    pub name: String,
    /// The platform's id for it, as the backend knows it.
    pub platform_id: u32,
}

/// What one agent (guest) sees, by agent-local id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentView {
    /// The agent's name (the guest's), shown by BASE_DISCOVER_AGENT.
    pub name: String,
    /// Its power domains.
    pub power: Vec<Resource>,
    /// Its clocks.
    pub clocks: Vec<Resource>,
    /// Its reset domains.
    pub resets: Vec<Resource>,
}

/// The rates a clock supports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rates {
    /// These rates exactly, in Hz, ascending.
    Discrete(Vec<u64>),
    /// Every rate from `min` to `max` in steps of `step` Hz.
    Range {
        /// Lowest rate.
        min: u64,
        /// Highest rate.
        max: u64,
        /// Step.
        step: u64,
    },
}

/// The platform's clock, power and reset controller. Ids are platform ids.
/// On QEMU virt it is a model inside the hypervisor; on a real SoC it would
/// forward to firmware or drive the controller.
pub trait Backend {
    /// Switches a power domain on or off.
    fn set_power(&mut self, domain: u32, on: bool) -> Result<(), Status>;
    /// Whether a power domain is on.
    fn power(&self, domain: u32) -> Result<bool, Status>;
    /// Enables or disables a clock.
    fn set_clock_enabled(&mut self, clock: u32, on: bool) -> Result<(), Status>;
    /// Whether a clock is enabled.
    fn clock_enabled(&self, clock: u32) -> Result<bool, Status>;
    /// A clock's rate in Hz.
    fn clock_rate(&self, clock: u32) -> Result<u64, Status>;
    /// Sets a clock's rate in Hz.
    fn set_clock_rate(&mut self, clock: u32, rate: u64) -> Result<(), Status>;
    /// The rates a clock supports.
    fn clock_rates(&self, clock: u32) -> Result<Rates, Status>;
    /// Resets a domain: a pulse (`assert == None`), or holds it in reset
    /// (`Some(true)`) or releases it (`Some(false)`).
    fn reset(&mut self, domain: u32, assert: Option<bool>) -> Result<(), Status>;
}

/// A response: the header to send back and its payload (status first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The request's header, echoed.
    pub header: MsgHeader,
    /// Status word, then the return values.
    pub payload: Vec<u8>,
}

impl Response {
    /// The status word of the response.
    pub fn status(&self) -> u32 {
        self.payload.get(..4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Answers one command of `view`'s agent, through `backend`. Never
/// panics; a malformed command gets an error status.
pub fn handle(view: &AgentView, backend: &mut dyn Backend, header: MsgHeader, params: &[u8]) -> Response {
    let mut out = protocols::Out::default();
    let result = if header.kind != TYPE_COMMAND {
        Err(Status::NotSupported)
    } else {
        let mut p = protocols::Params::new(params);
        match header.protocol {
            protocol::BASE => protocols::base(view, header.message, &mut p, &mut out),
            protocol::POWER => protocols::power(view, backend, header.message, &mut p, &mut out),
            protocol::CLOCK => protocols::clock(view, backend, header.message, &mut p, &mut out),
            protocol::RESET => protocols::reset(view, backend, header.message, &mut p, &mut out),
            _ => Err(Status::NotSupported),
        }
    };
    let payload = match result {
        Ok(()) => out.finish(Status::Success),
        Err(status) => protocols::Out::default().finish(status),
    };
    Response { header, payload }
}
