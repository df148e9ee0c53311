//! Enumeration of bus 0: every function that answers, its identity, BARs
//! and INTx pin. Functions behind bridges are not scanned (ferrovisor
//! passes functions of bus 0 only); the bridges found are listed.

use crate::header::{size_bars, Bar, FunctionId, INTERRUPT};
use crate::{Bdf, ConfigSpace, Pin};
use alloc::vec::Vec;

/// A function found on the bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    /// Its address.
    pub bdf: Bdf,
    /// What it is.
    pub id: FunctionId,
    /// Its implemented BARs.
    pub bars: Vec<Bar>,
    /// Its INTx pin, if it has one.
    pub pin: Option<Pin>,
}

/// What a scan of bus 0 found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Enumeration {
    /// Endpoints (type-0 headers), host bridges left out.
    pub functions: Vec<Function>,
    /// Bridges (other header types), not descended into.
    pub bridges: Vec<Bdf>,
}

/// Scans devices 0..=31 of bus 0: function 0 of each, and functions 1..=7
/// of a multi-function device.
pub fn enumerate_bus0(cfg: &mut impl ConfigSpace) -> Enumeration {
    let mut found = Enumeration::default();
    for device in 0..32u8 {
        for function in 0..8u8 {
            let Some(bdf) = Bdf::new(0, device, function) else { continue };
            let Some(id) = FunctionId::read(cfg, bdf) else {
                if function == 0 {
                    break;
                }
                continue;
            };
            if id.header_type != 0 {
                found.bridges.push(bdf);
            } else if !id.is_host_bridge() {
                let pin = Pin::from_register((cfg.read32(bdf, INTERRUPT) >> 8) as u8);
                found.functions.push(Function { bdf, id, bars: size_bars(cfg, bdf), pin });
            }
            if function == 0 && !id.multi_function {
                break;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{edu, FakeBus};
    use crate::header::BarKind;

    #[test]
    fn qemu_bus() {
        let mut bus = FakeBus::qemu();
        let found = enumerate_bus0(&mut bus);
        let got: Vec<(Bdf, u16, Option<Pin>, usize)> =
            found.functions.iter().map(|f| (f.bdf, f.id.device, f.pin, f.bars.len())).collect();
        assert_eq!(
            got,
            [(Bdf::from_rid(0x10), 0x11e8, Some(Pin::A), 1), (Bdf::from_rid(0x18), 0x0010, Some(Pin::A), 1)]
        );
        assert_eq!(found.functions[1].bars[0].kind, BarKind::Mem64);
        assert!(found.bridges.is_empty());
    }

    #[test]
    fn multi_function_and_bridges() {
        let mut bus = FakeBus::new();
        bus.add(Bdf::new(0, 4, 0).unwrap(), edu().header(0x80));
        bus.add(Bdf::new(0, 4, 3).unwrap(), edu().pin(2));
        // Function 1 of a single-function device is never looked at.
        bus.add(Bdf::new(0, 5, 0).unwrap(), edu());
        bus.add(Bdf::new(0, 5, 1).unwrap(), edu());
        bus.add(Bdf::new(0, 6, 0).unwrap(), edu().header(0x01));
        let found = enumerate_bus0(&mut bus);
        let bdfs: Vec<Bdf> = found.functions.iter().map(|f| f.bdf).collect();
        assert_eq!(
            bdfs,
            [Bdf::new(0, 4, 0).unwrap(), Bdf::new(0, 4, 3).unwrap(), Bdf::new(0, 5, 0).unwrap()]
        );
        assert_eq!(found.functions[1].pin, Some(Pin::B));
        assert_eq!(found.bridges, [Bdf::new(0, 6, 0).unwrap()]);
    }
}
