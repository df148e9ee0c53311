//! Tests of the PL011 model: a Linux-like probe, transmit, receive and the
//! interrupt logic, plus a proptest of random accesses.

use super::*;
use alloc::vec;
use proptest::prelude::*;

fn rd(u: &mut Pl011, off: u64) -> u32 {
    u.read(off, 4) as u32
}

fn wr(u: &mut Pl011, off: u64, v: u32) {
    u.write(off, 4, u64::from(v));
}

#[test]
fn reset_values() {
    let mut u = Pl011::new();
    assert_eq!(rd(&mut u, CR), 0x300);
    assert_eq!(rd(&mut u, IFLS), 0x12);
    assert_eq!(rd(&mut u, FR), FR_TXFE | FR_RXFE);
    assert_eq!(rd(&mut u, IMSC), 0);
    assert_eq!(rd(&mut u, RIS), 0);
    assert!(!u.irq_level());
    assert_eq!(u.rx_space(), 1);
    assert_eq!(u.bad_accesses(), 0);
}

#[test]
fn linux_like_probe_sequence() {
    let mut u = Pl011::new();
    // The AMBA bus reads the IDs from the last 32 bytes of the window.
    let periph: u32 = (0..4).map(|i| (rd(&mut u, 0xfe0 + 4 * i) & 0xff) << (8 * i)).sum();
    let cell: u32 = (0..4).map(|i| (rd(&mut u, 0xff0 + 4 * i) & 0xff) << (8 * i)).sum();
    assert_eq!(periph, 0x0034_1011);
    assert_eq!(periph & 0x000f_ffff, 0x0004_1011);
    assert_eq!(cell, 0xb105_f00d);
    // pl011_hwinit: clear interrupts, mask everything.
    wr(&mut u, ICR, 0x7ff);
    wr(&mut u, IMSC, 0);
    // Set the baud rate and line control, then enable.
    wr(&mut u, IBRD, 13);
    wr(&mut u, FBRD, 1);
    wr(&mut u, LCR_H, 0x70); // 8 bits, FIFO enabled
    wr(&mut u, CR, 0x301);
    assert_eq!((rd(&mut u, IBRD), rd(&mut u, FBRD)), (13, 1));
    assert_eq!(rd(&mut u, LCR_H), 0x70);
    assert_eq!(rd(&mut u, CR), 0x301);
    wr(&mut u, IMSC, INT_RX | INT_RT);
    assert!(!u.irq_level());
    // Unmasking TX with an empty transmit FIFO asserts TXIS.
    wr(&mut u, IMSC, INT_RX | INT_RT | INT_TX);
    assert_eq!(rd(&mut u, MIS), INT_TX);
    assert!(u.irq_level());
    assert_eq!(rd(&mut u, IMSC), INT_RX | INT_RT | INT_TX);
    assert_eq!(u.bad_accesses(), 0);
}

#[test]
fn transmit_is_instant_and_raises_txis() {
    let mut u = Pl011::new();
    for &b in b"hi\n" {
        assert_eq!(rd(&mut u, FR) & FR_TXFF, 0);
        u.write(DR, 1, u64::from(b));
    }
    assert_eq!(rd(&mut u, FR) & FR_TXFE, FR_TXFE);
    assert_eq!(rd(&mut u, RIS) & INT_TX, INT_TX);
    assert!(!u.irq_level(), "masked");
    assert_eq!(u.take_tx().collect::<Vec<_>>(), b"hi\n");
    assert_eq!(u.take_tx().count(), 0);
    wr(&mut u, DR, 0x1_41); // high bits ignored
    let mut out = vec![];
    u.drain_tx(&mut out);
    assert_eq!(out, b"A");
    wr(&mut u, ICR, INT_TX);
    assert_eq!(rd(&mut u, RIS), 0);
}

#[test]
fn transmit_buffer_is_bounded() {
    let mut u = Pl011::new();
    for i in 0..(TX_BUFFER_CAP + 10) {
        wr(&mut u, DR, i as u32);
    }
    assert_eq!(u.tx_dropped(), 10);
    let got: Vec<u8> = u.take_tx().collect();
    assert_eq!(got.len(), TX_BUFFER_CAP);
    assert_eq!(got[0], 10);
}

#[test]
fn receive_without_fifo_holds_one_byte() {
    let mut u = Pl011::new();
    assert!(u.push_rx(b'x'));
    assert!(!u.push_rx(b'y'));
    assert_eq!(u.rx_space(), 0);
    assert_eq!(rd(&mut u, FR) & (FR_RXFE | FR_RXFF), FR_RXFF);
    assert_eq!(rd(&mut u, RIS), INT_RX | INT_RT);
    assert_eq!(rd(&mut u, DR), u32::from(b'x'));
    assert_eq!(rd(&mut u, FR) & (FR_RXFE | FR_RXFF), FR_RXFE);
    assert_eq!(rd(&mut u, RIS), 0);
    assert_eq!(rd(&mut u, DR), 0, "empty reads 0");
}

#[test]
fn receive_with_fifo() {
    let mut u = Pl011::new();
    wr(&mut u, LCR_H, LCR_H_FEN | 0x60);
    wr(&mut u, IMSC, INT_RX | INT_RT);
    assert_eq!(u.rx_space(), 16);
    for b in 0..16u8 {
        assert!(u.push_rx(b));
        assert!(u.irq_level());
    }
    assert!(!u.push_rx(99));
    assert_eq!(rd(&mut u, FR) & FR_RXFF, FR_RXFF);
    assert_eq!(rd(&mut u, MIS), INT_RX | INT_RT);
    for b in 0..16u32 {
        assert_eq!(rd(&mut u, FR) & FR_RXFE, 0);
        assert_eq!(rd(&mut u, DR), b);
    }
    assert_eq!(rd(&mut u, FR) & FR_RXFE, FR_RXFE);
    assert!(!u.irq_level(), "draining the FIFO clears RXIS and RTIS");
    // Wrap around the ring.
    for b in 100..110u8 {
        assert!(u.push_rx(b));
    }
    assert_eq!(rd(&mut u, DR), 100);
    // Turning the FIFO off flushes it.
    wr(&mut u, LCR_H, 0x60);
    assert_eq!(rd(&mut u, FR) & FR_RXFE, FR_RXFE);
    assert_eq!(u.rx_space(), 1);
}

#[test]
fn interrupts_set_clear_and_mask() {
    let mut u = Pl011::new();
    wr(&mut u, LCR_H, LCR_H_FEN);
    u.push_rx(1);
    u.push_rx(2);
    wr(&mut u, DR, b'a'.into());
    assert_eq!(rd(&mut u, RIS), INT_RX | INT_RT | INT_TX);
    assert_eq!(rd(&mut u, MIS), 0);
    wr(&mut u, IMSC, INT_RT);
    assert_eq!(rd(&mut u, MIS), INT_RT);
    // ICR is write-1-to-clear; RIS ignores writes.
    wr(&mut u, RIS, 0);
    assert_eq!(u.bad_accesses(), 1);
    wr(&mut u, ICR, INT_RT);
    assert_eq!(rd(&mut u, RIS), INT_RX | INT_TX);
    assert!(!u.irq_level());
    wr(&mut u, ICR, 0x7ff);
    assert_eq!(rd(&mut u, RIS), 0);
    // A new byte asserts them again.
    u.push_rx(3);
    assert!(u.irq_level());
}

#[test]
fn odd_sizes_and_unknown_offsets() {
    let mut u = Pl011::new();
    assert_eq!(u.read(0x100, 4), 0);
    u.write(0x100, 4, 5);
    assert_eq!(u.read(0x2000, 4), 0);
    assert_eq!(u.read(ICR, 4), 0);
    assert_eq!(u.bad_accesses(), 4);
    // Byte writes replace one byte of the word.
    u.write(CR + 1, 1, 0x01);
    assert_eq!(rd(&mut u, CR), 0x100);
    assert_eq!(u.read(CR + 1, 1), 1);
    assert_eq!(u.read(0xfe8, 2), 0x34);
    // An 8-byte access acts on the 32-bit word and is counted.
    u.write(IBRD, 8, 0xffff_ffff_0000_0007);
    assert_eq!(u.read(IBRD, 8), 7);
    assert_eq!(u.bad_accesses(), 6);
    // A half-word write to DR transmits its low byte.
    u.write(DR, 2, 0x4142);
    assert_eq!(u.take_tx().collect::<Vec<_>>(), b"B");
}

proptest! {
    #[test]
    fn random_accesses_never_panic(
        ops in proptest::collection::vec(
            (any::<bool>(), prop_oneof![0u64..0x50, 0xfd0u64..0x1010, any::<u64>()],
             any::<u8>(), any::<u64>(), any::<Option<u8>>()),
            0..200,
        )
    ) {
        let mut u = Pl011::new();
        for (is_write, off, size, value, rx) in ops {
            if is_write {
                u.write(off, size, value);
            } else {
                u.read(off, size);
            }
            if let Some(b) = rx {
                u.push_rx(b);
            }
            let fr = u.read(FR, 4) as u32;
            prop_assert_eq!(fr & FR_TXFE, FR_TXFE);
            prop_assert!(u.rx_space() <= RX_FIFO_DEPTH);
            prop_assert_eq!(u.irq_level(), u.read(MIS, 4) != 0);
            prop_assert_eq!(u.read(MIS, 4), u.read(RIS, 4) & u.read(IMSC, 4));
        }
        prop_assert!(u.take_tx().count() <= TX_BUFFER_CAP);
    }
}

#[test]
fn linux_16_bit_register_accesses() {
    // amba-pl011 uses readw/writew unless the port is mmio32.
    let mut u = Pl011::new();
    u.write(ICR, 2, 0x7ff);
    u.write(LCR_H, 2, 0x70);
    u.write(CR, 2, 0x301);
    u.write(IMSC, 2, u64::from(INT_RX | INT_RT));
    assert_eq!(u.read(CR, 2), 0x301);
    assert!(u.push_rx(b'k'));
    assert!(u.irq_level());
    assert_eq!(u.read(FR, 2) as u32 & FR_RXFE, 0);
    assert_eq!(u.read(DR, 2), u64::from(b'k'));
    assert!(!u.irq_level());
    u.write(DR, 2, u64::from(b'z'));
    assert_eq!(u.take_tx().collect::<Vec<_>>(), b"z");
    assert_eq!(u.bad_accesses(), 0);
}
