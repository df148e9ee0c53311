//! A platform clock, power and reset controller as a model: the state a
//! real SoC's controller would hold (power domains on or off, clocks
//! enabled and at which rate, reset lines), shared by every agent, with
//! what each agent may do decided here:
//!
//! * a power domain and a reset line belong to one agent at a time (the
//!   guest that owns the devices in it); another agent's request is
//!   DENIED, and ownership moves only through [`Platform::set_owner`]
//!   (a device handed to another guest);
//! * a clock may feed devices of several guests (QEMU virt's `apb-pclk`
//!   feeds every PL0xx device): each agent enables or disables only its own
//!   vote, and the clock runs while any agent votes for it; an agent sees
//!   its own vote as the clock's state. Its rate may change only while no
//!   other agent has it enabled.
//!
//! Every change of a domain's power or a reset is queued as an [`Event`]
//! for the hypervisor to carry out on the devices in that domain (unmap
//! and mask on power-off, map on power-on, reset the device), see
//! [`Platform::take_events`]. Each agent reaches the model through an
//! [`AgentPort`], which implements [`Backend`] for [`crate::handle`].

use alloc::string::String;
use alloc::vec::Vec;

use crate::agent::{Backend, Rates};
use crate::Status;

/// Most agents the model tells apart (one bit each in a clock's votes).
pub const MAX_AGENTS: usize = 32;

/// A power domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PowerDomain {
    /// Its name.
    pub name: String,
    /// On.
    pub on: bool,
    /// The agent that may switch it.
    pub owner: Option<usize>,
}

/// A clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clock {
    /// Its name.
    pub name: String,
    /// The rates it supports.
    pub rates: Rates,
    /// Its rate in Hz.
    pub rate: u64,
    /// Agents that enabled it (bit per agent).
    pub votes: u32,
    /// Times it went from stopped to running.
    pub starts: u64,
}

impl Clock {
    /// Running (some agent enabled it).
    pub fn running(&self) -> bool {
        self.votes != 0
    }
}

/// A reset line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResetLine {
    /// Its name.
    pub name: String,
    /// Held in reset.
    pub asserted: bool,
    /// The agent that may use it.
    pub owner: Option<usize>,
    /// Resets done (pulses and assertions).
    pub resets: u64,
}

/// What the hypervisor must do after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Power domain `domain` was switched on or off.
    Power {
        /// Platform id.
        domain: u32,
        /// New state.
        on: bool,
    },
    /// Reset line `line` was pulsed (`hold == None`), asserted
    /// (`Some(true)`) or released (`Some(false)`).
    Reset {
        /// Platform id.
        line: u32,
        /// How.
        hold: Option<bool>,
    },
}

/// The model (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct Platform {
    power: Vec<PowerDomain>,
    clocks: Vec<Clock>,
    resets: Vec<ResetLine>,
    events: Vec<Event>,
}

fn id(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

fn supports(rates: &Rates, rate: u64) -> bool {
    match rates {
        Rates::Discrete(list) => list.contains(&rate),
        Rates::Range { min, max, step } => {
            (*min..=*max).contains(&rate) && (*step == 0 || (rate - min).is_multiple_of(*step))
        }
    }
}

impl Platform {
    /// A controller with nothing in it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a power domain (off, owned by `owner`); returns its id.
    pub fn add_power(&mut self, name: &str, owner: Option<usize>) -> u32 {
        self.power.push(PowerDomain { name: name.into(), on: false, owner });
        id(self.power.len() - 1)
    }

    /// Adds a clock (stopped, at `rate`); returns its id.
    pub fn add_clock(&mut self, name: &str, rates: Rates, rate: u64) -> u32 {
        self.clocks.push(Clock { name: name.into(), rates, rate, votes: 0, starts: 0 });
        id(self.clocks.len() - 1)
    }

    /// Adds a reset line (released, owned by `owner`); returns its id.
    pub fn add_reset(&mut self, name: &str, owner: Option<usize>) -> u32 {
        self.resets.push(ResetLine { name: name.into(), asserted: false, owner, resets: 0 });
        id(self.resets.len() - 1)
    }

    /// The clock called `name`, if there is one.
    pub fn clock_named(&self, name: &str) -> Option<u32> {
        self.clocks.iter().position(|c| c.name == name).map(id)
    }

    /// The power domain called `name`, if there is one.
    pub fn power_named(&self, name: &str) -> Option<u32> {
        self.power.iter().position(|d| d.name == name).map(id)
    }

    /// The reset line called `name`, if there is one.
    pub fn reset_named(&self, name: &str) -> Option<u32> {
        self.resets.iter().position(|r| r.name == name).map(id)
    }

    /// Power domain `domain`.
    pub fn power_domain(&self, domain: u32) -> Option<&PowerDomain> {
        self.power.get(domain as usize)
    }

    /// Clock `clock`.
    pub fn clock(&self, clock: u32) -> Option<&Clock> {
        self.clocks.get(clock as usize)
    }

    /// Reset line `line`.
    pub fn reset_line(&self, line: u32) -> Option<&ResetLine> {
        self.resets.get(line as usize)
    }

    /// Gives power domain `domain` and reset line `line` (either may be
    /// None) to `owner` (a device moved to another guest, or to nobody). A
    /// domain that changes hands is switched off first (queued as an
    /// event): its new owner finds it off, as at boot.
    pub fn set_owner(&mut self, domain: Option<u32>, line: Option<u32>, owner: Option<usize>) {
        if let Some((i, d)) = domain.and_then(|i| Some((i, self.power.get_mut(i as usize)?))) {
            if d.owner != owner && d.on {
                d.on = false;
                self.events.push(Event::Power { domain: i, on: false });
            }
            d.owner = owner;
        }
        if let Some(r) = line.and_then(|r| self.resets.get_mut(r as usize)) {
            r.owner = owner;
        }
    }

    /// The agent is gone (its guest stopped): its clock votes are dropped,
    /// and the power domains it owns are switched off (queued as events).
    pub fn release(&mut self, agent: usize) {
        let bit = 1u32.checked_shl(agent as u32).unwrap_or(0);
        for c in &mut self.clocks {
            c.votes &= !bit;
        }
        for (i, d) in self.power.iter_mut().enumerate() {
            if d.owner == Some(agent) && d.on {
                d.on = false;
                self.events.push(Event::Power { domain: id(i), on: false });
            }
        }
    }

    /// Hands out the queued events, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        core::mem::take(&mut self.events)
    }

    /// Agent `agent`'s access to the model.
    pub fn agent(&mut self, agent: usize) -> AgentPort<'_> {
        AgentPort { platform: self, agent }
    }
}

/// One agent's access to the [`Platform`] (its [`Backend`]).
pub struct AgentPort<'a> {
    platform: &'a mut Platform,
    agent: usize,
}

impl AgentPort<'_> {
    fn bit(&self) -> Result<u32, Status> {
        if self.agent >= MAX_AGENTS {
            return Err(Status::Denied);
        }
        Ok(1 << self.agent)
    }

    fn clock_mut(&mut self, clock: u32) -> Result<&mut Clock, Status> {
        self.platform.clocks.get_mut(clock as usize).ok_or(Status::NotFound)
    }
}

impl Backend for AgentPort<'_> {
    fn set_power(&mut self, domain: u32, on: bool) -> Result<(), Status> {
        let agent = self.agent;
        let d = self.platform.power.get_mut(domain as usize).ok_or(Status::NotFound)?;
        if d.owner != Some(agent) {
            return Err(Status::Denied);
        }
        if d.on != on {
            d.on = on;
            self.platform.events.push(Event::Power { domain, on });
        }
        Ok(())
    }

    fn power(&self, domain: u32) -> Result<bool, Status> {
        self.platform.power.get(domain as usize).map(|d| d.on).ok_or(Status::NotFound)
    }

    fn set_clock_enabled(&mut self, clock: u32, on: bool) -> Result<(), Status> {
        let bit = self.bit()?;
        let c = self.clock_mut(clock)?;
        let was = c.running();
        if on {
            c.votes |= bit;
        } else {
            c.votes &= !bit;
        }
        if !was && c.running() {
            c.starts = c.starts.saturating_add(1);
        }
        Ok(())
    }

    fn clock_enabled(&self, clock: u32) -> Result<bool, Status> {
        let bit = self.bit()?;
        self.platform.clocks.get(clock as usize).map(|c| c.votes & bit != 0).ok_or(Status::NotFound)
    }

    fn clock_rate(&self, clock: u32) -> Result<u64, Status> {
        self.platform.clocks.get(clock as usize).map(|c| c.rate).ok_or(Status::NotFound)
    }

    fn set_clock_rate(&mut self, clock: u32, rate: u64) -> Result<(), Status> {
        let bit = self.bit()?;
        let c = self.clock_mut(clock)?;
        if !supports(&c.rates, rate) {
            return Err(Status::OutOfRange);
        }
        if rate != c.rate && c.votes & !bit != 0 {
            // Another guest's device runs on it.
            return Err(Status::Denied);
        }
        c.rate = rate;
        Ok(())
    }

    fn clock_rates(&self, clock: u32) -> Result<Rates, Status> {
        self.platform.clocks.get(clock as usize).map(|c| c.rates.clone()).ok_or(Status::NotFound)
    }

    fn reset(&mut self, line: u32, hold: Option<bool>) -> Result<(), Status> {
        let agent = self.agent;
        let r = self.platform.resets.get_mut(line as usize).ok_or(Status::NotFound)?;
        if r.owner != Some(agent) {
            return Err(Status::Denied);
        }
        match hold {
            Some(h) => r.asserted = h,
            None => r.asserted = false,
        }
        if hold != Some(false) {
            r.resets = r.resets.saturating_add(1);
        }
        self.platform.events.push(Event::Reset { line, hold });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
